/** The photos table: one row per photo seen, with its status (`done`, `failed`) and content hash. */
import type { StoredPhoto } from '../types.ts';
import { now, type Statements } from './statements.ts';

interface PhotoRow {
  photo_id: string;
  uri: string;
  library: string | null;
  width: number | null;
  height: number | null;
  content_hash: string | null;
  status: 'done' | 'failed';
  error: string | null;
  processed_at: string;
}

export class PhotoTable {
  constructor(private readonly s: Statements) {}

  upsertPhoto(p: Omit<StoredPhoto, 'processedAt'> & { processedAt?: string }): void {
    this.s.db
      .prepare(
        `INSERT INTO photos (photo_id, uri, library, width, height, content_hash, status, error, processed_at)
         VALUES (@photoId, @uri, @library, @width, @height, @contentHash, @status, @error, @processedAt)
         ON CONFLICT (photo_id) DO UPDATE SET uri = excluded.uri, library = excluded.library, width = excluded.width,
           height = excluded.height, content_hash = excluded.content_hash, status = excluded.status,
           error = excluded.error, processed_at = excluded.processed_at`,
      )
      .run({
        photoId: p.photoId,
        uri: p.uri,
        library: p.library ?? null,
        width: p.width ?? null,
        height: p.height ?? null,
        contentHash: p.contentHash ?? null,
        status: p.status,
        error: p.error ?? null,
        processedAt: p.processedAt ?? now(),
      });
  }

  getPhoto(photoId: string): StoredPhoto | undefined {
    const row = this.s.sql('SELECT * FROM photos WHERE photo_id = ?').get(photoId) as PhotoRow | undefined;
    return row && toPhoto(row);
  }

  listPhotos(): StoredPhoto[] {
    return (this.s.sql('SELECT * FROM photos ORDER BY rowid').all() as PhotoRow[]).map(toPhoto);
  }

  deletePhotoRow(photoId: string): void {
    this.s.sql('DELETE FROM photos WHERE photo_id = ?').run(photoId);
  }
}

function toPhoto(r: PhotoRow): StoredPhoto {
  return {
    photoId: r.photo_id,
    uri: r.uri,
    library: r.library,
    width: r.width,
    height: r.height,
    contentHash: r.content_hash,
    status: r.status,
    error: r.error,
    processedAt: r.processed_at,
  };
}
