import hnswlib from 'hnswlib-node';
import type { ClusterFace } from './types.ts';

const { HierarchicalNSW } = hnswlib;

export interface HnswOptions {
  M: number;
  efConstruction: number;
  ef: number;
  seed: number;
}

/**
 * In-memory HNSW over unit vectors ('ip' space, so 1 − distance = cosine). Labels are the positions
 * in `members` (indices into the caller's face array). Insertion order is the caller's order and
 * hnswlib is single-threaded here, so the graph is deterministic for a given seed.
 */
export class UnitIndex {
  private readonly index: InstanceType<typeof HierarchicalNSW>;
  private count = 0;

  constructor(
    readonly dim: number,
    capacity: number,
    private readonly opts: HnswOptions,
  ) {
    this.index = new HierarchicalNSW('ip', dim);
    this.index.initIndex(Math.max(1, capacity), opts.M, opts.efConstruction, opts.seed);
    this.index.setEf(opts.ef);
  }

  add(unit: Float32Array, label: number): void {
    if (this.count >= this.index.getMaxElements()) this.index.resizeIndex(Math.max(16, this.count * 2));
    this.index.addPoint(Array.from(unit), label);
    this.count++;
  }

  size(): number {
    return this.count;
  }

  /** up to k nearest labels with their cosine, best first */
  search(
    unit: Float32Array,
    k: number,
    filter?: (label: number) => boolean,
  ): { labels: number[]; cos: number[] } {
    const n = Math.min(k, this.count);
    if (n === 0) return { labels: [], cos: [] };
    if (this.index.getEf() < n) this.index.setEf(n);
    const r = this.index.searchKnn(Array.from(unit), n, filter);
    return { labels: r.neighbors, cos: r.distances.map((d) => 1 - d) };
  }
}

/** kNN graph in CSR-like form: row i has neighbours nbr[i*k .. i*k+deg[i]) with cosines sim[...]. */
export interface KnnGraph {
  k: number;
  /** global face indices of the rows */
  nodes: Int32Array;
  deg: Int32Array;
  nbr: Int32Array;
  sim: Float32Array;
}

/**
 * kNN graph among `nodes` (indices into faces; default all), from an in-memory HNSW. The index ef
 * is at least max(ef, 2k) so the graph is close to exact. Self-matches are removed.
 */
export function buildKnnGraph(
  faces: readonly ClusterFace[],
  k: number,
  opts: HnswOptions,
  nodes?: Int32Array,
  onProgress?: (done: number, total: number) => void,
): { graph: KnnGraph; index: UnitIndex } {
  const rows = nodes ?? Int32Array.from(faces.keys());
  const dim = faces[0]?.unit.length ?? 1;
  const index = new UnitIndex(dim, rows.length, { ...opts, ef: Math.max(opts.ef, 2 * k) });
  const total = rows.length * 2;
  for (let r = 0; r < rows.length; r++) {
    index.add(faces[rows[r]].unit, rows[r]);
    if (onProgress && r % 1000 === 0) onProgress(r, total);
  }
  const deg = new Int32Array(rows.length);
  const nbr = new Int32Array(rows.length * k).fill(-1);
  const sim = new Float32Array(rows.length * k);
  for (let r = 0; r < rows.length; r++) {
    const self = rows[r];
    const found = index.search(faces[self].unit, k + 1);
    let d = 0;
    for (let t = 0; t < found.labels.length && d < k; t++) {
      if (found.labels[t] === self) continue;
      nbr[r * k + d] = found.labels[t];
      sim[r * k + d] = found.cos[t];
      d++;
    }
    deg[r] = d;
    if (onProgress && r % 1000 === 0) onProgress(rows.length + r, total);
  }
  onProgress?.(total, total);
  return { graph: { k, nodes: rows, deg, nbr, sim }, index };
}
