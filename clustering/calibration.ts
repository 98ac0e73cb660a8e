import { buildCoreGraph, clusterBatch } from './batch.ts';
import { buildKnnGraph } from './knnGraph.ts';
import { evaluate, type Evaluation } from './metrics.ts';
import type { ClusterParams } from './params.ts';
import type { ClusterFace } from './types.ts';
import { addScaled, dot, norm } from './vec.ts';
import { quantile, upperTailNormal } from '../core/stats.ts';

/**
 * Fitting a model's clustering operating point and quality mapping on labelled photos (one folder
 * per person), for `facepipe models calibrate`:
 * - the quality mapping: a logistic regression of "this face's nearest face is someone else"
 *   (a rank-1 error, the event that makes a face link wrongly) on the per-face cues, turned into a
 *   reliability score Σ w·cue whose 5th..95th percentile range maps to quality 0..1;
 * - the clustering parameters: a grid search of the batch method, scored by BCubed F_β on the
 *   largest face of each photo (β < 1 weighs precision above recall: a false merge costs a user more
 *   than a split), averaged over the folders given, under a precision floor on each.
 * Pure computations over analysed faces; the CLI (cli/models.ts) analyses the photos.
 */

/** cue name → value, as pipeline/qualityGate.ts `cueValues` makes them */
export type CueValues = Record<string, number>;

export interface LabelledCollection {
  name: string;
  /** every kept face of every photo (others in the photos included: they are clustered too) */
  faces: ClusterFace[];
  cues: CueValues[];
  /** per photo: index into `faces` of its largest face, or −1 when none was found */
  largest: Int32Array;
  /** per photo: its person */
  truth: string[];
}

export interface QualityMapping {
  weights: Record<string, number>;
  range: [number, number];
}

export interface CueReport {
  /** AUC of the cue alone for telling rank-1 errors from correct faces (0.5 = no signal) */
  auc: Record<string, number>;
  /** AUC of the fitted combination */
  combinedAuc: number;
  faces: number;
  errors: number;
}

/** fewer rank-1 errors than this on the calibration photos: no cue mapping is fitted */
export const MIN_ERRORS_TO_FIT = 10;

/** per labelled face with a same-person mate: was its nearest labelled face someone else? */
export function rankOneErrors(c: LabelledCollection, k = 32): { face: number; error: boolean }[] {
  const labelled = Int32Array.from(c.largest).filter((i) => i >= 0);
  if (labelled.length < 2) return [];
  const person = new Map<number, string>();
  c.largest.forEach((i, p) => {
    if (i >= 0) person.set(i, c.truth[p]!);
  });
  const count = new Map<string, number>();
  for (const i of labelled) count.set(person.get(i)!, (count.get(person.get(i)!) ?? 0) + 1);
  const { graph } = buildKnnGraph(
    c.faces,
    Math.min(k, labelled.length - 1),
    {
      M: 16,
      efConstruction: 100,
      ef: 2 * k,
      seed: 1,
    },
    labelled,
  );
  const out: { face: number; error: boolean }[] = [];
  for (let r = 0; r < graph.nodes.length; r++) {
    const i = graph.nodes[r];
    if (count.get(person.get(i)!)! < 2 || graph.deg[r] === 0) continue;
    out.push({ face: i, error: person.get(graph.nbr[r * graph.k]) !== person.get(i) });
  }
  return out;
}

/** AUC of `score` (higher = more reliable) for separating correct (positive) from error faces */
export function reliabilityAuc(score: readonly number[], error: readonly boolean[]): number {
  const idx = Array.from(score.keys()).sort((a, b) => score[a]! - score[b]!);
  let okRankSum = 0;
  let ok = 0;
  idx.forEach((i, rank) => {
    if (!error[i]) {
      okRankSum += rank + 1;
      ok++;
    }
  });
  const bad = score.length - ok;
  if (ok === 0 || bad === 0) return 0.5;
  return (okRankSum - (ok * (ok + 1)) / 2) / (ok * bad);
}

/**
 * Logistic regression of rank-1 errors on the standardised cues (gradient descent, L2), pooled over
 * the collections; the weights are returned in the cues' own units with the sign of reliability.
 */
