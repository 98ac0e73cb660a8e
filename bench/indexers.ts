import { rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSidecar } from '../indexers/checkpoint.ts';
import { openFaceDatabase, type EmbeddedFaceDatabase } from '../indexers/database.ts';
import { DEFAULT_HNSW, HnswIndex } from '../indexers/hnswIndex.ts';
import { STORE_FILE } from '../indexers/store.ts';
import { gaussian, rng } from '../indexers/testUtil.ts';
import type { FaceRecord } from '../schemas/face.ts';
import { syntheticFaceRecord } from './syntheticFaces.ts';
import { median } from '../core/stats.ts';

/**
 * The vector database on synthetic 512-d embeddings: insert rate (store + index), k=10 query rate
 * and recall@10 against exact brute force over an ef ladder, bytes per face on disk and in memory,
 * checkpoint, load, replay and rebuild times. 100k faces (1M with --full).
 *
 * Synthetic faces: real face embeddings are not uniform on the 512-d sphere; they lie near a
 * low-dimensional manifold, in identity clusters. We draw identity centres in a 32-d latent space,
 * faces as centre + per-face latent noise, map to 512-d with a fixed random projection and add
 * isotropic noise. Uniform random 512-d vectors (no structure at all, the worst case for any ANN
 * index) are measured too, at 10k, as a stress figure.
 */

const DIM = 512;
const LATENT = 32;
const FACES_PER_IDENTITY = 10;
const MODEL = 'bench-512';
const RECALL_QUERIES = 200;
const RATE_QUERIES = 1000;
const EF_LADDER = [16, 32, 64, 128, 256];

export interface SyntheticFaces {
  /** unit vectors, one per face */
  vectors: Float32Array[];
  /** draw a new face of a random known identity (a lookup query) */
  query(): Float32Array;
}

function normalise(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

export function syntheticFaces(n: number, seed = 7): SyntheticFaces {
  const r = rng(seed);
  const projection = Array.from({ length: LATENT }, () =>
    Float32Array.from({ length: DIM }, () => gaussian(r)),
  );
  const identities = Array.from({ length: Math.ceil(n / FACES_PER_IDENTITY) }, () =>
    Array.from({ length: LATENT }, () => gaussian(r)),
  );
  const face = (): Float32Array => {
    const centre = identities[Math.floor(r() * identities.length)];
    const v = new Float32Array(DIM);
    for (let k = 0; k < LATENT; k++) {
      const z = centre[k] + 0.5 * gaussian(r);
      const p = projection[k];
      for (let j = 0; j < DIM; j++) v[j] += z * p[j];
    }
    for (let j = 0; j < DIM; j++) v[j] += 0.3 * gaussian(r);
    return normalise(v);
  };
  return { vectors: Array.from({ length: n }, face), query: face };
}

function uniformVectors(n: number, seed: number): Float32Array[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => normalise(Float32Array.from({ length: DIM }, () => gaussian(r))));
}

/** Exact top-k by inner product (brute force). */
export function exactTopK(data: Float32Array[], q: Float32Array, k: number): number[] {
  const best: { i: number; s: number }[] = [];
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    let s = 0;
    for (let j = 0; j < DIM; j++) s += v[j] * q[j];
    if (best.length < k || s > best[best.length - 1].s) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.i);
}

function record(i: number, v: Float32Array): FaceRecord {
  const magnitude = 20 + (i % 10);
  return syntheticFaceRecord({
    faceId: `f${i}`,
    photoId: `p${i}`,
    embedding: Array.from(v, (x) => x * magnitude),
    magnitude,
    quality: 0.8,
    modelId: MODEL,
  });
}

function measureQueries(
  db: EmbeddedFaceDatabase,
  queries: Float32Array[],
  truth: string[][],
  ef: number,
): { ef: number; recallAt10: number; qps: number; p50ms: number } {
  db.setEf(ef);
  let hits = 0;
  for (let i = 0; i < truth.length; i++) {
    const want = new Set(truth[i]);
    for (const h of db.search(queries[i], 10)) if (want.has(h.faceId)) hits++;
  }
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < RATE_QUERIES; i++) {
    const t = performance.now();
    db.search(queries[i % queries.length], 10);
    times.push(performance.now() - t);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    ef,
    recallAt10: round(hits / (truth.length * 10), 4),
    qps: Math.round(RATE_QUERIES / seconds),
    p50ms: round(median(times), 3),
  };
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const rssMiB = (): number => process.memoryUsage().rss / 2 ** 20;

