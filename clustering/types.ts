/** One face as the clustering algorithms see it. */
export interface ClusterFace {
  id: string;
  /** unit-length direction of the raw feature (who) */
  unit: Float32Array;
  /** L2 norm of the raw feature (how sure) */
  magnitude: number;
  /** magnitude mapped through the manifest calibration to 0..1 */
  quality: number;
  /**
   * the photo the face was detected in; two faces of one photo are kept in different identities
   * when `ClusterParams.samePhotoCannotLink` is on (absent: no such constraint for this face)
   */
  photoId?: string;
}

/**
 * Why a kept face has no identity: its quality is too low to be placed on its own (`low_quality`),
 * two identities are about as close (`ambiguous`: the best beats the runner-up by less than the
 * attach margin), or nothing is close enough (`no_match`).
 */
export type UnassignedReason = 'low_quality' | 'ambiguous' | 'no_match';

/** Result of clustering N faces: label per face index, -1 = unassigned. */
export interface Clustering {
  labels: Int32Array;
  clusters: number;
  /** batch quality-aware clustering: per face, why it is unassigned (kept faces only) */
  reasons?: (UnassignedReason | undefined)[];
}

/**
 * Constraints from user corrections, in terms of face indices:
 * - anchors: faces that carry an identity whose clusters must stay apart from some other identity's
 *   (cannot-link pairs, or two differently-named identities);
 * - cannotLink: pairs of anchor labels that must never end up in one cluster.
 */
export interface ClusterConstraints {
  anchorOf?: (faceIndex: number) => string | undefined;
  cannotLink?: (anchorA: string, anchorB: string) => boolean;
}
