/**
 * The store's schema, as versioned migrations applied in order (PRAGMA user_version records the last
 * one applied). A new version appends a migration; none is ever edited.
 */
import type Database from 'better-sqlite3';

/**
 * The store note (metadata `note:<key>`) saying a batch recluster is owed: set by a run before its
 * first change and cleared after its recluster (app/run.ts), and by migration 3 for older stores.
 */
export const RECLUSTER_OWED_NOTE = 'recluster_owed';

/** Versioned migrations, applied in order; PRAGMA user_version records the last one applied. */
export const MIGRATIONS: string[] = [
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
  // 2: the people view (people.ts): hidden identities, a chosen cover face, the
  // user-action log that undo appends to, and tombstones of erased photos
  `
  ALTER TABLE identities ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE identities ADD COLUMN cover_face_id TEXT;
  -- the people grid's covering index: count, filter (hidden, name) and order (largest first) without
  -- reading the identity rows (each holds a 1.5 KB template); only the page shown is read
  CREATE INDEX identities_grid ON identities (hidden, face_count DESC, identity_id, name);
  -- the review queue (and its count in every page's menu): kept faces no identity holds
  CREATE INDEX faces_unassigned ON faces (quality DESC, face_id) WHERE kept = 1 AND identity_id IS NULL;
  CREATE TABLE user_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, summary TEXT NOT NULL, body TEXT NOT NULL,
    undoes INTEGER, created_at TEXT NOT NULL
  );
  CREATE INDEX user_actions_undoes ON user_actions (undoes);
  CREATE TABLE tombstones (
    id INTEGER PRIMARY KEY AUTOINCREMENT, photo_id TEXT NOT NULL, uri TEXT NOT NULL, content_hash TEXT,
    cause TEXT NOT NULL, erased_at TEXT NOT NULL
  );
  CREATE INDEX tombstones_photo ON tombstones (photo_id);
  CREATE INDEX tombstones_uri ON tombstones (uri);
  CREATE INDEX tombstones_hash ON tombstones (content_hash);
  `,
  // 3: why a kept face has no identity (schemas/face.ts UnassignedReason), written by every step
  // that places or unplaces faces; null while the face has an identity (a dropped face keeps its
  // drop reason in `reason`). Rows from before have none: the clustering decides it, so the
  // migration notes a recluster as owed (the next `run` or `recluster` writes every reason).
  `
  ALTER TABLE faces ADD COLUMN unassigned_reason TEXT;
  INSERT INTO metadata (key, value)
    SELECT 'note:${RECLUSTER_OWED_NOTE}', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE EXISTS (SELECT 1 FROM faces WHERE kept = 1 AND identity_id IS NULL)
    ON CONFLICT (key) DO NOTHING;
  `,
];

/**
 * Brings a store up to the newest schema, one transaction per migration. False (and nothing done)
 * for an existing file without a schema version: not a store this code made.
 */
export function migrate(db: Database.Database, existed: boolean): boolean {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (existed && version === 0) return false;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return true;
}