export function fitQualityMapping(
  collections: readonly LabelledCollection[],
  cueNames: readonly string[],
  minErrors = MIN_ERRORS_TO_FIT,
): { mapping: QualityMapping | null; report: CueReport } {
  const rows: number[][] = [];
  const errors: boolean[] = [];
  for (const c of collections) {
    for (const { face, error } of rankOneErrors(c)) {
      rows.push(cueNames.map((n) => c.cues[face]![n]!));
      errors.push(error);
    }
  }
  const d = cueNames.length;
  const errorCount = errors.filter(Boolean).length;
  if (errorCount < minErrors) {
    // nothing to learn from: the photos are too easy for any cue to predict a wrong link
    return {
      mapping: null,
      report: { auc: {}, combinedAuc: 0.5, faces: rows.length, errors: errorCount },
    };
  }
  const mean = cueNames.map((_, k) => rows.reduce((s, r) => s + r[k]!, 0) / Math.max(1, rows.length));
  const sd = cueNames.map(
    (_, k) =>
      Math.sqrt(rows.reduce((s, r) => s + (r[k]! - mean[k]!) ** 2, 0) / Math.max(1, rows.length)) || 1,
  );
  const z = rows.map((r) => r.map((v, k) => (v - mean[k]!) / sd[k]!));
  const w = new Float64Array(d + 1);
  const lambda = 1e-3;
  for (let iter = 0; iter < 500; iter++) {
    const g = new Float64Array(d + 1);
    for (let i = 0; i < z.length; i++) {
      let t = w[0]!;
      for (let k = 0; k < d; k++) t += w[k + 1]! * z[i]![k]!;
      const e = 1 / (1 + Math.exp(-t)) - (errors[i] ? 1 : 0);
      g[0] += e;
      for (let k = 0; k < d; k++) g[k + 1] += e * z[i]![k]!;
    }
    for (let k = 0; k <= d; k++) w[k] -= (1.0 * g[k]!) / Math.max(1, z.length) + (k > 0 ? lambda * w[k]! : 0);
  }
  // reliability = −(log-odds of an error), in raw cue units (the intercept moves into the range)
  const weights: Record<string, number> = {};
  cueNames.forEach((n, k) => (weights[n] = round6(-w[k + 1]! / sd[k]!)));
  const scores = rows.map((r) => cueNames.reduce((s, n, k) => s + weights[n]! * r[k]!, 0));
  const all: number[] = [];
  for (const c of collections)
    for (const v of c.cues) all.push(cueNames.reduce((s, n) => s + weights[n]! * v[n]!, 0));
  all.sort((a, b) => a - b);
  const range: [number, number] = [round6(quantile(all, 0.05)), round6(quantile(all, 0.95))];
  if (!(range[1] > range[0]))
    return { mapping: null, report: { auc: {}, combinedAuc: 0.5, faces: rows.length, errors: errorCount } };
  const auc: Record<string, number> = {};
  cueNames.forEach((n, k) => {
    const a = reliabilityAuc(
      rows.map((r) => r[k]!),
      errors,
    );
    auc[n] = round3(Math.max(a, 1 - a));
  });
  return {
    mapping: { weights, range },
    report: {
      auc,
      combinedAuc: round3(reliabilityAuc(scores, errors)),
      faces: rows.length,
      errors: errors.filter(Boolean).length,
    },
  };
}

export interface RejectPoint {
  rejectPercent: number;
  faces: number;
  /** share of the remaining labelled faces whose nearest remaining labelled face is someone else */
  rankOneError: number;
}

/** Error versus reject: drop the lowest-quality share of faces, measure rank-1 errors on the rest. */
export function qualityRejectCurve(
  collections: readonly LabelledCollection[],
  quality: (c: LabelledCollection, face: number) => number,
  steps: readonly number[] = [0, 5, 10, 20, 30, 40],
): RejectPoint[] {
  return steps.map((percent) => {
    let faces = 0;
    let errors = 0;
    for (const c of collections) {
      const labelled = Int32Array.from(c.largest).filter((i) => i >= 0);
      const q = Array.from(labelled, (i) => quality(c, i)).sort((a, b) => a - b);
      const cut = q[Math.min(q.length - 1, Math.floor((q.length * percent) / 100))] ?? -Infinity;
      const keep = new Set(Array.from(labelled).filter((i) => percent === 0 || quality(c, i) >= cut));
      const sub: LabelledCollection = {
        ...c,
        largest: Int32Array.from(c.largest, (i) => (i >= 0 && keep.has(i) ? i : -1)),
      };
      const r = rankOneErrors(sub);
      faces += r.length;
      errors += r.filter((x) => x.error).length;
    }
    return { rejectPercent: percent, faces, rankOneError: round4(errors / Math.max(1, faces)) };
  });
}

