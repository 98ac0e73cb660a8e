import { createRequire } from 'node:module';
import type * as Hnswlib from 'hnswlib-node';

// hnswlib-node is a CommonJS addon whose named exports Node's ESM loader cannot see
const hnswlib = createRequire(import.meta.url)('hnswlib-node') as typeof Hnswlib;

/** HNSW graph parameters. Defaults measured in bench/indexers.ts (recall@10 ≥ 0.98 at 100k × 512). */
export interface HnswParams {
  /** graph degree (links per node per layer; layer 0 has 2·M) */
  M: number;
  /** candidate list size while inserting: higher builds a better graph, slower */
  efConstruction: number;
  /** candidate list size while searching: the recall/speed knob */
  ef: number;
}

export const DEFAULT_HNSW: HnswParams = { M: 16, efConstruction: 100, ef: 128 };

const INITIAL_CAPACITY = 1024;

export interface LabelHit {
  label: number;
  /** cosine similarity = inner product of the unit vectors */
  similarity: number;
}

/** Scales a raw feature to unit length (the magnitude stays in the store). */
export function toUnit(v: ArrayLike<number>): number[] {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  const norm = Math.sqrt(sum);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new Error('cannot index a zero or non-finite vector');
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] / norm;
  return out;
}

/**
 * hnswlib-node HierarchicalNSW in inner-product space over unit vectors, with 32-bit labels.
 * It tracks which labels are searchable (`live`) and which are tombstones (marked deleted), since
 * hnswlib-node does not expose that, and grows its capacity by doubling.
 */
export class HnswIndex {
  private readonly index: Hnswlib.HierarchicalNSW;
  private readonly live = new Set<number>();
  private readonly tombstones = new Set<number>();

  private constructor(
    readonly dim: number,
    readonly params: HnswParams,
  ) {
    this.index = new hnswlib.HierarchicalNSW('ip', dim);
  }

  static create(dim: number, params: HnswParams, capacity = INITIAL_CAPACITY): HnswIndex {
    const idx = new HnswIndex(dim, params);
    idx.index.initIndex({
      maxElements: Math.max(capacity, 16),
      m: params.M,
      efConstruction: params.efConstruction,
      randomSeed: 100,
    });
    idx.index.setEf(params.ef);
    return idx;
  }

  /**
   * Loads an index file. The caller has already checked the file's checksum and dimension
   * (hnswlib trusts the file's header and can crash on garbage). Every stored label starts as
   * live; the caller then tombstones those the store no longer keeps (`reconcile`).
   */
  static load(file: string, dim: number, params: HnswParams): HnswIndex {
    const idx = new HnswIndex(dim, params);
    idx.index.readIndexSync(file);
    // hnswlib loads an empty index with capacity 0 (it sizes a loaded index to its element count)
    if (idx.index.getMaxElements() < INITIAL_CAPACITY)
      idx.index.resizeIndex(Math.max(INITIAL_CAPACITY, idx.index.getCurrentCount()));
    idx.index.setEf(params.ef);
    for (const label of idx.index.getIdsList()) idx.live.add(label);
    return idx;
  }

  write(file: string): void {
    this.index.writeIndexSync(file);
  }

  /** Searchable vectors. */
  size(): number {
    return this.live.size;
  }

  tombstoneCount(): number {
    return this.tombstones.size;
  }

  /** Share of the graph's nodes that are tombstones. */
  deletedShare(): number {
    const total = this.live.size + this.tombstones.size;
    return total === 0 ? 0 : this.tombstones.size / total;
  }

  has(label: number): boolean {
    return this.live.has(label);
  }

  liveLabels(): IterableIterator<number> {
    return this.live.values();
  }

  /** Every label stored in the graph, live or tombstoned (read from hnswlib itself). */
  storedLabels(): number[] {
    return this.index.getIdsList();
  }

  setEf(ef: number): void {
    this.params.ef = ef;
    this.index.setEf(ef);
  }

  /** Adds, or replaces the vector of, `label` (a tombstoned label is revived). */
  upsert(label: number, raw: ArrayLike<number>): void {
    const unit = toUnit(raw);
    if (unit.length !== this.dim)
      throw new Error(`vector has ${unit.length} dimensions, index has ${this.dim}`);
    if (!this.live.has(label) && !this.tombstones.has(label)) this.ensureCapacity(1);
    this.index.addPoint(unit, label);
    this.live.add(label);
    this.tombstones.delete(label);
  }

  /** Makes `label` unsearchable; returns false when it was not searchable. */
  remove(label: number): boolean {
    if (!this.live.has(label)) return false;
    try {
      this.index.markDelete(label);
    } catch (err) {
      // already a tombstone in the graph (e.g. loaded from a checkpoint): the goal holds
      if (!/already deleted/.test((err as Error).message)) throw err;
    }
    this.live.delete(label);
    this.tombstones.add(label);
    return true;
  }

  private ensureCapacity(extra: number): void {
    const max = this.index.getMaxElements();
    const needed = this.index.getCurrentCount() + extra;
    if (needed <= max) return;
    let next = Math.max(max, INITIAL_CAPACITY);
    while (next < needed) next *= 2;
    this.index.resizeIndex(next);
  }

  /** The k nearest live labels to `query`, best first; `filter` (on labels) narrows the candidates. */
  search(query: ArrayLike<number>, k: number, filter?: (label: number) => boolean): LabelHit[] {
    const n = Math.min(Math.floor(k), this.live.size);
    if (n <= 0) return [];
    const unit = toUnit(query);
    if (unit.length !== this.dim)
      throw new Error(`query has ${unit.length} dimensions, index has ${this.dim}`);
    const result = filter ? this.index.searchKnn(unit, n, filter) : this.index.searchKnn(unit, n);
    return result.neighbors.map((label, i) => ({ label, similarity: 1 - result.distances[i] }));
  }

  /** Approximate resident size of the graph: vectors, links and labels, as hnswlib lays them out. */
  memoryBytes(): number {
    const M = this.params.M;
    const perElement = this.dim * 4 + (2 * M + 1) * 4 + 8; // data + level-0 links + label
    const upperLevels = ((M + 1) * 4) / Math.log(M); // expected upper-level links per element
    return Math.round(
      this.index.getMaxElements() * (perElement + 8) + this.index.getCurrentCount() * upperLevels,
    );
  }
}
