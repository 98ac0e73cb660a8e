/**
 * Photo ids of data dirs made before there was one photo-id function. `facepipe run` always used
 * the id of schemas/face.ts (`p_` + 24 hex of the absolute path); `facepipe publish` used a shorter
 * one (`p_` + 20 hex, after its --id-prefix), so its photos — and their faces, whose ids derive
 * from the photo id — have other ids than the same files get now. Opening such a data dir is
 * refused with the command that migrates it: `facepipe index migrate-ids --data DIR` renames each
 * such photo and its faces in place (store, change log, corrections, identity events, thumbnails);
 * identities keep their ids and names, the HNSW index keeps its labels.
 */
import { createHash } from 'node:crypto';
import { existsSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { faceIdFor, photoIdForFile } from '../schemas/face.ts';
import { thumbPath } from '../pipeline/report.ts';
import type { FaceStore } from '../indexers/store.ts';
import type { StoredPhoto } from '../indexers/types.ts';
import { FacepipeError } from '../core/errors.ts';

export interface PhotoIdRename {
  from: string;
  to: string;
}

/** The id `facepipe publish` gave a file before: prefix + `p_` + 20 hex of its absolute path. */
function legacyPublishSuffix(file: string): string {
  return 'p_' + createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 20);
}

/** The photos of a store that carry a legacy publish id, with the id they have now. */
export function legacyPhotoIds(store: { listPhotos(): StoredPhoto[] }): PhotoIdRename[] {
  const out: PhotoIdRename[] = [];
  for (const photo of store.listPhotos()) {
    if (!photo.uri.startsWith('file://')) continue;
    const file = fileURLToPath(photo.uri);
    const suffix = legacyPublishSuffix(file);
    if (!photo.photoId.endsWith(suffix)) continue;
    const prefix = photo.photoId.slice(0, photo.photoId.length - suffix.length);
    out.push({ from: photo.photoId, to: photoIdForFile(file, prefix) });
  }
  return out;
}

export class LegacyPhotoIdsError extends FacepipeError {
  constructor(dataDir: string, count: number) {
    super(
      'LEGACY_PHOTO_IDS',
      `${dataDir} holds ${count} photo(s) with the photo ids of an older \`facepipe publish\`; ` +
        `run \`facepipe index migrate-ids --data ${dataDir}\` once to give them the current ids`,
    );
  }
}

/**
 * Renames every legacy photo id of the store (and its faces' ids and thumbnails). A legacy photo
 * whose current id is already in the store (the file was published again since) is superseded:
 * it is returned for the caller to forget, with the identity service.
 */
export function renameLegacyPhotos(
  store: FaceStore,
  dataDir: string,
): { renamed: PhotoIdRename[]; superseded: string[] } {
  const renamed: PhotoIdRename[] = [];
  const superseded: string[] = [];
  for (const r of legacyPhotoIds(store.photos)) {
    if (store.photos.getPhoto(r.to)) {
      superseded.push(r.from);
      continue;
    }
    for (const [oldFace, newFace] of store.renamePhoto(r.from, r.to, faceIdFor)) {
      const thumb = thumbPath(dataDir, oldFace);
      if (existsSync(thumb)) renameSync(thumb, thumbPath(dataDir, newFace));
    }
    renamed.push(r);
  }
  return { renamed, superseded };
}
