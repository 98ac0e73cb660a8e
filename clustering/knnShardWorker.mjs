// One shard of a parallel kNN search (clustering/parallelKnn.ts), in a worker thread: builds an
// HNSW index over the shard's vectors, then searches every query vector against it and writes the
// nearest labels and cosines into the shared result arrays. Plain JavaScript: the worker needs
// nothing but hnswlib, so it starts without the TypeScript loader.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * hnswlib built for x86-64-v3 (AVX2 + FMA; devkit/buildHnswlibX86v3.mjs) when it was built and
 * this CPU runs it, else the portable npm build. Same library, same results; only the distance
 * kernels differ in speed.
 */
function loadHnswlib() {
  const require = createRequire(import.meta.url);
  const tuned = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '../node_modules/.facepipe/hnswlib-x86-64-v3/addon.node',
  );
  if (process.arch === 'x64' && !workerData.portable && existsSync(tuned)) {
    let flags = '';
    try {
      flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
    } catch {
      // no /proc: keep the portable build
    }
    const has = (f) => new RegExp(`\\b${f}\\b`).test(flags);
    if (has('avx2') && has('fma') && has('bmi2')) return require(tuned);
  }
  return require('hnswlib-node');
}
const hnswlib = loadHnswlib();

const { vectors, dim, shard, queries, kPerQuery, M, efConstruction, ef, seed, outLabels, outCos } =
  workerData;
const units = new Float32Array(vectors);
const members = new Int32Array(shard);
const asked = new Int32Array(queries);
const labels = new Int32Array(outLabels);
const cos = new Float32Array(outCos);
const row = (i) => Array.from(units.subarray(i * dim, (i + 1) * dim));

const index = new hnswlib.HierarchicalNSW('ip', dim);
index.initIndex(Math.max(1, members.length), M, efConstruction, seed);
for (let m = 0; m < members.length; m++) index.addPoint(row(members[m]), members[m]);
index.setEf(Math.max(ef, kPerQuery));
const n = Math.min(kPerQuery, members.length);
labels.fill(-1);
if (n > 0) {
  for (let q = 0; q < asked.length; q++) {
    const found = index.searchKnn(row(asked[q]), n);
    const base = q * kPerQuery;
    for (let t = 0; t < found.neighbors.length; t++) {
      labels[base + t] = found.neighbors[t];
      cos[base + t] = 1 - found.distances[t];
    }
  }
}
parentPort.postMessage('done');
