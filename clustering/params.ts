import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
/**
 * Clustering parameters. Every cosine threshold here is model-dependent, so defaults are derived
 * from the embedder's manifest (`clusterParamsFromManifest`): the manifest's verification
 * threshold and magnitude calibration. The only constants in code are ratios/quality levels, which
 * are model-independent because quality is already calibrated to 0..1 by the manifest.
 */
export interface ClusterParams {
  /** τ: cosine at which two good faces are the same person (manifest `thresholds.sameIdentityCosine`). */
  linkThreshold: number;
  /** μ: extra cosine a link must show per unit of missing quality at its weaker end. */
  lowQualityMargin: number;
  /** Faces with quality ≥ this are "core": only they may create identities and merge clusters. */
  coreQuality: number;
  /** Template agreement (magnitude-weighted mean pairwise cosine) needed to merge two clusters. */
  mergeThreshold: number;
  /**
   * Cosine to an identity's template a face needs to join it, for a large identity whose template is
   * well estimated (plus μ·(1 − q) for the face's missing quality and ω_a/√n for an identity of n
   * faces). Default τ. The bar while `attachFalseRate` is 0; with it set, `attachBar` replaces it.
   */
  attachThreshold: number;
  /** A non-core face attaches only if its best identity beats the runner-up by this cosine margin. */
  attachMargin: number;
  /**
   * α: the chance a face of someone the collection holds no identity for may join one by luck
   * (0: off, the fixed `attachThreshold`). Such a face is compared with every identity, and the best
   * of N impostor cosines grows with N, so a fixed bar lets strangers in more often the more people a
   * collection holds. With α set, the attach bar is the cosine the best of N impostors stays under
   * with probability 1 − α (`attachBar`), from the model's impostor distribution below: a library of
   * 50 people takes a hard face of one of them that a bar fitted on thousands would refuse.
   */
  attachFalseRate: number;
  /**
   * The model's cosine between a face and the template of an identity of someone else, as the
   * normal that matches its upper tail (mean and sd; the attach bar reads the distribution far out
   * in the tail, which is lighter than a normal with the whole distribution's moments), fitted by
   * `models calibrate` on labelled folders (calibration.ts `fitImpostorCosine`).
   */
  impostorCosineMean: number;
  impostorCosineSd: number;
  /**
   * ω: extra agreement a merge of small groups needs, mergeThreshold + ω·√((1/a + 1/b)/2) for groups
   * of a and b faces (see `mergeBar`), and, unless `attachSmallGroupPenalty` is set, extra link a
   * face needs to join an identity of n faces, ω/√n. A template of one or two faces is a noisy
   * estimate of a person; in a collection where most people appear once, the impostor tail is what
   * joins them (default 0: off).
   */
  smallGroupPenalty: number;
  /**
   * ω_a: the attach step's own ω, the extra link a face needs to join an identity of n faces being
   * ω_a/√n (unset: the merge's `smallGroupPenalty`). Its own number because the two do different
   * work: measured on both development sets, the cosine of a stranger's face to a person's template
   * spreads the same (sd 0.144–0.154) whether the template holds 1 face or 20, so the attach step's
   * size penalty is not the template noise the merge bar pays for; what it buys is precision (a
   * small identity is most often a whole person seen twice, with no face left to take).
   */
  attachSmallGroupPenalty?: number;
  /**
   * A face still on its own merges into a group only this far (agreement) ahead of any rival group
   * among its neighbours that the target would not merge with (0: off; the attach step always
   * applies `attachMargin`).
   */
  singletonMargin: number;
  /** Clusters smaller than this are not identities: their faces stay unassigned (pending online). */
  minClusterSize: number;
  /** Magnitude below which a face is dropped (manifest `quality.dropBelowMagnitude`). */
  dropBelowMagnitude: number;
  /** Magnitude range mapped to quality 0..1 (manifest `quality.magnitudeRange`). */
  qualityRange: [number, number];
  /** Neighbours per face in the kNN graph / online search. */
  k: number;
  /** HNSW search breadth (≥ k). */
  ef: number;
  /** HNSW graph degree and build breadth for in-memory graphs. */
  M: number;
  efConstruction: number;
  /** Seed for everything random (HNSW levels, tie-breaking orders). */
  seed: number;
  /**
   * Two faces detected in one photo are two different people (an implicit cannot-link): no
   * clustering step puts them into one identity; only a user's explicit pin can (default true).
   */
  samePhotoCannotLink: boolean;
}