function timed<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const out = fn();
  return [out, (performance.now() - t) / 1000];
}

/** Worst case: uniform random unit vectors; recall at the default ef and at larger ones. */
function uniformStress(n: number): Record<string, unknown> {
  const data = uniformVectors(n, 11);
  const index = HnswIndex.create(DIM, { ...DEFAULT_HNSW }, n);
  data.forEach((v, i) => index.upsert(i, v));
  const queries = uniformVectors(100, 12);
  const truth = queries.map((q) => new Set(exactTopK(data, q, 10)));
  const ladder = [DEFAULT_HNSW.ef, 512].map((ef) => {
    index.setEf(ef);
    let hits = 0;
    queries.forEach((q, i) => index.search(q, 10).forEach((h) => (hits += truth[i].has(h.label) ? 1 : 0)));
    return { ef, recallAt10: round(hits / 1000, 3) };
  });
  return { n, ladder };
}

export async function run(opts: { full: boolean; n?: number }): Promise<Record<string, unknown>> {
  const n = opts.n ?? (opts.full ? 1_000_000 : 100_000);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-bench-index-'));
  try {
    const synth = syntheticFaces(n + 1000);
    const data = synth.vectors.slice(0, n);
    const later = synth.vectors.slice(n);
    const rssBefore = rssMiB();
    let db = openFaceDatabase(dataDir, { modelId: MODEL, dim: DIM });

    // insert: store + index, in batches of 1000 (one transaction each), as the indexer stage does
    const [, insertSeconds] = timed(() => {
      for (let i = 0; i < n; i += 1000)
        db.upsertFaces(data.slice(i, i + 1000).map((v, j) => record(i + j, v)));
    });
    const rssAfter = rssMiB();

    // queries: new faces of known identities; exact answers by brute force on a sample
    const queries = Array.from({ length: RECALL_QUERIES }, () => synth.query());
    const truth = queries.map((q) => exactTopK(data, q, 10).map((i) => `f${i}`));
    const ladder = EF_LADDER.map((ef) => measureQueries(db, queries, truth, ef));
    const atDefault = measureQueries(db, queries, truth, DEFAULT_HNSW.ef);

    const [, checkpointSeconds] = timed(() => db.checkpoint());
    db.close();
    const sidecar = readSidecar(dataDir)!;
    const indexBytes = statSync(path.join(dataDir, sidecar.file)).size;
    const storeBytes = statSync(path.join(dataDir, STORE_FILE)).size;

    // recovery: load a current checkpoint; then replay 1000 changes made after it; then rebuild
    const [loaded, loadSeconds] = timed(() => openFaceDatabase(dataDir, { modelId: MODEL, dim: DIM }));
    db = loaded;
    db.upsertFaces(later.map((v, j) => record(n + j, v)));
    db.close({ checkpoint: false });
    const [replayed, replaySeconds] = timed(() => openFaceDatabase(dataDir, { modelId: MODEL, dim: DIM }));
    db = replayed;
    const replayAction = db.recovery.action;
    const [, rebuildSeconds] = timed(() => db.rebuildIndex('benchmark'));
    const verify = db.verify({ selfSearchSample: 100 });
    db.close();

    const uniform = uniformStress(10_000);
    return {
      n,
      dim: DIM,
      data: `synthetic faces: ${n / FACES_PER_IDENTITY} identities × ~${FACES_PER_IDENTITY}, ${LATENT}-d latent projected to 512-d + noise`,
      hnsw: { ...DEFAULT_HNSW },
      insertPerSecond: Math.round(n / insertSeconds),
      insertSeconds: round(insertSeconds, 1),
      defaultEf: atDefault,
      efLadder: ladder,
      bytesPerFace: {
        indexFile: Math.round(indexBytes / n),
        store: Math.round(storeBytes / n),
        memoryRss: Math.round(((rssAfter - rssBefore) * 2 ** 20) / n),
      },
      checkpointSeconds: round(checkpointSeconds, 2),
      recovery: {
        loadCheckpointSeconds: round(loadSeconds, 2),
        replay1000Seconds: round(replaySeconds, 2),
        replayAction,
        rebuildSeconds: round(rebuildSeconds, 1),
      },
      verifyOk: verify.ok,
      uniformStress: uniform,
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// `node bin/run-ts.mjs bench/indexers.ts [--full] [--n=N]`: run this benchmark alone
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const nArg = process.argv.find((a) => a.startsWith('--n='));
  const figures = await run({
    full: process.argv.includes('--full'),
    n: nArg ? Number(nArg.slice(4)) : undefined,
  });
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}
