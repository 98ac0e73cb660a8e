import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { FacepipeError } from '../core/errors.ts';
import { removeQuietly } from '../core/files.ts';
import { Statements } from './store/statements.ts';
import { MIGRATIONS, migrate } from './store/migrations.ts';
import { PhotoTable } from './store/photos.ts';
import { IdentityTable } from './store/identities.ts';
import { FaceTable } from './store/faces.ts';

export { bufferToFloat32 } from './store/statements.ts';
export type { ChangedLabel, IndexableFace } from './store/faces.ts';

/** The store is the source of truth; the HNSW index is derived from it and can always be rebuilt. */
export const STORE_FILE = 'faces.sqlite';

/** Stores up to this size get a page-level quick_check on every open. */
const QUICK_CHECK_MAX_BYTES = 256 * 2 ** 20;

/** A store file that SQLite cannot read: we refuse to touch it rather than start over empty. */
export class StoreCorruptError extends FacepipeError {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(
      'STORE_CORRUPT',
      `face store ${file} is corrupt or not a facepipe store (${detail}); it was left untouched — ` +
        `restore it from a backup or move it away to start a new store`,
    );
  }
}

function removeNewStore(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) removeQuietly(f);
}

/**
 * The store, by aggregate: `photos`, `faces` (with the change log), `identities` (with corrections
 * and identity events), over one SQLite connection, so `db.transaction` spans them all; the schema
 * is store/migrations.ts. This class opens and checks the file, keeps the metadata and does what
 * spans aggregates (counts, renaming a photo).
 */
export class FaceStore {
  readonly db: Database.Database;
  readonly photos!: PhotoTable;
  readonly faces!: FaceTable;
  readonly identities!: IdentityTable;
  private readonly statements!: Statements;

