/**
 * Clustering evaluation against ground truth. A label is a string or number; null, undefined, ''
 * and −1 mean "unassigned", and an unassigned face counts as a cluster of its own (a singleton) in
 * every metric, which is the usual convention: leaving a face out costs recall, never precision.
 */
export type Label = string | number | null | undefined;

export interface PRF {
  p: number;
  r: number;
  f: number;
}

export interface Evaluation {
  pairwise: PRF;
  bcubed: PRF;
  /** normalised mutual information, arithmetic-mean normalisation: 2·I(T;P) / (H(T) + H(P)) */
  nmi: number;
  /** predicted clusters, not counting unassigned faces */
  clusters: number;
  /** share of faces left unassigned (0..1) */
  unassigned: number;
}

export function isUnassigned(l: Label): boolean {
  return l === null || l === undefined || l === '' || l === -1;
}

/** dense integer ids; each unassigned item gets its own fresh id */
function densify(labels: ArrayLike<Label>): { ids: Int32Array; count: number } {
  const map = new Map<string | number, number>();
  const ids = new Int32Array(labels.length);
  let next = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (isUnassigned(l)) {
      ids[i] = next++;
      continue;
    }
    let id = map.get(l as string | number);
    if (id === undefined) {
      id = next++;
      map.set(l as string | number, id);
    }
    ids[i] = id;
  }
  return { ids, count: next };
}

function prf(p: number, r: number): PRF {
  return { p, r, f: p + r > 0 ? (2 * p * r) / (p + r) : 0 };
}

const pairs = (n: number) => (n * (n - 1)) / 2;

export function evaluate(truth: ArrayLike<Label>, pred: ArrayLike<Label>): Evaluation {
  if (truth.length !== pred.length)
    throw new Error(`truth has ${truth.length} items, prediction ${pred.length}`);
  const n = truth.length;
  const T = densify(truth);
  const P = densify(pred);
  const truthSize = new Float64Array(T.count);
  const predSize = new Float64Array(P.count);
  const cells = new Map<number, number>(); // key: p * T.count + t
  for (let i = 0; i < n; i++) {
    truthSize[T.ids[i]]++;
    predSize[P.ids[i]]++;
    const key = P.ids[i] * T.count + T.ids[i];
    cells.set(key, (cells.get(key) ?? 0) + 1);
  }
  let tp = 0;
  let bP = 0;
  let bR = 0;
  let mi = 0;
  for (const [key, c] of cells) {
    const p = Math.floor(key / T.count);
    const t = key - p * T.count;
    tp += pairs(c);
    bP += (c * c) / predSize[p];
    bR += (c * c) / truthSize[t];
    mi += (c / n) * Math.log((c * n) / (predSize[p] * truthSize[t]));
  }
  const predPairs = predSize.reduce((s, a) => s + pairs(a), 0);
  const truthPairs = truthSize.reduce((s, b) => s + pairs(b), 0);
  const entropy = (sizes: Float64Array) =>
    sizes.reduce((h, a) => (a > 0 ? h - (a / n) * Math.log(a / n) : h), 0);
  const hT = entropy(truthSize);
  const hP = entropy(predSize);
  let unassigned = 0;
  const predClusters = new Set<string | number>();
  for (let i = 0; i < n; i++) {
    if (isUnassigned(pred[i])) unassigned++;
    else predClusters.add(pred[i] as string | number);
  }
  return {
    pairwise: prf(predPairs > 0 ? tp / predPairs : 1, truthPairs > 0 ? tp / truthPairs : 1),
    bcubed: n > 0 ? prf(bP / n, bR / n) : prf(1, 1),
    nmi: hT + hP > 0 ? (2 * mi) / (hT + hP) : 1,
    clusters: predClusters.size,
    unassigned: n > 0 ? unassigned / n : 0,
  };
}

/** BCubed F of `pred` measured against `reference` (e.g. online against batch). */
export function bcubedF(reference: ArrayLike<Label>, pred: ArrayLike<Label>): number {
  return evaluate(reference, pred).bcubed.f;
}
