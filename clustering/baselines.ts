import type { ClusterFace, Clustering } from './types.ts';
import type { KnnGraph } from './knnGraph.ts';
import { UnionFind, denseLabels } from './unionFind.ts';
import { rng } from '../core/random.ts';
import { averageLinkage } from './hac.ts';

/**
 * Baselines for the evaluation harness. All work on the same kNN graph over ALL faces (built by
 * `buildKnnGraph`), ignore magnitudes, and return labels with −1 for faces left alone
 * (singletons are reported as unassigned, which changes no metric but the cluster count).
 */

/** 'single': threshold + connected components (single linkage) on edges with cos ≥ threshold. */
export function singleLinkage(n: number, graph: KnnGraph, threshold: number): Clustering {
  const uf = new UnionFind(n);
  forEachEdge(graph, (i, j, c) => {
    if (c >= threshold) uf.union(i, j);
  });
  return labelsFromUnionFind(uf, graph);
}

/**
 * 'core': the core-point method of photo managers. A face is a core when at least `minFaces`
 * neighbours lie within cosine distance `maxDistance`; cores within `maxDistance` of each other
 * share an identity (DBSCAN); any other face takes the identity of its nearest core within
 * `maxDistance`, else stays unassigned.
 */
export function corePoint(n: number, graph: KnnGraph, maxDistance: number, minFaces: number): Clustering {
  const minCos = 1 - maxDistance;
  const isCore = new Uint8Array(n);
  for (let r = 0; r < graph.nodes.length; r++) {
    let close = 0;
    for (let t = 0; t < graph.deg[r]; t++) if (graph.sim[r * graph.k + t] >= minCos) close++;
    if (close >= minFaces) isCore[graph.nodes[r]] = 1;
  }
  const uf = new UnionFind(n);
  forEachEdge(graph, (i, j, c) => {
    if (c >= minCos && isCore[i] && isCore[j]) uf.union(i, j);
  });
  const roots = new Int32Array(n).fill(-1);
  for (let r = 0; r < graph.nodes.length; r++) {
    const i = graph.nodes[r];
    if (isCore[i]) {
      roots[i] = uf.find(i);
      continue;
    }
    for (let t = 0; t < graph.deg[r]; t++) {
      const j = graph.nbr[r * graph.k + t];
      if (graph.sim[r * graph.k + t] < minCos) break;
      if (isCore[j]) {
        roots[i] = uf.find(j);
        break;
      }
    }
  }
  return singletonsUnassigned(roots);
}

/**
 * 'cw': Chinese Whispers (Biemann 2006) on kNN edges with cos ≥ threshold, weighted by cosine.
 * Nodes are visited in a seeded random order each round; a node takes the label with the largest
 * summed edge weight among its neighbours (ties: smallest label). Stops when nothing changes.
 */
export function chineseWhispers(
  n: number,
  graph: KnnGraph,
  threshold: number,
  seed = 1,
  maxRounds = 30,
): Clustering {
  const adj = symmetricAdjacency(n, graph, threshold);
  const labels = Int32Array.from({ length: n }, (_, i) => i);
  const rand = rng(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  const weight = new Map<number, number>();
  for (let round = 0; round < maxRounds; round++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let changed = 0;
    for (const v of order) {
      const nb = adj[v];
      if (nb.length === 0) continue;
      weight.clear();
      for (let t = 0; t < nb.length; t += 2) {
        const l = labels[nb[t]];
        weight.set(l, (weight.get(l) ?? 0) + nb[t + 1]);
      }
      let best = labels[v];
      let bestW = -Infinity;
      for (const [l, w] of weight) if (w > bestW || (w === bestW && l < best)) [best, bestW] = [l, w];
      if (best !== labels[v]) {
        labels[v] = best;
        changed++;
      }
    }
    if (changed === 0) break;
  }
  return singletonsUnassigned(labels);
}

/**
 * 'hac': average-linkage agglomerative clustering (UPGMA) on the kNN graph's connections: the most
 * similar pair of groups by mean pairwise cosine merges first, while that mean is ≥ threshold.
 */
export function averageLinkageClustering(
  faces: readonly ClusterFace[],
  graph: KnnGraph,
  threshold: number,
): Clustering {
  const { uf } = averageLinkage(
    faces.map((f) => f.unit),
    graph,
    { threshold },
  );
  return labelsFromUnionFind(uf, graph);
}

function forEachEdge(graph: KnnGraph, fn: (i: number, j: number, cos: number) => void): void {
  for (let r = 0; r < graph.nodes.length; r++) {
    const i = graph.nodes[r];
    for (let t = 0; t < graph.deg[r]; t++) fn(i, graph.nbr[r * graph.k + t], graph.sim[r * graph.k + t]);
  }
}

/** per node a flat [neighbour, weight, neighbour, weight, ...] list, symmetric, deduplicated */
function symmetricAdjacency(n: number, graph: KnnGraph, threshold: number): number[][] {
  const seen = new Set<number>();
  const adj: number[][] = Array.from({ length: n }, () => []);
  forEachEdge(graph, (i, j, c) => {
    if (c < threshold || i === j) return;
    const a = Math.min(i, j);
    const b = Math.max(i, j);
    const key = a * n + b;
    if (seen.has(key)) return;
    seen.add(key);
    adj[a].push(b, c);
    adj[b].push(a, c);
  });
  return adj;
}

function labelsFromUnionFind(uf: UnionFind, graph: KnnGraph): Clustering {
  const roots = new Int32Array(uf.parent.length).fill(-1);
  for (const i of graph.nodes) roots[i] = uf.find(i);
  return singletonsUnassigned(roots);
}

function singletonsUnassigned(roots: Int32Array): Clustering {
  const count = new Map<number, number>();
  for (const r of roots) if (r >= 0) count.set(r, (count.get(r) ?? 0) + 1);
  const out = Int32Array.from(roots, (r) => (r >= 0 && (count.get(r) ?? 0) >= 2 ? r : -1));
  return denseLabels(out);
}

export type BaselineMethod = 'single' | 'core' | 'cw' | 'hac';

/** convenience for the CLI/bench: a baseline by name at one setting */
export function runBaseline(
  method: BaselineMethod,
  faces: readonly ClusterFace[],
  graph: KnnGraph,
  setting: { threshold: number; minFaces?: number; seed?: number },
): Clustering {
  const n = faces.length;
  if (method === 'single') return singleLinkage(n, graph, setting.threshold);
  if (method === 'core') return corePoint(n, graph, 1 - setting.threshold, setting.minFaces ?? 3);
  if (method === 'hac') return averageLinkageClustering(faces, graph, setting.threshold);
  return chineseWhispers(n, graph, setting.threshold, setting.seed ?? 1);
}
