// One shard of a parallel kNN search (clustering/parallelKnn.ts), in a worker thread: builds an
// HNSW index over the shard's vectors, then searches every query vector against it and writes the
// nearest labels and cosines into the shared result arrays. Plain JavaScript: the worker needs
// nothing but hnswlib, so it starts without the TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import { loadHnswlib } from './hnswlibBuild.mjs';

const { lib: hnswlib, build } = loadHnswlib({ portable: workerData.portable });

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
parentPort.postMessage({ build });
