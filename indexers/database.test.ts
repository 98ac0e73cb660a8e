import { createHash } from 'node:crypto';
import {
  existsSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FaceRecord } from '../schemas/face.ts';
import { readSidecar, SIDECAR_FILE } from './checkpoint.ts';
import {
  openExistingDatabase,
  openFaceDatabase,
  StoreCorruptError,
  type EmbeddedFaceDatabase,
  type OpenOptions,
} from './database.ts';
import { STORE_FILE } from './store.ts';
import { faceRecord, randomFeature, recordingLogger, rng, tempDataDir } from './testUtil.ts';

const DIM = 32;
const MODEL = 'test-model';
const dirs: string[] = [];
const open: EmbeddedFaceDatabase[] = [];

function newDir(): string {
  const d = tempDataDir();
  dirs.push(d);
  return d;
}

function openDb(dir: string, extra: Partial<OpenOptions> = {}): EmbeddedFaceDatabase {
  const db = openFaceDatabase(dir, {
    modelId: MODEL,
    dim: DIM,
    log: recordingLogger(),
    ...extra,
  });
  open.push(db);
  return db;
}

/** `n` faces over n/4 photos; every 7th is dropped (low magnitude). */
function makeFaces(n: number, seed = 1, dim = DIM, prefix = 'p'): FaceRecord[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) =>
    faceRecord(`${prefix}${Math.floor(i / 4)}`, i % 4, randomFeature(r, dim), MODEL, i % 7 !== 3),
  );
}

