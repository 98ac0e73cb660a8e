// The kNN search of clustering/parallelKnn.ts in a worker thread, writing the nearest labels and
// cosines of every query into the shared result arrays: either the whole search in the native
// kernel on several threads (`kernelThreads` > 0), or one shard: an HNSW index over the shard's
// vectors, searched by every query. Plain JavaScript: the worker needs nothing but hnswlib, so it
// starts without the TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import { loadHnswlib, loadKnnKernel } from './hnswlibBuild.mjs';

const { vectors, dim, shard, queries, kPerQuery, M, efConstruction, ef, seed, outLabels, outCos } =
  workerData;
if (workerData.kernelThreads > 0) runKernel();
else runShard();

/** the whole search in the native kernel, on `kernelThreads` threads (one index over every indexed face) */
function runKernel() {
  const { kernel, reason } = loadKnnKernel({ portable: workerData.portable });
  if (!kernel) throw new Error(`kNN kernel asked for but not available: ${reason}`);
  kernel.knnGraph({
    vectors: new Float32Array(vectors),
    dim,
    indexed: new Int32Array(shard),
    queries: new Int32Array(queries),
    k: kPerQuery,
    M,
    efConstruction,
    ef,
    seed,
    threads: workerData.kernelThreads,
    outLabels: new Int32Array(outLabels),
    outCos: new Float32Array(outCos),
  });
  parentPort.postMessage({ build: 'x86-64-v3', engine: 'kernel' });
}

/** one shard: an hnswlib-node index over the shard's faces, searched by every query */
function runShard() {
  const { lib: hnswlib, build } = loadHnswlib({ portable: workerData.portable });
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
  parentPort.postMessage({ build, engine: 'shards' });
}
