import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import type { FaceRecord } from '../schemas/face.ts';
import type {
  Correction,
  StoredCorrection,
  StoredFace,
  StoredIdentity,
  StoredIdentityEvent,
  StoredPhoto,
} from './types.ts';
import { FacepipeError } from '../core/errors.ts';

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

/** Versioned migrations, applied in order; PRAGMA user_version records the last one applied. */
const MIGRATIONS: string[] = [
  // 1: initial schema
  `
  CREATE TABLE metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE photos (
    photo_id TEXT PRIMARY KEY, uri TEXT NOT NULL, library TEXT, width INTEGER, height INTEGER,
    content_hash TEXT, status TEXT NOT NULL, error TEXT, processed_at TEXT NOT NULL
  );
  CREATE TABLE identities (
    identity_id TEXT PRIMARY KEY, name TEXT, face_count INTEGER NOT NULL DEFAULT 0,
    template BLOB NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
  );
  -- label: the 32-bit HNSW label of the face; AUTOINCREMENT so a forgotten face's label is never reused
  CREATE TABLE faces (
    label INTEGER PRIMARY KEY AUTOINCREMENT, face_id TEXT NOT NULL UNIQUE, photo_id TEXT NOT NULL,
    face_index INTEGER NOT NULL, bbox TEXT NOT NULL, landmarks TEXT NOT NULL, score REAL NOT NULL,
    embedding BLOB NOT NULL, magnitude REAL NOT NULL, quality REAL NOT NULL, kept INTEGER NOT NULL,
    reason TEXT, model_id TEXT NOT NULL, library TEXT, identity_id TEXT, seq INTEGER NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX faces_photo ON faces (photo_id);
  CREATE INDEX faces_identity ON faces (identity_id);
  CREATE INDEX faces_kept ON faces (kept);
  -- append-only change log: every face upsert/delete gets a sequence number; index checkpoints
  -- record the sequence they contain and replay what follows
  CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, label INTEGER NOT NULL, face_id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'delete'))
  );
  CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE identity_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_at TEXT NOT NULL);
  `,
];

interface FaceRow {
  label: number;
  face_id: string;
  photo_id: string;
  face_index: number;
  bbox: string;
  landmarks: string;
  score: number;
  embedding: Buffer;
  magnitude: number;
  quality: number;
  kept: number;
  reason: string | null;
  model_id: string;
  library: string | null;
  identity_id: string | null;
  seq: number;
}

interface IdentityRow {
  identity_id: string;
  name: string | null;
  face_count: number;
  template: Buffer;
  created_at: string;
  updated_at: string;
}

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

/** A kept face as the index needs it. */
export interface IndexableFace {
  label: number;
  faceId: string;
  embedding: Float32Array;
}

/** The current state of a face touched by a change, for index replay. */
export interface ChangedLabel {
  label: number;
  faceId: string;
  /** null when the face no longer exists or is not kept: its vector must not be searchable */
  embedding: Float32Array | null;
}

