import { attachBar, joinPenalty, type ClusterParams } from './params.ts';
import type { UnassignedReason } from './types.ts';
import { dot, norm } from './vec.ts';

/**
 * # Quality-aware link score
 *
 * MagFace makes a face's feature norm (magnitude) grow with how recognisable the face is; the
 * manifest maps it to a quality q ∈ [0, 1]. A link between faces i and j scores
 *
 *     link(i, j) = cos(i, j) − τ − μ · (1 − min(q_i, q_j))
 *
 * and is evidence for "same person" when link > 0.
 * - τ (`linkThreshold`) is the model's verification threshold for good faces
 *   (manifest `thresholds.sameIdentityCosine`): two high-quality faces (q = 1) link exactly when
 *   cos > τ, so a high-quality pair is taken at face value.
 * - μ (`lowQualityMargin`, default τ/4) is the extra cosine demanded per unit of missing quality at
 *   the WEAKER end: a link is only as trustworthy as its worse face. Degraded faces drift towards a
 *   common "blurry face" direction and scatter around their identity, so a high cosine involving
 *   one is weaker evidence; with q = 0 a link needs cos > τ + μ.
 * - Links also carry a trust `min(q_i, q_j)`; links with trust below `coreQuality` (default 0.2)
 *   are never used to merge two groups: a low-quality face may JOIN an identity, never BRIDGE two.
 *   Clustering runs on core faces only (q ≥ coreQuality); the others are attached afterwards to
 *   their single best identity, one face at a time, so neither one low-quality face nor a chain of
 *   them can connect two identities.
 * - An identity's template is the sum of its faces' raw features, T = Σ a_k u_k (a = magnitude,
 *   u = unit direction), i.e. the magnitude-weighted mean direction. Two groups A, B merge only if
 *   their template agreement
 *
 *         agree(A, B) = T_A · T_B / (M_A · M_B),   M = Σ a_k
 *
 *   (= the magnitude-weighted mean pairwise cosine between A and B, an average linkage where good
 *   faces count more) reaches `mergeThreshold` (default τ) plus ω·√((1/a + 1/b)/2) for groups of a
 *   and b faces (params.ts `mergeBar`: the two templates' estimation noise, so two large groups of
 *   one person merge near `mergeThreshold` while a face seen once needs ω/√2 more however large the
 *   group). A single strong edge therefore cannot chain two groups whose members disagree on
 *   average.
 * - A non-core face attaches to the identity whose template direction T/|T| gives it the best link
 *   score link(face, template) with the template taken as quality 1, if that score is > 0 and beats
 *   the runner-up identity by `attachMargin` (default τ/10); otherwise it stays unassigned. With
 *   `attachFalseRate` α set, the bar of that score follows the number N of identities the face is
 *   compared with (params.ts `attachBar`: the cosine the best of N impostors stays under with
 *   probability 1 − α), since a stranger's best impostor cosine grows with N.
 *
 * - Two faces of one photo are two people (`samePhotoCannotLink`, default true): detected in one
 *   picture, they are almost always different persons (a mirror or a photo in the photo are the
 *   rare exception), so the photo is an implicit cannot-link, whatever the cosine says. Batch
 *   clustering never merges two groups holding faces of one photo and never attaches a face to an
 *   identity holding a face of its photo (it takes its best allowed identity, or none); the online
 *   step never joins, creates or merges across it; a recluster's result keeps at most one face per
 *   photo in an identity. Only a user's explicit action (moving a face, merging two identities)
 *   puts two faces of one photo together: those faces are pinned, and pins win over the rule.
 *
 * Defaults are derived from the manifest (τ, magnitude range); per-model overrides may be given in
 * the manifest's optional `clustering` block.
 */
export function linkScore(
  cos: number,
  qa: number,
  qb: number,
  p: Pick<ClusterParams, 'linkThreshold' | 'lowQualityMargin'>,
): number {
  return cos - p.linkThreshold - p.lowQualityMargin * (1 - Math.min(qa, qb));
}

type AttachParams = Pick<
  ClusterParams,
  | 'attachThreshold'
  | 'attachFalseRate'
  | 'impostorCosineMean'
  | 'impostorCosineSd'
  | 'lowQualityMargin'
  | 'smallGroupPenalty'
  | 'attachSmallGroupPenalty'
  | 'attachMargin'
>;

/**
 * Evidence that a face belongs to an identity from its cosine to the identity's template, when the
 * face is compared with `identities` identities: cos − attachBar − μ·(1 − q). A template averages
 * many faces, so a genuine face lies closer to it than to a single face while an impostor does not:
 * the bar can sit below τ for a large identity (callers add ω_a/√n for a small one). With
 * `attachFalseRate` set the bar rises with the number of identities (params.ts `attachBar`).
 */
export function attachScore(cos: number, quality: number, identities: number, p: AttachParams): number {
  return cos - attachBar(p, identities) - p.lowQualityMargin * (1 - quality);
}

/**
 * The attach rules on a face's best and runner-up identity (template cosines; the best one holds
 * `size` faces; the face is compared with `identities` identities in all), as the batch and the
 * online step apply them: null when the face joins the best, else why not — its score does not
 * clear the bar an identity of that size sets (`no_match`), or the runner-up is within the attach
 * margin (`ambiguous`).
 */
export function attachRefusal(
  bestCos: number,
  secondCos: number,
  quality: number,
  size: number,
  identities: number,
  p: AttachParams,
): UnassignedReason | null {
  if (attachScore(bestCos, quality, identities, p) <= joinPenalty(p, size)) return 'no_match';
  if (bestCos - secondCos < p.attachMargin) return 'ambiguous';
  return null;
}

/**
 * Why a face no identity took stays unassigned, given why the attach step refused it (undefined:
 * it never had a candidate): two identities too close to call stay `ambiguous`; otherwise a face too
 * weak to stand on its own is kept out by its quality (`low_quality`); else nothing was close enough.
 */
export function leftoverReason(
  attach: UnassignedReason | undefined,
  quality: number,
  p: Pick<ClusterParams, 'coreQuality'>,
): UnassignedReason {
  if (attach === 'ambiguous') return 'ambiguous';
  if (quality < p.coreQuality) return 'low_quality';
  return attach ?? 'no_match';
}

/** Trust of a link: the quality of its weaker end. Links below `coreQuality` trust never bridge. */
export function linkTrust(qa: number, qb: number): number {
  return Math.min(qa, qb);
}

/** Magnitude-weighted mean pairwise cosine between two groups, from their templates. */
export function templateAgreement(
  ta: Float32Array,
  magSumA: number,
  tb: Float32Array,
  magSumB: number,
): number {
  if (magSumA <= 0 || magSumB <= 0) return -1;
  return dot(ta, tb) / (magSumA * magSumB);
}

/** Cosine between a unit face direction and a template's direction. */
export function templateCosine(unit: Float32Array, template: Float32Array): number {
  const n = norm(template);
  return n > 0 ? dot(unit, template) / n : -1;
}