/** BCubed and pairwise figures of a clustering, on the largest face of each photo. */
export function scoreCollection(c: LabelledCollection, labels: ArrayLike<number>): Evaluation {
  const pred = Array.from(c.largest, (i) => (i >= 0 ? labels[i]! : -1));
  return evaluate(c.truth, pred);
}

export interface ImpostorCosine {
  /** the normal fitted to the distribution's upper tail, where the attach bar reads it (`upperTailNormal`) */
  mean: number;
  sd: number;
  /** the whole distribution's mean and standard deviation, for the report */
  overallMean: number;
  overallSd: number;
  /** face–template pairs measured, over all collections */
  pairs: number;
}

/**
 * The model's impostor distribution for the attach step: the cosine between a labelled face and
 * the template (Σ a·u of their labelled faces, as an identity's) of each other person with at
 * least `minFaces` kept faces, over every collection, as the normal that matches its UPPER TAIL.
 * The attach bar is the best of N impostor cosines' quantile, which for N identities reads the
 * distribution at a tail probability of about α/N; measured on both development sets the tail is
 * lighter than a normal with the whole distribution's mean and sd (lfw-dev, 8.9 M pairs: the
 * 10⁻⁴ quantile is 0.541, that normal says 0.557), so such a normal puts the bar too high, the
 * more so the more identities a collection holds. Each collection's fit counts equally, so a
 * collection of thousands of people does not speak for the model alone; a collection too small
 * to measure a tail (under about 950 pairs) gives its whole distribution's mean and sd. Faces
 * below `dropBelowMagnitude` are left out, as clustering leaves them. Null when no collection has
 * two such people.
 */
export function fitImpostorCosine(
  collections: readonly LabelledCollection[],
  opts: { dropBelowMagnitude: number; minFaces?: number },
): ImpostorCosine | null {
  const per = collections.flatMap((c) => {
    const cosines = impostorCosines(c, opts.dropBelowMagnitude, opts.minFaces ?? 2);
    if (cosines.length < 2) return [];
    let sum = 0;
    let sumSq = 0;
    for (const x of cosines) {
      sum += x;
      sumSq += x * x;
    }
    const mean = sum / cosines.length;
    const sd = Math.sqrt(Math.max(0, sumSq / cosines.length - mean * mean));
    const tail = upperTailNormal(cosines.sort());
    return [{ mean, sd, tail: tail ?? { mean, sd }, count: cosines.length }];
  });
  if (per.length === 0) return null;
  const meanOf = (f: (x: (typeof per)[number]) => number) =>
    round4(per.reduce((s, x) => s + f(x), 0) / per.length);
  return {
    mean: meanOf((x) => x.tail.mean),
    sd: meanOf((x) => x.tail.sd),
    overallMean: meanOf((x) => x.mean),
    overallSd: meanOf((x) => x.sd),
    pairs: per.reduce((s, x) => s + x.count, 0),
  };
}

/** the cosine of every labelled face to the template of every other person with ≥ minFaces faces */
function impostorCosines(c: LabelledCollection, dropBelowMagnitude: number, minFaces: number): Float64Array {
  const byPerson = new Map<string, number[]>();
  c.largest.forEach((i, photo) => {
    if (i < 0 || c.faces[i]!.magnitude < dropBelowMagnitude) return;
    const list = byPerson.get(c.truth[photo]!) ?? [];
    list.push(i);
    byPerson.set(c.truth[photo]!, list);
  });
  const templates: { person: string; direction: Float32Array }[] = [];
  for (const [person, members] of byPerson) {
    if (members.length < minFaces) continue;
    const t = new Float32Array(c.faces[members[0]!]!.unit.length);
    for (const i of members) addScaled(t, c.faces[i]!.unit, c.faces[i]!.magnitude);
    const n = norm(t);
    if (n > 0) templates.push({ person, direction: t.map((x) => x / n) });
  }
  let count = 0;
  for (const [person, members] of byPerson)
    count += members.length * templates.filter((t) => t.person !== person).length;
  const out = new Float64Array(count);
  let k = 0;
  for (const [person, members] of byPerson)
    for (const i of members)
      for (const t of templates) if (t.person !== person) out[k++] = dot(c.faces[i]!.unit, t.direction);
  return out;
}

