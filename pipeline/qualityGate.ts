import type { DropReason } from '../schemas/face.ts';
import type { EmbedderManifest } from './models.ts';

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