/** The parts of an embedder manifest clustering needs (structurally compatible with pipeline/models.ts). */
export interface EmbedderCalibration {
  quality: { dropBelowMagnitude: number; magnitudeRange: [number, number] | number[] };
  thresholds?: { sameIdentityCosine?: number };
  /** optional per-model overrides of any clustering parameter */
  clustering?: Partial<ClusterParams>;
}

/** Ratios used to derive defaults from τ; documented in clustering/README-level docs (linkScore.ts). */
const LOW_QUALITY_MARGIN_PER_TAU = 0.25;
const MERGE_THRESHOLD_PER_TAU = 1.0;
const ATTACH_MARGIN_PER_TAU = 0.1;

export function clusterParamsFromManifest(
  manifest: EmbedderCalibration,
  overrides: Partial<ClusterParams> = {},
): ClusterParams {
  const tau = manifest.thresholds?.sameIdentityCosine;
  if (tau === undefined)
    throw new Error(
      'embedder manifest has no thresholds.sameIdentityCosine: clustering needs a link threshold',
    );
  const [lo, hi] = manifest.quality.magnitudeRange;
  const params: ClusterParams = {
    linkThreshold: tau,
    lowQualityMargin: LOW_QUALITY_MARGIN_PER_TAU * tau,
    coreQuality: 0.2,
    mergeThreshold: MERGE_THRESHOLD_PER_TAU * tau,
    attachMargin: ATTACH_MARGIN_PER_TAU * tau,
    attachThreshold: tau,
    attachFalseRate: 0,
    impostorCosineMean: 0,
    impostorCosineSd: 0,
    minClusterSize: 2,
    smallGroupPenalty: 0,
    singletonMargin: 0,
    dropBelowMagnitude: manifest.quality.dropBelowMagnitude,
    qualityRange: [lo, hi],
    k: 16,
    ef: 64,
    M: 16,
    efConstruction: 64,
    seed: 1,
    samePhotoCannotLink: true,
    ...manifest.clustering,
    ...overrides,
  };
  validateParams(params);
  return params;
}

export function validateParams(p: ClusterParams): void {
  const [lo, hi] = p.qualityRange;
  if (!(hi > lo)) throw new Error(`qualityRange must be [lo, hi] with hi > lo, got [${lo}, ${hi}]`);
  if (!(p.k >= 1)) throw new Error(`k must be ≥ 1, got ${p.k}`);
  if (!(p.coreQuality >= 0 && p.coreQuality <= 1))
    throw new Error(`coreQuality must be in 0..1, got ${p.coreQuality}`);
  if (!(p.minClusterSize >= 1)) throw new Error(`minClusterSize must be ≥ 1, got ${p.minClusterSize}`);
  if (!(p.attachFalseRate >= 0 && p.attachFalseRate < 1))
    throw new Error(`attachFalseRate must be in [0, 1), got ${p.attachFalseRate}`);
  if (p.attachSmallGroupPenalty !== undefined && !(p.attachSmallGroupPenalty >= 0))
    throw new Error(`attachSmallGroupPenalty must be ≥ 0, got ${p.attachSmallGroupPenalty}`);
  if (p.attachFalseRate > 0 && !(p.impostorCosineSd > 0))
    throw new Error(
      'attachFalseRate needs the impostor cosine distribution (impostorCosineSd > 0): run models calibrate',
    );
}

/** quality = clamp((magnitude − lo) / (hi − lo), 0, 1): the manifest's calibration. */
export function qualityOf(magnitude: number, range: readonly [number, number] | readonly number[]): number {
  const [lo, hi] = range;
  const q = (magnitude - lo) / (hi - lo);
  return q < 0 ? 0 : q > 1 ? 1 : q;
}

/** The same parameters at another link threshold τ: the thresholds derived from τ move with it. */
export function withLinkThreshold(p: ClusterParams, tau: number): ClusterParams {
  const scale = tau / p.linkThreshold;
  return {
    ...p,
    linkThreshold: tau,
    mergeThreshold: p.mergeThreshold * scale,
    lowQualityMargin: p.lowQualityMargin * scale,
    attachMargin: p.attachMargin * scale,
    attachThreshold: p.attachThreshold * scale,
  };
}

