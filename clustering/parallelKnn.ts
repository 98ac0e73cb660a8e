import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { HnswOptions, KnnGraph } from './knnGraph.ts';
import type { ClusterFace } from './types.ts';
import { loadKnnKernel, type HnswlibBuild, type KnnEngine } from './hnswlibBuild.mjs';

/**
 * The kNN search of batch clustering spread over the cores, off the main thread. Where the native
 * kernel is built (clustering/native/knnGraph.cc, with the x86-64-v3 build) one worker runs it: one
 * index over every indexed face, built by `threads` threads inserting concurrently, then all queries
 * searched on `threads` threads — the work of pip hnswlib's add_items + knn_query, with no JS array
 * per vector. Concurrent insertion makes the graph depend on thread timing (a few neighbours differ
 * from run to run, as with pip hnswlib); with one thread it is exactly the single index.
 *
 * Otherwise (portable build, no kernel, or `engine: 'shards'`): the indexed faces are split into
 * one shard per thread; each thread builds an HNSW index of its shard (hnswlib builds one index on
 * one thread, so sharding is what lets every core insert) and searches every query against it; the
 * shards' answers are merged per query, best cosine first. With one thread this is the single index
 * of `buildKnnGraph`. Deterministic for given threads: fixed shards and order, seeded indexes, ties
 * broken by face index. The workers use hnswlib's x86-64-v3 build when there is one and the CPU
 * runs it (clustering/hnswlibBuild.mjs; `build.portable` forces the npm build: bit-for-bit
 * comparisons with the main thread).
 */

/** Each query's nearest indexed faces: row q holds up to `k` labels (−1 pads) with cosines. */
export interface NeighbourTable {
  k: number;
  /** face index → row, or −1 when the face was not a query */
  rowOf: Int32Array;
  labels: Int32Array;
  cos: Float32Array;
  /** the hnswlib addon the workers loaded */
  hnswlib: HnswlibBuild;
  /** the native kernel on every core, or hnswlib-node shards in worker threads */
  engine: KnnEngine;
}

export function defaultKnnThreads(): number {
  return Math.max(1, os.availableParallelism());
}

/**
 * Nearest `k` faces among `indexed` for each face of `queries` (face indices into `faces`), a query
 * being its own nearest neighbour when it is indexed.
 */
export async function parallelNeighbours(
  faces: readonly ClusterFace[],
  indexed: Int32Array,
  queries: Int32Array,
  k: number,
  opts: HnswOptions,
  threads = defaultKnnThreads(),
  build: { portable?: boolean; engine?: KnnEngine } = {},
): Promise<NeighbourTable> {
  const dim = faces[0]?.unit.length ?? 1;
  const rowOf = new Int32Array(faces.length).fill(-1);
  queries.forEach((f, q) => (rowOf[f] = q));
  // the vectors the workers read: indexed and queried faces only, shared (not copied per thread)
  const vectors = new SharedArrayBuffer(faces.length * dim * 4);
  const units = new Float32Array(vectors);
  for (const set of [indexed, queries]) for (const f of set) units.set(faces[f]!.unit, f * dim);
  const portable = build.portable === true;
  if (build.engine !== 'shards' && loadKnnKernel({ portable }).kernel) {
    const all = await searchShard(vectors, dim, indexed, queries, k, opts, portable, Math.max(1, threads));
    return { k, rowOf, labels: all.labels, cos: all.cos, hnswlib: all.build, engine: 'kernel' };
  }
  const shards = Math.max(1, Math.min(threads, indexed.length));
  const answers = await Promise.all(
    Array.from({ length: shards }, (_, s) => {
      const from = Math.floor((s * indexed.length) / shards);
      const to = Math.floor(((s + 1) * indexed.length) / shards);
      return searchShard(vectors, dim, indexed.slice(from, to), queries, k, opts, portable, 0);
    }),
  );
  const hnswlib = answers.every((a) => a.build === 'x86-64-v3') ? 'x86-64-v3' : 'portable';
  const engine = 'shards';
  if (answers.length === 1)
    return { k, rowOf, labels: answers[0]!.labels, cos: answers[0]!.cos, hnswlib, engine };
  return { k, rowOf, ...mergeShards(answers, queries.length, k), hnswlib, engine };
}

function shared(length: number, bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, length) * bytes);
}

function searchShard(
  vectors: SharedArrayBuffer,
  dim: number,
  members: Int32Array,
  queries: Int32Array,
  k: number,
  opts: HnswOptions,
  portable: boolean,
  /** > 0: the whole search in the native kernel on this many threads */
  kernelThreads: number,
): Promise<{ labels: Int32Array; cos: Float32Array; build: HnswlibBuild }> {
  const shard = shared(members.length, 4);
  new Int32Array(shard).set(members);
  const asked = shared(queries.length, 4);
  new Int32Array(asked).set(queries);
  const outLabels = shared(queries.length * k, 4);
  const outCos = shared(queries.length * k, 4);
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./knnShardWorker.mjs', import.meta.url), {
      workerData: {
        vectors,
        dim,
        shard,
        queries: asked,
        kPerQuery: k,
        M: opts.M,
        efConstruction: opts.efConstruction,
        ef: opts.ef,
        seed: opts.seed,
        outLabels,
        outCos,
        portable,
        kernelThreads,
      },
    });
    worker.once('message', (done: { build: HnswlibBuild }) =>
      resolve({ labels: new Int32Array(outLabels), cos: new Float32Array(outCos), build: done.build }),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`kNN shard worker exited with code ${code}`));
    });
  });
}

/** Per query, the best `k` of the shards' candidates: higher cosine first, then lower face index. */
function mergeShards(
  answers: { labels: Int32Array; cos: Float32Array }[],
  queries: number,
  k: number,
): { labels: Int32Array; cos: Float32Array } {
  const labels = new Int32Array(queries * k).fill(-1);
  const cos = new Float32Array(queries * k);
  const candLabel: number[] = [];
  const candCos: number[] = [];
  const order: number[] = [];
  for (let q = 0; q < queries; q++) {
    candLabel.length = 0;
    candCos.length = 0;
    for (const a of answers) {
      for (let t = q * k; t < (q + 1) * k && a.labels[t]! >= 0; t++) {
        candLabel.push(a.labels[t]!);
        candCos.push(a.cos[t]!);
      }
    }
    order.length = candLabel.length;
    for (let c = 0; c < order.length; c++) order[c] = c;
    order.sort((x, y) => candCos[y]! - candCos[x]! || candLabel[x]! - candLabel[y]!);
    for (let t = 0; t < Math.min(k, order.length); t++) {
      labels[q * k + t] = candLabel[order[t]!]!;
      cos[q * k + t] = candCos[order[t]!]!;
    }
  }
  return { labels, cos };
}

/** The kNN graph among `nodes` (each row without its own face) from their neighbour table. */
export function graphFromTable(table: NeighbourTable, nodes: Int32Array, k: number): KnnGraph {
  const deg = new Int32Array(nodes.length);
  const nbr = new Int32Array(nodes.length * k).fill(-1);
  const sim = new Float32Array(nodes.length * k);
  for (let r = 0; r < nodes.length; r++) {
    const self = nodes[r]!;
    const q = table.rowOf[self]!;
    let d = 0;
    for (let t = 0; t < table.k && d < k; t++) {
      const j = table.labels[q * table.k + t]!;
      if (j < 0) break;
      if (j === self) continue;
      nbr[r * k + d] = j;
      sim[r * k + d] = table.cos[q * table.k + t]!;
      d++;
    }
    deg[r] = d;
  }
  return { k, nodes, deg, nbr, sim };
}
