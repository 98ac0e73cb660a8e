import type { DropReason } from '../schemas/face.ts';
import type { EmbedderManifest, QualityCue } from './models.ts';
import type { FaceCues } from './faceCues.ts';

export interface GateResult {
  magnitude: number;
  quality: number;
  kept: boolean;
  reason?: DropReason;
}

/** L2 norm of the raw feature: the MagFace magnitude. */
export function magnitudeOf(feature: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < feature.length; i++) sum += feature[i]! * feature[i]!;
  return Math.sqrt(sum);
}

/** The unit vector f/‖f‖ (zero vector stays zero). */
export function unitOf(feature: Float32Array, magnitude = magnitudeOf(feature)): Float32Array {
  const out = new Float32Array(feature.length);
  if (magnitude > 0) for (let i = 0; i < feature.length; i++) out[i] = feature[i]! / magnitude;
  return out;
}

/** Quality 0..1: the manifest's magnitude range mapped linearly, clamped. */
export function qualityFromMagnitude(calibration: EmbedderManifest['quality'], magnitude: number): number {
  const [lo, hi] = calibration.magnitudeRange;
  return Math.min(1, Math.max(0, (magnitude - lo) / (hi - lo)));
}

/**
 * The magnitude gate: a face below the model's drop threshold is kept=false with reason
 * 'low_magnitude' — marked, never silently lost.
 */
export function magnitudeGate(calibration: EmbedderManifest['quality'], magnitude: number): GateResult {
  const quality = qualityFromMagnitude(calibration, magnitude);
  if (magnitude < calibration.dropBelowMagnitude)
    return { magnitude, quality, kept: false, reason: 'low_magnitude' };
  return { magnitude, quality, kept: true };
}

/** The cue values a quality mapping combines, from a face's magnitude and analysis cues. */
export function cueValues(magnitude: number, cues: FaceCues): Record<QualityCue, number> {
  return {
    logMagnitude: Math.log(Math.max(1e-6, magnitude)),
    detectorScore: cues.detectorScore,
    poseResidual: cues.poseResidual,
    logFaceSize: Math.log(Math.max(1, cues.faceSize)),
    logSharpness: Math.log1p(Math.max(0, cues.sharpness)),
  };
}

/**
 * The face's quality 0..1 per the manifest: with `quality.cues`, the reliability score
 * Σ w·cue mapped linearly (clamped) from its range; without, the magnitude mapping (a MagFace
 * model's own signal).
 */
export function qualityFromCues(
  calibration: EmbedderManifest['quality'],
  magnitude: number,
  cues: FaceCues | undefined,
): number {
  const mapping = calibration.cues;
  if (!mapping || !cues) return qualityFromMagnitude(calibration, magnitude);
  return qualityFromScore(mapping, cueValues(magnitude, cues));
}

export function reliabilityScore(
  weights: Partial<Record<QualityCue, number>>,
  values: Record<QualityCue, number>,
): number {
  let z = 0;
  for (const [cue, w] of Object.entries(weights) as [QualityCue, number][]) z += w * values[cue];
  return z;
}

export function qualityFromScore(
  mapping: {
    weights: Partial<Record<QualityCue, number>>;
    range: readonly [number, number] | readonly number[];
  },
  values: Record<QualityCue, number>,
): number {
  const [lo, hi] = mapping.range as [number, number];
  return Math.min(1, Math.max(0, (reliabilityScore(mapping.weights, values) - lo) / (hi - lo)));
}