export function fBeta(p: number, r: number, beta: number): number {
  const b2 = beta * beta;
  return p + r > 0 ? ((1 + b2) * p * r) / (b2 * p + r) : 0;
}

/** One way of deciding the attach step: a fixed bar, or one that follows the number of identities. */
export interface AttachSetting {
  /** attachThreshold as a ratio of linkThreshold (used when falseRate is 0) */
  ratio?: number;
  /** attachFalseRate α (needs the impostor distribution, measured on the same collections) */
  falseRate?: number;
  /** attachMargin over the runner-up identity */
  margin: number;
  /** the attach step's own ω (attachSmallGroupPenalty); unset: the setting's merge ω */
  smallGroupPenalty?: number;
}

/** whether the setting's bar follows the number of identities (it needs the impostor cosines) */
export const followsIdentities = (a: AttachSetting): boolean => (a.falseRate ?? 0) > 0;

export interface ParamGrid {
  linkThreshold: number[];
  /** mergeThreshold as a ratio of linkThreshold */
  mergeRatio: number[];
  smallGroupPenalty: number[];
  attach: AttachSetting[];
  /** lowQualityMargin μ as a ratio of linkThreshold */
  lowQualityRatio: number[];
  coreQuality: number[];
}

/**
 * The settings `models calibrate` tries (kept small: each is a full clustering of every folder).
 * τ itself is not searched: with the size-aware merge bar above it, two faces only ever link through
 * a merge that clears mergeThreshold + ω·√((1/a + 1/b)/2), so τ only orders the edges (measured on
 * both development sets: τ 0.40 and 0.46 give the same clustering). What is searched is the bar a
 * pair of well-estimated templates must clear (mergeThreshold), how much more a small group must
 * show (ω), the attach step — a fixed bar with a runner-up margin, or the bar that follows the
 * number of identities at a few false-attach rates α with a small runner-up margin (0.02 or 0.04:
 * a margin is kept so that a face two identities want about equally goes to the user as
 * `ambiguous`; BCubed alone cannot value that, and 0.08 cost celeba-dev 0.7 points of F), each with
 * the merge's ω for small identities or (margin 0.02) a smaller one of its own, ω_a 0.1 — and how
 * much a missing unit of quality costs (μ). With the default β 0.5 the smaller ω_a loses (it buys
 * recall with precision); with `--beta 1` it is what the fit takes.
 */
export const DEFAULT_GRID: ParamGrid = {
  linkThreshold: [0.46],
  mergeRatio: [0.74, 0.78, 0.82],
  smallGroupPenalty: [0.25, 0.3, 0.35],
  attach: [
    { ratio: 0.91, margin: 0.08 },
    { ratio: 0.96, margin: 0.08 },
    ...[0.15, 0.25, 0.4].flatMap((falseRate) => [0.02, 0.04].map((margin) => ({ falseRate, margin }))),
    ...[0.15, 0.25, 0.4].map((falseRate) => ({ falseRate, margin: 0.02, smallGroupPenalty: 0.1 })),
  ],
  lowQualityRatio: [0.1, 0.25],
  coreQuality: [0.2],
};

/** The parameters `models calibrate` fits and writes into the manifest's `clustering` block. */
export const FITTED_PARAMS = [
  'linkThreshold',
  'mergeThreshold',
  'smallGroupPenalty',
  'attachSmallGroupPenalty',
  'attachMargin',
  'attachThreshold',
  'attachFalseRate',
  'impostorCosineMean',
  'impostorCosineSd',
  'coreQuality',
  'lowQualityMargin',
] as const satisfies readonly (keyof ClusterParams)[];

export type FittedParams = Pick<ClusterParams, (typeof FITTED_PARAMS)[number]>;