afterEach(() => {
  for (const db of open.splice(0)) {
    try {
      db.close({ checkpoint: false });
    } catch {
      // already closed by the test
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sum(vectors: ArrayLike<number>[], dim: number): number[] {
  const out = new Array<number>(dim).fill(0);
  for (const v of vectors) for (let i = 0; i < dim; i++) out[i] += v[i];
  return out;
}

describe('FaceDatabase: insert, search, delete', () => {
  it('finds every kept face by its own vector and never returns dropped faces', () => {
    const db = openDb(newDir());
    const faces = makeFaces(120);
    expect(db.upsertFaces(faces)).toEqual({ inserted: 120, updated: 0 });
    const kept = faces.filter((f) => f.kept);
    const dropped = new Set(faces.filter((f) => !f.kept).map((f) => f.faceId));
    expect(db.size()).toBe(kept.length);
    expect(db.counts()).toMatchObject({ faces: 120, kept: kept.length, dropped: dropped.size });
    for (const f of kept) {
      const hits = db.search(f.embedding, 5);
      expect(hits[0].faceId).toBe(f.faceId);
      expect(hits[0].similarity).toBeCloseTo(1, 5);
      expect(hits.some((h) => dropped.has(h.faceId))).toBe(false);
    }
    // a raw query and its unit vector give the same answer: similarity is cosine
    const unit = Float32Array.from(kept[0].embedding.map((v) => v / kept[0].magnitude));
    expect(db.search(unit, 3).map((h) => h.faceId)).toEqual(
      db.search(kept[0].embedding, 3).map((h) => h.faceId),
    );
  });

  it('asks for more neighbours than exist and gets all of them, best first', () => {
    const db = openDb(newDir());
    expect(db.search(new Array(DIM).fill(1), 10)).toEqual([]);
    db.upsertFaces(makeFaces(3).map((f) => ({ ...f, kept: true })));
    const hits = db.search(new Array(DIM).fill(1), 10);
    expect(hits).toHaveLength(3);
    expect(hits[0].similarity).toBeGreaterThanOrEqual(hits[1].similarity);
  });

  it('filters results by face id', () => {
    const db = openDb(newDir());
    const faces = makeFaces(80).filter((f) => f.kept);
    db.upsertFaces(faces);
    const allowed = new Set(faces.filter((_, i) => i % 5 === 0).map((f) => f.faceId));
    const hits = db.search(faces[1].embedding, 8, (id) => allowed.has(id));
    expect(hits.length).toBe(8);
    expect(hits.every((h) => allowed.has(h.faceId))).toBe(true);
  });

  it('forgets faces, photos and identities: rows gone, vectors gone from every search', () => {
    const db = openDb(newDir(), { compactShare: 0.9 });
    const faces = makeFaces(60).map((f) => ({ ...f, kept: true }));
    db.upsertFaces(faces);
    db.upsertPhoto({
      photoId: 'p2',
      uri: 'file:///p2.jpg',
      library: null,
      width: 10,
      height: 10,
      contentHash: null,
      status: 'done',
      error: null,
    });
    expect(db.forgetFace(faces[0].faceId)).toBe(true);
    expect(db.forgetFace(faces[0].faceId)).toBe(false);
    expect(db.forgetPhoto('p2')).toBe(4);
    expect(db.getPhoto('p2')).toBeUndefined();
    db.createIdentity('alice');
    for (const f of faces.slice(20, 25)) db.setFaceIdentity(f.faceId, 'alice');
    expect(db.forgetIdentity('alice')).toBe(5);
    expect(db.getIdentity('alice')).toBeUndefined();
    const gone = [faces[0], ...faces.slice(8, 12), ...faces.slice(20, 25)];
    expect(db.size()).toBe(60 - gone.length);
    expect(db.counts().faces).toBe(60 - gone.length);
    for (const f of gone) {
      expect(db.getFace(f.faceId)).toBeUndefined();
      expect(db.search(f.embedding, db.size()).some((h) => h.faceId === f.faceId)).toBe(false);
    }
    expect(db.verify().ok).toBe(true);
  });

  it('accepts faces after reopening an empty data dir (a loaded empty index has no capacity of its own)', () => {
    const dir = newDir();
    openDb(dir).close();
    const db = openDb(dir);
    expect(db.recovery.action).toBe('loaded');
    const faces = makeFaces(10).map((f) => ({ ...f, kept: true }));
    db.upsertFaces(faces);
    expect(db.search(faces[4].embedding, 1)[0].faceId).toBe(faces[4].faceId);
  });

  it('grows its capacity past the initial allocation', () => {
    const db = openDb(newDir());
    const r = rng(9);
    const faces = Array.from({ length: 1500 }, (_, i) =>
      faceRecord(`g${i}`, 0, randomFeature(r, DIM), MODEL),
    );
    db.upsertFaces(faces);
    expect(db.size()).toBe(1500);
    expect(db.search(faces[1499].embedding, 1)[0].faceId).toBe(faces[1499].faceId);
  });
});

describe('FaceDatabase: idempotent upserts and stable ids', () => {
  it('replaying the same faces twice leaves counts and the change sequence unchanged', () => {
    const db = openDb(newDir());
    const faces = makeFaces(50);
    db.upsertFaces(faces);
    const counts = db.counts();
    const seq = db.seq();
    expect(db.upsertFaces(faces)).toEqual({ inserted: 0, updated: 50 });
    expect(db.upsertFaces(faces.slice(10, 20))).toEqual({ inserted: 0, updated: 10 });
    expect(db.counts()).toEqual(counts);
    expect(db.seq()).toBe(seq);
    expect(db.size()).toBe(counts.kept);
  });

  it('an upsert that drops a kept face takes it out of the index, and back in when kept again', () => {
    const db = openDb(newDir());
    const faces = makeFaces(20).map((f) => ({ ...f, kept: true }));
    db.upsertFaces(faces);
    db.upsertFaces([{ ...faces[3], kept: false, reason: 'low_magnitude' }]);
    expect(db.size()).toBe(19);
    expect(db.search(faces[3].embedding, 20).some((h) => h.faceId === faces[3].faceId)).toBe(false);
    db.upsertFaces([faces[3]]);
    expect(db.size()).toBe(20);
    expect(db.search(faces[3].embedding, 1)[0].faceId).toBe(faces[3].faceId);
  });

  it('keeps face ids, search results and labels across restarts', () => {
    const dir = newDir();
    let db = openDb(dir);
    const faces = makeFaces(100);
    db.upsertFaces(faces);
    const before = faces.filter((f) => f.kept).map((f) => db.search(f.embedding, 3).map((h) => h.faceId));
    db.close();
    db = openDb(dir);
    expect(db.recovery.action).toBe('loaded');
    const after = faces.filter((f) => f.kept).map((f) => db.search(f.embedding, 3).map((h) => h.faceId));
    expect(after).toEqual(before);
    expect(db.getFace(faces[5].faceId)?.embedding).toEqual(Float32Array.from(faces[5].embedding));
    expect(db.verify().ok).toBe(true);
  });

  it('a deleted face never comes back after a restart, with or without a checkpoint', () => {
    for (const checkpoint of [true, false]) {
      const dir = newDir();
      let db = openDb(dir, { compactShare: 0.9 });
      const faces = makeFaces(40).map((f) => ({ ...f, kept: true }));
      db.upsertFaces(faces);
      db.checkpoint();
      db.forgetFace(faces[7].faceId);
      db.forgetPhoto('p3');
      db.close({ checkpoint });
      db = openDb(dir);
      expect(db.recovery.action).toBe(checkpoint ? 'loaded' : 'replayed');
      for (const f of [faces[7], ...faces.slice(12, 16)]) {
        expect(db.search(f.embedding, db.size()).some((h) => h.faceId === f.faceId)).toBe(false);
      }
      expect(db.size()).toBe(35);
      expect(db.verify()).toMatchObject({ ok: true, missing: 0, extra: 0, store: 35, indexed: 35 });
    }
  });

  it('rolls back a failed transaction without leaving vectors in the index', () => {
    const db = openDb(newDir());
    const faces = makeFaces(10).map((f) => ({ ...f, kept: true }));
    expect(() =>
      db.transaction(() => {
        db.upsertFaces(faces);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(db.size()).toBe(0);
    expect(db.counts().faces).toBe(0);
  });

  it('rejects faces of another model or dimension', () => {
    const db = openDb(newDir());
    const [f] = makeFaces(1);
    expect(() => db.upsertFaces([{ ...f, modelId: 'other' }])).toThrow(/model other/);
    expect(() => db.upsertFaces([{ ...f, embedding: f.embedding.slice(1) }])).toThrow(/31-d/);
  });
});

describe('FaceDatabase: identities', () => {
  it('keeps templates (sum of raw kept features) and face counts right through assign, move, unassign and delete', () => {
    const db = openDb(newDir(), { compactShare: 0.9 });
    const faces = makeFaces(12).map((f, i) => ({ ...f, kept: i !== 5 }));
    db.upsertFaces(faces);
    db.createIdentity('a', 'Alice');
    db.createIdentity('b');
    for (const i of [0, 1, 2, 5]) db.setFaceIdentity(faces[i].faceId, 'a');
    for (const i of [3, 4]) db.setFaceIdentity(faces[i].faceId, 'b');
    const template = (id: string): number[] => Array.from(db.getIdentity(id)!.template);
    const expectTemplate = (id: string, idx: number[]): void => {
      const want = sum(
        idx.filter((i) => faces[i].kept).map((i) => faces[i].embedding),
        DIM,
      );
      template(id).forEach((v, j) => expect(v).toBeCloseTo(want[j], 3));
    };
    expect(db.getIdentity('a')).toMatchObject({ name: 'Alice', faceCount: 4 });
    expectTemplate('a', [0, 1, 2]); // face 5 is dropped: counted, but not in the template
    db.setFaceIdentity(faces[1].faceId, 'b'); // move
    expect(db.getIdentity('a')!.faceCount).toBe(3);
    expect(db.getIdentity('b')!.faceCount).toBe(3);
    expectTemplate('a', [0, 2]);
    expectTemplate('b', [1, 3, 4]);
    db.setFaceIdentity(faces[2].faceId, null); // unassign
    expectTemplate('a', [0]);
    expect(db.listFaces({ identityId: null }).map((f) => f.faceId)).toContain(faces[2].faceId);
    db.forgetFace(faces[3].faceId); // delete
    expect(db.getIdentity('b')!.faceCount).toBe(2);
    expectTemplate('b', [1, 4]);
    db.upsertFaces([{ ...faces[4], kept: false }]); // a face of b gets dropped on re-analysis
    expectTemplate('b', [1]);
    db.renameIdentity('b', 'Bob');
    db.deleteIdentityRow('b');
    expect(db.getFace(faces[1].faceId)!.identityId).toBeNull();
    expect(db.listIdentities().map((i) => i.identityId)).toEqual(['a']);
    expect(() => db.setFaceIdentity(faces[0].faceId, 'nobody')).toThrow(/no identity/);
  });

  it('stores corrections and identity events in order', () => {
    const db = openDb(newDir());
    db.addCorrection({ kind: 'cannot_link', a: 'x', b: 'y' });
    db.addCorrection({ kind: 'face_pinned', faceId: 'f1', identityId: 'x' });
    expect(db.listCorrections().map((c) => c.correction.kind)).toEqual(['cannot_link', 'face_pinned']);
    db.appendIdentityEvents([
      { type: 'created', identityId: 'x' },
      { type: 'renamed', identityId: 'x', name: 'X' },
    ]);
    const events = db.listIdentityEvents();
    expect(events.map((e) => e.event.type)).toEqual(['created', 'renamed']);
    expect(db.listIdentityEvents(events[0].seq)).toHaveLength(1);
  });
});

describe('FaceDatabase: compaction', () => {
  it('rebuilds without tombstones once they exceed compactShare', () => {
    const db = openDb(newDir(), { compactShare: 0.2 });
    const faces = makeFaces(100).map((f) => ({ ...f, kept: true }));
    db.upsertFaces(faces);
    for (const f of faces.slice(0, 15)) db.forgetFace(f.faceId);
    expect(db.tombstones()).toBe(15);
    for (const f of faces.slice(15, 21)) db.forgetFace(f.faceId);
    expect(db.tombstones()).toBe(0); // 21 of 100 crossed 0.2: compacted
    expect(db.size()).toBe(79);
    for (const f of faces.slice(21)) expect(db.search(f.embedding, 1)[0].faceId).toBe(f.faceId);
    expect(db.verify().ok).toBe(true);
  });
});

describe('FaceDatabase: recovery from a damaged index', () => {
  function seeded(): { dir: string; faces: FaceRecord[]; indexFile: string } {
    const dir = newDir();
    const db = openDb(dir);
    const faces = makeFaces(80);
    db.upsertFaces(faces);
    db.close();
    const indexFile = path.join(dir, readSidecar(dir)!.file);
    return { dir, faces, indexFile };
  }

  function reopenExpectRebuilt(dir: string, faces: FaceRecord[], why: RegExp): void {
    const log = recordingLogger();
    const db = openDb(dir, { log });
    expect(db.recovery.action).toBe('rebuilt');
    expect(db.recovery.reason).toMatch(why);
    const warnings = log.lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/rebuilding index from the store/);
    expect(warnings[0].msg).toMatch(why);
    for (const f of faces.filter((x) => x.kept)) expect(db.search(f.embedding, 1)[0].faceId).toBe(f.faceId);
    expect(db.verify().ok).toBe(true);
  }

  it('rebuilds a truncated index file', () => {
    const { dir, faces, indexFile } = seeded();
    truncateSync(indexFile, Math.floor(statSync(indexFile).size / 2));
    reopenExpectRebuilt(dir, faces, /truncated/);
  });

  it('rebuilds an index file overwritten with random bytes', () => {
    const { dir, faces, indexFile } = seeded();
    const size = statSync(indexFile).size;
    const r = rng(3);
    writeFileSync(indexFile, Buffer.from(Array.from({ length: size }, () => Math.floor(r() * 256))));
    reopenExpectRebuilt(dir, faces, /checksum/);
  });

  it('rebuilds a missing index file or sidecar', () => {
    const { dir, faces, indexFile } = seeded();
    rmSync(indexFile);
    reopenExpectRebuilt(dir, faces, /missing/);
    rmSync(path.join(dir, SIDECAR_FILE));
    reopenExpectRebuilt(dir, faces, /no index checkpoint/);
  });

  it('rebuilds an index of another dimension (with its own sidecar, or under the current one)', () => {
    const { dir, faces, indexFile } = seeded();
    const otherDir = newDir();
    const other = openFaceDatabase(otherDir, {
      modelId: MODEL,
      dim: 16,
      log: recordingLogger(),
    });
    other.upsertFaces(makeFaces(30, 5, 16));
    other.close();
    const otherSidecar = readSidecar(otherDir)!;
    // the foreign file under this checkpoint's name, sidecar intact: caught by size/checksum
    copyFileSync(path.join(otherDir, otherSidecar.file), indexFile);
    reopenExpectRebuilt(dir, faces, /truncated|checksum/);
    // the foreign file with its own sidecar: caught by the dimension
    copyFileSync(path.join(otherDir, otherSidecar.file), path.join(dir, otherSidecar.file));
    copyFileSync(path.join(otherDir, SIDECAR_FILE), path.join(dir, SIDECAR_FILE));
    reopenExpectRebuilt(dir, faces, /dimension 16/);
  });

  it('rebuilds an index of another model', () => {
    const { dir, faces } = seeded();
    const sidecarPath = path.join(dir, SIDECAR_FILE);
    const sidecar = JSON.parse(readFileSync(sidecarPath, 'utf8'));
    writeFileSync(sidecarPath, JSON.stringify({ ...sidecar, modelId: 'someone-else' }));
    reopenExpectRebuilt(dir, faces, /model someone-else/);
  });
});

describe('FaceDatabase: the store', () => {
  it('refuses a corrupt store with a clear error and leaves it untouched', () => {
    const dir = newDir();
    const db = openDb(dir);
    db.upsertFaces(makeFaces(20));
    db.close();
    const storePath = path.join(dir, STORE_FILE);
    const bytes = readFileSync(storePath);
    // overwrite everything after the SQLite header page with garbage
    const r = rng(4);
    const damaged = Buffer.from(bytes);
    for (let i = 100; i < damaged.length; i++) damaged[i] = Math.floor(r() * 256);
    writeFileSync(storePath, damaged);
    const digest = createHash('sha256').update(damaged).digest('hex');
    expect(() => openFaceDatabase(dir, { modelId: MODEL, dim: DIM, log: recordingLogger() })).toThrow(
      StoreCorruptError,
    );
    expect(() => openExistingDatabase(dir, { log: recordingLogger() })).toThrow(/corrupt/);
    expect(createHash('sha256').update(readFileSync(storePath)).digest('hex')).toBe(digest);
  });

  it('refuses a file that is not a database at all', () => {
    const dir = newDir();
    writeFileSync(
      path.join(dir, STORE_FILE),
      'this is not sqlite, but it is somebody\u2019s data'.repeat(100),
    );
    expect(() => openFaceDatabase(dir, { modelId: MODEL, dim: DIM, log: recordingLogger() })).toThrow(
      /corrupt or not a facepipe store/,
    );
  });

  it('refuses to open a store for another model, and an index without its store', () => {
    const dir = newDir();
    openDb(dir).close();
    expect(() => openFaceDatabase(dir, { modelId: 'other', dim: DIM })).toThrow(
      /separate data dir per model/,
    );
    expect(() => openFaceDatabase(dir, { modelId: MODEL, dim: 64 })).toThrow(/64-d/);
    rmSync(path.join(dir, STORE_FILE));
    expect(() => openFaceDatabase(dir, { modelId: MODEL, dim: DIM })).toThrow(/no store/);
  });

  it('openExistingDatabase reads model and dimension from the store, and says when there is none', () => {
    const dir = newDir();
    const db = openDb(dir);
    db.upsertFaces(makeFaces(8));
    db.close();
    const again = openExistingDatabase(dir, { log: recordingLogger() });
    open.push(again);
    expect(again.modelId).toBe(MODEL);
    expect(again.dim).toBe(DIM);
    expect(again.counts().faces).toBe(8);
    const empty = newDir();
    expect(() => openExistingDatabase(empty)).toThrow(/no facepipe store/);
    expect(existsSync(path.join(empty, STORE_FILE))).toBe(false);
  });
});

describe('FaceDatabase: two handles on one data dir', () => {
  it('a reader follows what a writer commits, and either may checkpoint', () => {
    const dir = newDir();
    const writer = openDb(dir);
    const reader = openDb(dir);
    const faces = makeFaces(40).map((f) => ({ ...f, kept: true }));
    writer.upsertFaces(faces);
    expect(reader.search(faces[9].embedding, 1)[0].faceId).toBe(faces[9].faceId);
    writer.forgetFace(faces[9].faceId);
    expect(reader.search(faces[9].embedding, 40).some((h) => h.faceId === faces[9].faceId)).toBe(false);
    expect(reader.size()).toBe(39);
    reader.checkpoint();
    writer.close({ checkpoint: false });
    reader.close({ checkpoint: false });
    const again = openDb(dir);
    expect(again.recovery.action).toBe('loaded');
    expect(again.verify()).toMatchObject({ ok: true, store: 39, indexed: 39 });
  });
});