export function bufferToFloat32(buf: Buffer): Float32Array {
  // copy: a Buffer from SQLite need not be 4-byte aligned
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

function float32ToBuffer(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function float64ToBuffer(v: Float64Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function bufferToFloat64(buf: Buffer): Float64Array {
  const out = new Float64Array(buf.byteLength / 8);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

const now = (): string => new Date().toISOString();

export class FaceStore {
  readonly db: Database.Database;

  /** Opens (and with `create`, creates) the store; a corrupt file is a StoreCorruptError, never emptied. */
  constructor(
    readonly file: string,
    opts: { create: boolean; readonly?: boolean },
  ) {
    const existed = existsSync(file) && statSync(file).size > 0;
    if (!existed && !opts.create) throw new Error(`no facepipe store at ${file}`);
    try {
      this.db = new Database(file, { fileMustExist: !opts.create, readonly: opts.readonly ?? false });
    } catch (err) {
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
      if (!opts.readonly) this.migrate(existed);
    } catch (err) {
      this.db.close();
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
    const tables = this.sql(
      `SELECT count(*) AS n FROM sqlite_master WHERE name IN ('faces','changes')`,
    ).get() as {
      n: number;
    };
    if (version > 0 && tables.n !== 2) throw new StoreCorruptError(this.file, 'tables missing');
    if (version === 0) {
      const any = this.sql(`SELECT count(*) AS n FROM sqlite_master`).get() as { n: number };
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

  private migrate(existed: boolean): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (existed && version === 0) throw new StoreCorruptError(this.file, 'no schema version');
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared statements, prepared once per store. */
  private sql(source: string): Database.Statement {
    let stmt = this.statements.get(source);
    if (!stmt) {
      stmt = this.db.prepare(source);
      this.statements.set(source, stmt);
    }
    return stmt;
  }

  // ---- metadata -------------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    const row = this.sql('SELECT value FROM metadata WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.sql(
      'INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, value);
  }

  seq(): number {
    const row = this.sql('SELECT max(seq) AS s FROM changes').get() as { s: number | null };
    return row.s ?? 0;
  }

  // ---- photos ---------------------------------------------------------------------------------

  upsertPhoto(p: Omit<StoredPhoto, 'processedAt'> & { processedAt?: string }): void {
    this.db
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
    const row = this.sql('SELECT * FROM photos WHERE photo_id = ?').get(photoId) as PhotoRow | undefined;
    return row && toPhoto(row);
  }

  listPhotos(): StoredPhoto[] {
    return (this.sql('SELECT * FROM photos ORDER BY rowid').all() as PhotoRow[]).map(toPhoto);
  }

  deletePhotoRow(photoId: string): void {
    this.sql('DELETE FROM photos WHERE photo_id = ?').run(photoId);
  }

  // ---- faces ----------------------------------------------------------------------------------

  /** Insert or update faces by faceId; a replay of identical data writes nothing and logs no change. */
  upsertFaces(
    records: FaceRecord[],
    expect: { modelId: string; dim: number },
  ): { inserted: number; updated: number } {
    let inserted = 0;
    let updated = 0;
    const select = this.sql('SELECT * FROM faces WHERE face_id = ?');
    const insert = this.sql(
      `INSERT INTO faces (face_id, photo_id, face_index, bbox, landmarks, score, embedding, magnitude, quality, kept,
         reason, model_id, library, identity_id, seq, created_at)
       VALUES (@faceId, @photoId, @faceIndex, @bbox, @landmarks, @score, @embedding, @magnitude, @quality, @kept,
         @reason, @modelId, @library, NULL, 0, @createdAt)`,
    );
    const update = this.sql(
      `UPDATE faces SET photo_id = @photoId, face_index = @faceIndex, bbox = @bbox, landmarks = @landmarks,
         score = @score, embedding = @embedding, magnitude = @magnitude, quality = @quality, kept = @kept,
         reason = @reason, library = @library WHERE label = @label`,
    );
    for (const r of records) {
      checkRecord(r, expect);
      const embedding = float32ToBuffer(Float32Array.from(r.embedding));
      const params = {
        faceId: r.faceId,
        photoId: r.photoId,
        faceIndex: r.faceIndex,
        bbox: JSON.stringify(r.bbox),
        landmarks: JSON.stringify(r.landmarks),
        score: r.score,
        embedding,
        magnitude: r.magnitude,
        quality: r.quality,
        kept: r.kept ? 1 : 0,
        reason: r.reason ?? null,
        modelId: r.modelId,
        library: r.library ?? null,
        createdAt: r.createdAt ?? now(),
      };
      const old = select.get(r.faceId) as FaceRow | undefined;
      if (!old) {
        const { lastInsertRowid } = insert.run(params);
        this.logChange(Number(lastInsertRowid), r.faceId, 'upsert');
        inserted++;
        continue;
      }
      updated++;
      if (sameFace(old, params)) continue;
      if (old.identity_id)
        this.addToIdentity(old.identity_id, old.kept ? bufferToFloat32(old.embedding) : null, 0, -1);
      update.run({ ...params, label: old.label });
      if (old.identity_id)
        this.addToIdentity(old.identity_id, r.kept ? bufferToFloat32(embedding) : null, 0, +1);
      this.logChange(old.label, r.faceId, 'upsert');
    }
    return { inserted, updated };
  }

  private logChange(label: number, faceId: string, op: 'upsert' | 'delete'): void {
    const { lastInsertRowid } = this.sql('INSERT INTO changes (label, face_id, op) VALUES (?, ?, ?)').run(
      label,
      faceId,
      op,
    );
    if (op === 'upsert')
      this.sql('UPDATE faces SET seq = ? WHERE label = ?').run(Number(lastInsertRowid), label);
  }

  getFace(faceId: string): StoredFace | undefined {
    const row = this.sql('SELECT * FROM faces WHERE face_id = ?').get(faceId) as FaceRow | undefined;
    return row && toFace(row);
  }

  faceIdOfLabel(label: number): string | undefined {
    const row = this.sql('SELECT face_id FROM faces WHERE label = ?').get(label) as
      { face_id: string } | undefined;
    return row?.face_id;
  }

  facesOfPhoto(photoId: string): StoredFace[] {
    return (
      this.sql('SELECT * FROM faces WHERE photo_id = ? ORDER BY face_index, label').all(photoId) as FaceRow[]
    ).map(toFace);
  }

  listFaces(filter: { kept?: boolean; identityId?: string | null } = {}): StoredFace[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.kept !== undefined) {
      where.push('kept = ?');
      params.push(filter.kept ? 1 : 0);
    }
    if (filter.identityId === null) where.push('identity_id IS NULL');
    else if (filter.identityId !== undefined) {
      where.push('identity_id = ?');
      params.push(filter.identityId);
    }
    const sql = `SELECT * FROM faces ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY label`;
    return (this.sql(sql).all(...params) as FaceRow[]).map(toFace);
  }

  /** Kept faces in label order, streamed (a rebuild must not hold every row twice). */
  *iterateKept(): IterableIterator<IndexableFace> {
    const stmt = this.sql('SELECT label, face_id, embedding FROM faces WHERE kept = 1 ORDER BY label');
    for (const row of stmt.iterate() as IterableIterator<{
      label: number;
      face_id: string;
      embedding: Buffer;
    }>) {
      yield { label: row.label, faceId: row.face_id, embedding: bufferToFloat32(row.embedding) };
    }
  }

  /** label → faceId of every kept face. */
  keptLabels(): Map<number, string> {
    const rows = this.sql('SELECT label, face_id FROM faces WHERE kept = 1').raw().all() as [
      number,
      string,
    ][];
    return new Map(rows);
  }

  keptCount(): number {
    return (this.sql('SELECT count(*) AS n FROM faces WHERE kept = 1').get() as { n: number }).n;
  }

  /** Current state of every face changed after `seq` (one entry per label), for index replay. */
  changedSince(seq: number): ChangedLabel[] {
    const rows = this.db
      .prepare(
        `SELECT c.label AS label, c.face_id AS face_id, f.kept AS kept, f.embedding AS embedding
         FROM (SELECT label, max(face_id) AS face_id FROM changes WHERE seq > ? GROUP BY label) c
         LEFT JOIN faces f ON f.label = c.label ORDER BY c.label`,
      )
      .all(seq) as { label: number; face_id: string; kept: number | null; embedding: Buffer | null }[];
    return rows.map((r) => ({
      label: r.label,
      faceId: r.face_id,
      embedding: r.kept === 1 && r.embedding ? bufferToFloat32(r.embedding) : null,
    }));
  }

  embeddingsOf(labels: number[]): IndexableFace[] {
    const stmt = this.sql('SELECT label, face_id, embedding FROM faces WHERE label = ? AND kept = 1');
    const out: IndexableFace[] = [];
    for (const label of labels) {
      const row = stmt.get(label) as { label: number; face_id: string; embedding: Buffer } | undefined;
      if (row) out.push({ label: row.label, faceId: row.face_id, embedding: bufferToFloat32(row.embedding) });
    }
    return out;
  }

  /** Remove a face row (biometric erasure); its identity's template and count are updated. */
  deleteFace(faceId: string): boolean {
    const row = this.sql('SELECT * FROM faces WHERE face_id = ?').get(faceId) as FaceRow | undefined;
    if (!row) return false;
    if (row.identity_id)
      this.addToIdentity(row.identity_id, row.kept ? bufferToFloat32(row.embedding) : null, -1, -1);
    this.sql('DELETE FROM faces WHERE label = ?').run(row.label);
    this.logChange(row.label, faceId, 'delete');
    return true;
  }

  faceIdsOfPhoto(photoId: string): string[] {
    return (this.sql('SELECT face_id FROM faces WHERE photo_id = ?').raw().all(photoId) as [string][]).map(
      (r) => r[0],
    );
  }

  faceIdsOfIdentity(identityId: string): string[] {
    return (
      this.sql('SELECT face_id FROM faces WHERE identity_id = ?').raw().all(identityId) as [string][]
    ).map((r) => r[0]);
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

  // ---- identities -----------------------------------------------------------------------------

  createIdentity(identityId: string, name: string | null, dim: number): StoredIdentity {
    const t = now();
    this.db
      .prepare(
        `INSERT INTO identities (identity_id, name, face_count, template, created_at, updated_at) VALUES (?, ?, 0, ?, ?, ?)`,
      )
      .run(identityId, name, float64ToBuffer(new Float64Array(dim)), t, t);
    return this.getIdentity(identityId)!;
  }

  getIdentity(identityId: string): StoredIdentity | undefined {
    const row = this.sql('SELECT * FROM identities WHERE identity_id = ?').get(identityId) as
      IdentityRow | undefined;
    return row && toIdentity(row);
  }

  listIdentities(): StoredIdentity[] {
    return (this.sql('SELECT * FROM identities ORDER BY rowid').all() as IdentityRow[]).map(toIdentity);
  }

  setFaceIdentity(faceId: string, identityId: string | null): void {
    const row = this.sql('SELECT * FROM faces WHERE face_id = ?').get(faceId) as FaceRow | undefined;
    if (!row) throw new Error(`no face ${faceId}`);
    if (row.identity_id === identityId) return;
    if (identityId !== null && !this.getIdentity(identityId)) throw new Error(`no identity ${identityId}`);
    const embedding = row.kept ? bufferToFloat32(row.embedding) : null;
    if (row.identity_id) this.addToIdentity(row.identity_id, embedding, -1, -1);
    this.sql('UPDATE faces SET identity_id = ? WHERE label = ?').run(identityId, row.label);
    if (identityId) this.addToIdentity(identityId, embedding, +1, +1);
  }

  /**
   * Add (sign +1) or subtract (-1) a face's contribution to an identity: its count by `countDelta`
   * and, when the face is kept, its raw feature to the template (kept in float64 so that many
   * additions and subtractions do not drift).
   */
  private addToIdentity(
    identityId: string,
    embedding: Float32Array | null,
    countDelta: number,
    sign: number,
  ): void {
    const row = this.sql('SELECT template FROM identities WHERE identity_id = ?').get(identityId) as
      { template: Buffer } | undefined;
    if (!row) return;
    const template = bufferToFloat64(row.template);
    if (embedding) for (let i = 0; i < template.length; i++) template[i] += sign * embedding[i];
    this.db
      .prepare(
        'UPDATE identities SET face_count = face_count + ?, template = ?, updated_at = ? WHERE identity_id = ?',
      )
      .run(countDelta, float64ToBuffer(template), now(), identityId);
  }

  renameIdentity(identityId: string, name: string | null): void {
    const r = this.sql('UPDATE identities SET name = ?, updated_at = ? WHERE identity_id = ?').run(
      name,
      now(),
      identityId,
    );
    if (r.changes === 0) throw new Error(`no identity ${identityId}`);
  }

  deleteIdentityRow(identityId: string): void {
    this.sql('UPDATE faces SET identity_id = NULL WHERE identity_id = ?').run(identityId);
    this.sql('DELETE FROM identities WHERE identity_id = ?').run(identityId);
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

  // ---- corrections and identity events ---------------------------------------------------------

  addCorrection(c: Correction): number {
    return Number(
      this.sql('INSERT INTO corrections (body, created_at) VALUES (?, ?)').run(JSON.stringify(c), now())
        .lastInsertRowid,
    );
  }

  listCorrections(): StoredCorrection[] {
    const rows = this.sql('SELECT id, body, created_at FROM corrections ORDER BY id').all() as {
      id: number;
      body: string;
      created_at: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      correction: JSON.parse(r.body) as Correction,
      createdAt: r.created_at,
    }));
  }

  appendIdentityEvents(events: Record<string, unknown>[]): void {
    const stmt = this.sql('INSERT INTO identity_events (body, created_at) VALUES (?, ?)');
    const t = now();
    for (const e of events) stmt.run(JSON.stringify(e), t);
  }

  listIdentityEvents(afterSeq = 0): StoredIdentityEvent[] {
    const rows = this.sql('SELECT seq, body FROM identity_events WHERE seq > ? ORDER BY seq').all(
      afterSeq,
    ) as {
      seq: number;
      body: string;
    }[];
    return rows.map((r) => ({ seq: r.seq, event: JSON.parse(r.body) as Record<string, unknown> }));
  }
}

function checkRecord(r: FaceRecord, expect: { modelId: string; dim: number }): void {
  if (r.modelId !== expect.modelId) {
    throw new Error(
      `face ${r.faceId} is from model ${r.modelId}; this store holds ${expect.modelId} embeddings`,
    );
  }
  if (r.embedding.length !== expect.dim) {
    throw new Error(
      `face ${r.faceId} has a ${r.embedding.length}-d embedding; this store holds ${expect.dim}-d`,
    );
  }
  if (r.kept && !r.embedding.some((v) => v !== 0))
    throw new Error(`face ${r.faceId} is kept but its embedding is zero`);
  if (!r.embedding.every(Number.isFinite))
    throw new Error(`face ${r.faceId} has a non-finite embedding value`);
}

function sameFace(
  old: FaceRow,
  p: {
    embedding: Buffer;
    kept: number;
    magnitude: number;
    quality: number;
    bbox: string;
    score: number;
    reason: string | null;
    photoId: string;
    faceIndex: number;
    landmarks: string;
    library: string | null;
  },
): boolean {
  return (
    old.kept === p.kept &&
    old.magnitude === p.magnitude &&
    old.quality === p.quality &&
    old.score === p.score &&
    old.bbox === p.bbox &&
    old.landmarks === p.landmarks &&
    old.reason === p.reason &&
    old.photo_id === p.photoId &&
    old.face_index === p.faceIndex &&
    old.library === p.library &&
    old.embedding.equals(p.embedding)
  );
}

function toFace(r: FaceRow): StoredFace {
  return {
    faceId: r.face_id,
    photoId: r.photo_id,
    faceIndex: r.face_index,
    bbox: JSON.parse(r.bbox) as [number, number, number, number],
    landmarks: JSON.parse(r.landmarks) as [number, number][],
    score: r.score,
    embedding: bufferToFloat32(r.embedding),
    magnitude: r.magnitude,
    quality: r.quality,
    kept: r.kept === 1,
    reason: r.reason,
    modelId: r.model_id,
    library: r.library,
    identityId: r.identity_id,
    seq: r.seq,
  };
}

function toIdentity(r: IdentityRow): StoredIdentity {
  return {
    identityId: r.identity_id,
    name: r.name,
    faceCount: r.face_count,
    template: Float32Array.from(bufferToFloat64(r.template)),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
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
