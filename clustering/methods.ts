import type { ClusterParams } from './params.ts';
import { qualityOf } from './params.ts';
import type { ClusterFace, Clustering } from './types.ts';
import type { Matrix } from './npy.ts';
import { clusterBatchParallel } from './batch.ts';
import { graphFromTable, parallelNeighbours } from './parallelKnn.ts';
import { buildKnnGraph, type KnnGraph } from './knnGraph.ts';
import { averageLinkageClustering, chineseWhispers, corePoint, singleLinkage } from './baselines.ts';

export const METHODS = ['quality', 'single', 'core', 'cw', 'hac'] as const;
export type Method = (typeof METHODS)[number];

/** Faces from a raw [N, D] embedding matrix: unit direction, magnitude, calibrated quality. */
export function facesFromMatrix(
  m: Matrix,
  ids: readonly string[],
  qualityRange: readonly [number, number],
): ClusterFace[] {
  if (ids.length !== m.rows) throw new Error(`${ids.length} ids for ${m.rows} embeddings`);
  const faces: ClusterFace[] = new Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    const unit = m.data.slice(r * m.cols, (r + 1) * m.cols);
    let s = 0;
    for (let i = 0; i < unit.length; i++) s += unit[i] * unit[i];
    const magnitude = Math.sqrt(s);
    if (magnitude > 0) for (let i = 0; i < unit.length; i++) unit[i] /= magnitude;
    faces[r] = { id: ids[r], unit, magnitude, quality: qualityOf(magnitude, qualityRange) };
  }
  return faces;
}

export interface BaselineSetting {
  /** cosine threshold (core: neighbours within cosine distance 1 − threshold) */
  threshold: number;
  /** core method: neighbours needed to be a core */
  minFaces: number;
  seed: number;
}

/** kNN graph over the faces that pass the magnitude gate (baselines never see dropped faces either). */
export function keptGraph(
  faces: readonly ClusterFace[],
  params: ClusterParams,
  onProgress?: (d: number, t: number) => void,
): KnnGraph {
  const kept = Int32Array.from(faces.keys()).filter((i) => faces[i].magnitude >= params.dropBelowMagnitude);
  return buildKnnGraph(faces, params.k, params, kept, onProgress).graph;
}

export function runBaselineOnGraph(
  method: Exclude<Method, 'quality'>,
  faces: readonly ClusterFace[],
  graph: KnnGraph,
  s: BaselineSetting,
): Clustering {
  const n = faces.length;
  if (method === 'single') return singleLinkage(n, graph, s.threshold);
  if (method === 'hac') return averageLinkageClustering(faces, graph, s.threshold);
  if (method === 'core') return corePoint(n, graph, 1 - s.threshold, s.minFaces);
  return chineseWhispers(n, graph, s.threshold, s.seed);
}

/**
 * One clustering run by method name; baselines use `setting` (defaults: τ of params, minFaces 3).
 * The kNN search runs on `threads` worker threads (default: one per core; clustering/parallelKnn.ts).
 */
export async function runMethod(
  method: Method,
  faces: readonly ClusterFace[],
  params: ClusterParams,
  setting: Partial<BaselineSetting> = {},
  onProgress?: (done: number, total: number) => void,
  threads?: number,
): Promise<Clustering> {
  if (method === 'quality') return clusterBatchParallel(faces, params, { onProgress, threads });
  const kept = Int32Array.from(faces.keys()).filter((i) => faces[i].magnitude >= params.dropBelowMagnitude);
  const table = await parallelNeighbours(
    faces,
    kept,
    kept,
    params.k + 1,
    { ...params, ef: Math.max(params.ef, 2 * params.k) },
    threads,
  );
  const graph = graphFromTable(table, kept, params.k);
  const s: BaselineSetting = { threshold: params.linkThreshold, minFaces: 3, seed: params.seed, ...setting };
  return runBaselineOnGraph(method, faces, graph, s);
}