/** The fitted parameters of a setting, in `FITTED_PARAMS` order. */
export function fittedParams(p: ClusterParams): FittedParams {
  return Object.fromEntries(FITTED_PARAMS.map((k) => [k, p[k]])) as FittedParams;
}

export interface FitResult {
  params: FittedParams;
  objective: number;
  perCollection: { name: string; p: number; r: number; f: number; fBeta: number }[];
  /** whether every collection reached the precision floor */
  meetsPrecisionFloor: boolean;
  settingsTried: number;
  /** the impostor distribution measured on the collections (null: too few people to measure) */
  impostor: ImpostorCosine | null;
}

/**
 * The BCubed precision a fitted setting must reach on every labelled collection: a false merge
 * costs a user more than a split, so the fit buys recall only above this floor.
 */
export const DEFAULT_MIN_PRECISION = 0.985;

/**
 * Grid search: the setting with the highest mean F_β over the collections among those whose BCubed
 * precision reaches `minPrecision` on each (if none does, the highest mean F_β overall).
 */
export function fitClusterParams(
  collections: readonly LabelledCollection[],
  base: ClusterParams,
  opts: {
    grid?: ParamGrid;
    beta?: number;
    minPrecision?: number;
    /** every setting tried, with its figures */
    onSetting?: (params: ClusterParams, per: FitResult['perCollection']) => void;
    /** the impostor distribution of these same collections, where the caller has measured it */
    impostor?: ImpostorCosine | null;
  } = {},
): FitResult {
  const grid = opts.grid ?? DEFAULT_GRID;
  const beta = opts.beta ?? 0.5;
  const minPrecision = opts.minPrecision ?? DEFAULT_MIN_PRECISION;
  // the bar that follows the number of identities needs the model's impostor cosines, measured here
  const impostor =
    opts.impostor !== undefined
      ? opts.impostor
      : fitImpostorCosine(collections, { dropBelowMagnitude: base.dropBelowMagnitude });
  const attachSettings = grid.attach.filter((a) => !followsIdentities(a) || impostor);
  let best: Omit<FitResult, 'settingsTried' | 'impostor'> | null = null;
  let tried = 0;
  for (const coreQuality of grid.coreQuality) {
    const graphs = collections.map((c) => buildCoreGraph(c.faces, { ...base, coreQuality }));
    for (const tau of grid.linkThreshold)
      for (const ratio of grid.mergeRatio)
        for (const penalty of grid.smallGroupPenalty)
          for (const attach of attachSettings)
            for (const lowQualityRatio of grid.lowQualityRatio) {
              const params: ClusterParams = {
                ...base,
                coreQuality,
                linkThreshold: tau,
                mergeThreshold: round6(tau * ratio),
                lowQualityMargin: round6(lowQualityRatio * tau),
                smallGroupPenalty: penalty,
                attachSmallGroupPenalty: attach.smallGroupPenalty ?? penalty,
                attachMargin: attach.margin,
                attachThreshold: round6(tau * (attach.ratio ?? 1)),
                attachFalseRate: attach.falseRate ?? 0,
                impostorCosineMean: impostor?.mean ?? base.impostorCosineMean,
                impostorCosineSd: impostor?.sd ?? base.impostorCosineSd,
              };
              const per = collections.map((c, k) => {
                const e = scoreCollection(
                  c,
                  clusterBatch(c.faces, params, { coreGraph: graphs[k] }).labels,
                ).bcubed;
                return {
                  name: c.name,
                  p: round4(e.p),
                  r: round4(e.r),
                  f: round4(e.f),
                  fBeta: round4(fBeta(e.p, e.r, beta)),
                };
              });
              tried++;
              opts.onSetting?.(params, per);
              const objective = per.reduce((s, x) => s + x.fBeta, 0) / per.length;
              const meets = per.every((x) => x.p >= minPrecision);
              const better =
                !best ||
                (meets && !best.meetsPrecisionFloor) ||
                (meets === best.meetsPrecisionFloor && objective > best.objective);
              if (better)
                best = {
                  params: fittedParams(params),
                  objective: round4(objective),
                  perCollection: per,
                  meetsPrecisionFloor: meets,
                };
            }
  }
  if (!best) throw new Error('no labelled collection to calibrate on');
  return { ...best, settingsTried: tried, impostor };
}

const round3 = (x: number) => Math.round(x * 1e3) / 1e3;
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