  /** Opens (and with `create`, creates) the store; a corrupt file is a StoreCorruptError, never emptied. */
  constructor(
    readonly file: string,
    opts: { create: boolean; readonly?: boolean },
  ) {
    const existed = existsSync(file);
    if (!existed && !opts.create) throw new Error(`no facepipe store at ${file}`);
    // an existing file that holds no database (truncated, zeroed, a failed copy) is refused like
    // any other unreadable store: starting over in it would throw away names and corrections
    if (existed && statSync(file).size === 0)
      throw new StoreCorruptError(file, 'the file is empty (0 bytes)');
    try {
      this.db = new Database(file, { fileMustExist: !opts.create, readonly: opts.readonly ?? false });
    } catch (err) {
      if (!existed) removeNewStore(file);
      if ((err as { code?: string }).code === 'SQLITE_FULL') throw err;
      throw new StoreCorruptError(file, (err as Error).message);
    }
    try {
      if (existed) this.checkIntegrity(statSync(file).size <= QUICK_CHECK_MAX_BYTES);
      if (!opts.readonly) {
        this.db.pragma('journal_mode = WAL');
        this.db.pragma('synchronous = NORMAL');
      }
      this.db.pragma('foreign_keys = ON');
      // forgotten faces are biometric data: zero their bytes in the file instead of leaving free pages
      this.db.pragma('secure_delete = ON');
      if (!opts.readonly && !migrate(this.db, existed))
        throw new StoreCorruptError(this.file, 'no schema version');
      this.statements = new Statements(this.db);
      this.photos = new PhotoTable(this.statements);
      this.identities = new IdentityTable(this.statements);
      this.faces = new FaceTable(this.statements, this.identities);
    } catch (err) {
      this.db.close();
      // a store this open was creating holds nothing yet: it must not stay behind as an empty or
      // half-made file (which the next open would rightly refuse)
      if (!existed) removeNewStore(file);
      if (err instanceof StoreCorruptError) throw err;
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
        throw new StoreCorruptError(file, (err as Error).message);
      }
      throw err;
    }
  }

  /**
   * Refuses files SQLite cannot read. `full` also runs quick_check over every page (seconds per GB,
   * so only for stores up to QUICK_CHECK_MAX_BYTES on open; `facepipe index verify` always does).
   */
  private checkIntegrity(full: boolean): void {
    if (full) {
      const result = this.quickCheck();
      if (result !== 'ok') throw new StoreCorruptError(this.file, `integrity check: ${result.slice(0, 200)}`);
    }
    const version = this.db.pragma('user_version', { simple: true }) as number;
    const tables = this.db
      .prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name IN ('faces','changes')`)
      .get() as {
      n: number;
    };
    if (version > 0 && tables.n !== 2) throw new StoreCorruptError(this.file, 'tables missing');
    if (version === 0) {
      const any = this.db.prepare(`SELECT count(*) AS n FROM sqlite_master`).get() as { n: number };
      if (any.n > 0) throw new StoreCorruptError(this.file, 'a SQLite database of something else');
    }
    if (version > MIGRATIONS.length) {
      throw new Error(
        `face store ${this.file} has schema version ${version}, newer than this facepipe (${MIGRATIONS.length})`,
      );
    }
  }

  /** SQLite's quick_check: 'ok' or what is wrong. */
  quickCheck(): string {
    const rows = this.db.pragma('quick_check') as { quick_check: string }[];
    return rows.map((r) => r.quick_check).join('; ');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private sql(source: string): Database.Statement {
    return this.statements.sql(source);
  }

  // ---- metadata -------------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    const row = this.sql('SELECT value FROM metadata WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row?.value;
  }

  deleteMeta(key: string): void {
    this.sql('DELETE FROM metadata WHERE key = ?').run(key);
  }

  setMeta(key: string, value: string): void {
    this.sql(
      'INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, value);
  }

  counts(): { photos: number; faces: number; kept: number; dropped: number; identities: number } {
    const one = (sql: string): number => (this.sql(sql).get() as { n: number }).n;
    const faces = one('SELECT count(*) AS n FROM faces');
    const kept = one('SELECT count(*) AS n FROM faces WHERE kept = 1');
    return {
      photos: one('SELECT count(*) AS n FROM photos'),
      faces,
      kept,
      dropped: faces - kept,
      identities: one('SELECT count(*) AS n FROM identities'),
    };
  }

  /**
   * Gives a photo another id, and each of its faces the id `faceIdOf` computes from the new photo
   * id and the face's model and box. Every place a face id is kept follows (faces, change log,
   * corrections, identity events); HNSW labels do not change, so the index stays valid. One
   * transaction. Returns the face ids as [old, new] pairs.
   */
  renamePhoto(
    from: string,
    to: string,
    faceIdOf: (photoId: string, modelId: string, bbox: number[]) => string,
  ): [string, string][] {
    return this.db.transaction(() => {
      const faces = this.sql('SELECT label, face_id, model_id, bbox FROM faces WHERE photo_id = ?').all(
        from,
      ) as { label: number; face_id: string; model_id: string; bbox: string }[];
      const pairs: [string, string][] = faces.map((f) => [
        f.face_id,
        faceIdOf(to, f.model_id, JSON.parse(f.bbox) as number[]),
      ]);
      this.sql('UPDATE photos SET photo_id = ? WHERE photo_id = ?').run(to, from);
      const face = this.sql('UPDATE faces SET face_id = ?, photo_id = ? WHERE label = ?');
      const change = this.sql('UPDATE changes SET face_id = ? WHERE face_id = ?');
      const inBodies = (table: string) =>
        this.sql(`UPDATE ${table} SET body = replace(body, ?, ?) WHERE instr(body, ?) > 0`);
      const correction = inBodies('corrections');
      const event = inBodies('identity_events');
      faces.forEach((f, i) => {
        const [old, renamed] = pairs[i];
        face.run(renamed, to, f.label);
        change.run(renamed, old);
        // face ids are hashes: as quoted JSON strings they match nothing else
        correction.run(JSON.stringify(old), JSON.stringify(renamed), JSON.stringify(old));
        event.run(JSON.stringify(old), JSON.stringify(renamed), JSON.stringify(old));
      });
      return pairs;
    })();
  }
}
