import type { KnnGraph } from './knnGraph.ts';
import { UnionFind } from './unionFind.ts';
import { addScaled, dot } from './vec.ts';

/**
 * Average-linkage agglomerative clustering (HAC) over the pairs a kNN graph connects.
 *
 * Each group keeps the weighted sum of its faces' unit vectors S = Σ w·u and its weight W = Σ w, so
 * the weighted mean pairwise cosine between two groups is exactly S_A·S_B / (W_A·W_B): average
 * linkage without a pairwise matrix. The most similar pair of connected groups is merged first
 * (a max-heap with lazy invalidation), as long as its average reaches the threshold; two groups no
 * kNN edge connects are never merged (their average cosine is low for any sensible k).
 * With unit weights this is the classic unweighted average linkage (UPGMA) baseline.
 * Deterministic: ties are broken by group root.
 */
export interface HacOptions {
  /** weight of face i (default 1) */
  weight?: (i: number) => number;
  /** the average a merge needs */
  threshold: number;
}

export interface HacResult {
  uf: UnionFind;
  /** weighted sum of unit vectors per root (only valid at roots) */
  sums: Map<number, Float32Array>;
  weights: Float64Array;
}

interface Candidate {
  sim: number;
  a: number;
  b: number;
  va: number;
  vb: number;
}

export function averageLinkage(units: readonly Float32Array[], graph: KnnGraph, opts: HacOptions): HacResult {
  const n = units.length;
  const uf = new UnionFind(n);
  const weightOf = opts.weight ?? (() => 1);
  const weights = new Float64Array(n);
  const sums = new Map<number, Float32Array>();
  const neighbours = new Map<number, Set<number>>();
  const version = new Int32Array(n);
  const minThreshold = opts.threshold;

  for (const i of graph.nodes) {
    weights[i] = weightOf(i);
    const s = new Float32Array(units[i].length);
    addScaled(s, units[i], weights[i]);
    sums.set(i, s);
    neighbours.set(i, new Set());
  }
  for (let r = 0; r < graph.nodes.length; r++) {
    const i = graph.nodes[r];
    for (let t = 0; t < graph.deg[r]; t++) {
      const j = graph.nbr[r * graph.k + t];
      if (j === i || !neighbours.has(j)) continue;
      neighbours.get(i)!.add(j);
      neighbours.get(j)!.add(i);
    }
  }
  const heap = new MaxHeap();
  const average = (a: number, b: number) => dot(sums.get(a)!, sums.get(b)!) / (weights[a] * weights[b]);
  const push = (a: number, b: number) => {
    const [x, y] = a < b ? [a, b] : [b, a];
    const sim = average(x, y);
    if (sim >= minThreshold) heap.push({ sim, a: x, b: y, va: version[x], vb: version[y] });
  };
  for (const [i, nb] of neighbours) for (const j of nb) if (i < j) push(i, j);

  while (heap.size > 0) {
    const c = heap.pop()!;
    if (version[c.a] !== c.va || version[c.b] !== c.vb) continue;
    if (uf.find(c.a) !== c.a || uf.find(c.b) !== c.b) continue;
    const root = uf.union(c.a, c.b);
    const other = root === c.a ? c.b : c.a;
    addScaled(sums.get(root)!, sums.get(other)!, 1);
    sums.delete(other);
    weights[root] += weights[other];
    version[root]++;
    version[other]++;
    const merged = neighbours.get(root)!;
    for (const x of neighbours.get(other)!) merged.add(x);
    neighbours.delete(other);
    merged.delete(root);
    merged.delete(other);
    for (const x of merged) {
      const nx = neighbours.get(x)!;
      nx.delete(other);
      nx.add(root);
      push(root, x);
    }
  }
  return { uf, sums, weights };
}

/** Binary max-heap of merge candidates by similarity (ties: smaller roots first). */
class MaxHeap {
  private readonly items: Candidate[] = [];

  get size(): number {
    return this.items.length;
  }

  private static above(p: Candidate, q: Candidate): boolean {
    return p.sim > q.sim || (p.sim === q.sim && (p.a < q.a || (p.a === q.a && p.b < q.b)));
  }

  push(c: Candidate): void {
    const h = this.items;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!MaxHeap.above(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const h = this.items;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && MaxHeap.above(h[l], h[m])) m = l;
        if (r < h.length && MaxHeap.above(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