/**
 * The agreement a merge of groups of `a` and `b` faces needs:
 *
 *     mergeThreshold + ω · √((1/a + 1/b) / 2)
 *
 * The agreement of two groups is the mean pairwise cosine, i.e. the product of their two templates;
 * each template is a mean of its faces and carries their scatter around the person divided by √n.
 * The noise of the product is the sum of both templates' noises, σ·√(1/a + 1/b): it shrinks only
 * when BOTH groups are large. Two large groups of one person therefore merge at close to
 * `mergeThreshold` (the bar a person's template pair must clear), while a face seen once stays
 * about ω/√2 above it however large the group it is compared with: its own scatter does not average
 * away. Normalised so that two single faces need mergeThreshold + ω. (The earlier form ω/√(a·b)
 * let a single face into a large group at the large-group bar: on a collection where most people are
 * seen once that is where the false merges came from, and it kept the bar for large groups high.)
 */
export function mergeBar(
  p: Pick<ClusterParams, 'mergeThreshold' | 'smallGroupPenalty'>,
  a: number,
  b: number,
): number {
  return p.mergeThreshold + p.smallGroupPenalty * Math.sqrt((1 / Math.max(1, a) + 1 / Math.max(1, b)) / 2);
}

/**
 * The extra link score a face needs to join an identity of `n` faces (attach step): ω_a/√n, ω_a being
 * `attachSmallGroupPenalty` or, unset, the merge's ω. Attaching
 * compares the face with the identity's template DIRECTION, whose cosine already grows with how well
 * the template averages its faces, and `attachThreshold` is fitted for single faces: only the
 * template's own estimation noise is left to pay for (measured: the √((1 + 1/n)/2) form here lost
 * recall on both development sets without gaining precision).
 */
export function joinPenalty(
  p: Pick<ClusterParams, 'smallGroupPenalty' | 'attachSmallGroupPenalty'>,
  n: number,
): number {
  return attachPenaltyOf(p) / Math.sqrt(Math.max(1, n));
}

/** ω_a: `attachSmallGroupPenalty`, or the merge's ω where it is unset */
export function attachPenaltyOf(
  p: Pick<ClusterParams, 'smallGroupPenalty' | 'attachSmallGroupPenalty'>,
): number {
  return p.attachSmallGroupPenalty ?? p.smallGroupPenalty;
}

/**
 * The cosine to an identity's template a face of full quality needs to join it (before ω_a/√n and
 * μ·(1 − q)), when it is compared with `identities` identities. Fixed (`attachThreshold`) unless
 * `attachFalseRate` α is set; then the bar the best of N impostor cosines stays under with
 * probability 1 − α:
 *
 *     impostorCosineMean + impostorCosineSd · Φ⁻¹((1 − α)^(1/N))
 *
 * (N independent impostors whose upper tail is the normal's; the upper tail 1 − (1 − α)^(1/N) is
 * computed as −expm1(log1p(−α)/N) so it keeps its digits for a million identities). The draws are
 * close to independent: measured on lfw-dev, the best of n random other people's templates is
 * predicted to 0.004 (median, n = 1,000) by the measured distribution itself; what the model needs
 * right is the tail's shape, hence the normal fitted to the tail (README has the check).
 */
export function attachBar(
  p: Pick<ClusterParams, 'attachThreshold' | 'attachFalseRate' | 'impostorCosineMean' | 'impostorCosineSd'>,
  identities: number,
): number {
  if (!(p.attachFalseRate > 0)) return p.attachThreshold;
  return bestImpostorQuantile(p, p.attachFalseRate, identities);
}

/**
 * The cosine the best of N normal impostor cosines exceeds with probability `exceed`: its
 * (1 − exceed) quantile, mean + sd · Φ⁻¹((1 − exceed)^(1/N)), with the upper tail computed as
 * −expm1(log1p(−exceed)/N).
 */
export function bestImpostorQuantile(
  p: Pick<ClusterParams, 'impostorCosineMean' | 'impostorCosineSd'>,
  exceed: number,
  identities: number,
): number {
  const upperTail = -Math.expm1(Math.log1p(-exceed) / Math.max(1, identities));
  return p.impostorCosineMean - p.impostorCosineSd * normalQuantile(upperTail, 0, 1);
}
