import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openFaceDatabase } from '../indexers/database.ts';
import type { FaceRecord } from '../schemas/face.ts';
import { syntheticFaceRecord } from './syntheticFaces.ts';
import { IdentityService } from '../service/identityService.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { buildServer } from '../api/server.ts';
import { searchByVector } from '../api/search.ts';
import { rng } from '../core/random.ts';
import { qualityFromMagnitude } from '../pipeline/qualityGate.ts';
import { loadManifest, resolveModelsDir, type EmbedderManifest } from '../pipeline/models.ts';

/**
 * Lookup latency: search-by-embedding at N faces (synthetic 192-d MagFace-like vectors: identity
 * centres plus noise, magnitudes spread over the calibration range), in process and over HTTP
 * (fastify on loopback, one request at a time). Figures are milliseconds, p50 / p99.
 */
const DIM = 192;
const FACES_PER_IDENTITY = 10;
/** The test embedder's manifest (192-d, like the vectors here) supplies every threshold. */
function embedderManifest(): EmbedderManifest {
  const embedder = loadManifest(resolveModelsDir()).embedders[0];
  if (!embedder) throw new Error('no embedder in the models manifest');
  return embedder;
}

export async function run(opts: { full: boolean }): Promise<Record<string, unknown>> {
  const faces = Number(process.env.FACEPIPE_BENCH_LOOKUP_FACES ?? 100_000);
  const queries = opts.full ? 2000 : 1000;
  const k = 10;
  const manifest = embedderManifest();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-bench-lookup-'));
  const rand = rng(42);
  try {
    const db = openFaceDatabase(dir, { modelId: 'synthetic-192', dim: DIM });
    const identities = faces / FACES_PER_IDENTITY;
    const centres = Array.from({ length: identities }, () => unitVector(rand));
    const t0 = Date.now();
    fill(db, centres, faces, rand, manifest.quality);
    const insertSeconds = (Date.now() - t0) / 1000;
    db.checkpoint();

    const queryVectors = Array.from({ length: queries }, () =>
      noisyFace(centres[Math.floor(rand() * identities)]!, rand),
    );
    const inProcess = timeEach(queryVectors, (q) =>
      searchByVector(db, q, k, manifest.quality.magnitudeRange),
    );
    const rawSearch = timeEach(queryVectors, (q) => db.search(q, k));

    const params = clusterParamsFromManifest(manifest);
    const app = await buildServer({ db, identities: new IdentityService(db, params), params });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const bodies = queryVectors.map((q) => JSON.stringify({ embedding: Array.from(q), k }));
    for (const body of bodies.slice(0, 50)) await post(url, body); // warm-up (JIT, sockets)
    const http = await timeEachAsync(bodies, (body) => post(url, body));
    await app.close();
    db.close();
    return {
      faces,
      identities,
      dim: DIM,
      k,
      queries,
      insertSeconds,
      hnswSearchMs: rawSearch,
      searchInProcessMs: inProcess,
      searchHttpMs: http,
      note: 'search-by-embedding, one request at a time over loopback HTTP; in-process = HNSW search + identity ranking',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fill(
  db: ReturnType<typeof openFaceDatabase>,
  centres: Float32Array[],
  faces: number,
  rand: () => number,
  calibration: EmbedderManifest['quality'],
): void {
  const BATCH = 2000;
  for (let start = 0; start < faces; start += BATCH) {
    const records: FaceRecord[] = [];
    for (let i = start; i < Math.min(faces, start + BATCH); i++) {
      records.push(
        syntheticRecord(i, noisyFace(centres[Math.floor(i / FACES_PER_IDENTITY)]!, rand), calibration),
      );
    }
    db.transaction(() => {
      db.upsertFaces(records);
      for (const r of records) {
        const id = `i_${Math.floor(Number(r.faceId.slice(2)) / FACES_PER_IDENTITY)}`;
        if (!db.getIdentity(id)) db.createIdentity(id);
        db.setFaceIdentity(r.faceId, id);
      }
    });
  }
}

/** Face `i` of a synthetic store (photo `p_i`, id `f_i`) with this raw feature. */
export function syntheticRecord(
  i: number,
  raw: Float32Array,
  calibration: EmbedderManifest['quality'],
): FaceRecord {
  const magnitude = Math.hypot(...raw);
  return syntheticFaceRecord({
    faceId: `f_${i}`,
    photoId: `p_${i}`,
    embedding: Array.from(raw),
    magnitude,
    quality: qualityFromMagnitude(calibration, magnitude),
    modelId: 'synthetic-192',
  });
}

/** A raw feature near `centre`: direction noise like a real same-identity spread (cosine ≈ 0.7), magnitude 45..85. */
export function noisyFace(centre: Float32Array, rand: () => number): Float32Array {
  const out = new Float32Array(DIM);
  const noise = unitVector(rand);
  let n = 0;
  for (let i = 0; i < DIM; i++) {
    out[i] = centre[i]! + 0.9 * noise[i]!;
    n += out[i]! * out[i]!;
  }
  const magnitude = 45 + 40 * rand();
  const f = magnitude / Math.sqrt(n);
  for (let i = 0; i < DIM; i++) out[i]! *= f;
  return out;
}

export function unitVector(rand: () => number): Float32Array {
  const v = new Float32Array(DIM);
  let n = 0;
  for (let i = 0; i < DIM; i += 2) {
    // Box–Muller: two normals per pair of uniforms
    const r = Math.sqrt(-2 * Math.log(rand() + 1e-12));
    const t = 2 * Math.PI * rand();
    v[i] = r * Math.cos(t);
    if (i + 1 < DIM) v[i + 1] = r * Math.sin(t);
  }
  for (const x of v) n += x * x;
  const f = 1 / Math.sqrt(n);
  for (let i = 0; i < DIM; i++) v[i]! *= f;
  return v;
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(`${url}/search/embedding`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  if (res.status !== 200) throw new Error(`search failed: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

export function timeEach<T>(items: T[], fn: (x: T) => unknown): { p50: number; p99: number; mean: number } {
  const ms: number[] = [];
  for (const x of items) {
    const t = process.hrtime.bigint();
    fn(x);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return percentiles(ms);
}

async function timeEachAsync<T>(
  items: T[],
  fn: (x: T) => Promise<unknown>,
): Promise<{ p50: number; p99: number; mean: number }> {
  const ms: number[] = [];
  for (const x of items) {
    const t = process.hrtime.bigint();
    await fn(x);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return percentiles(ms);
}

export function percentiles(ms: number[]): { p50: number; p99: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return { p50: r3(at(0.5)), p99: r3(at(0.99)), mean: r3(s.reduce((a, b) => a + b, 0) / s.length) };
}

// `node bin/run-ts.mjs bench/lookup.ts [--full]` runs it alone.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run({ full: process.argv.includes('--full') }).then((r) =>
    process.stdout.write(JSON.stringify(r, null, 2) + '\n'),
  );
}
