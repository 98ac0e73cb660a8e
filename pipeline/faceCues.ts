/**
 * Per-face reliability cues, measured at analysis time on what the embedder sees, so a quality
 * mapping (manifest `quality.cues`) can combine them with the embedding magnitude:
 * - faceSize: short side of the detector box in original pixels (small faces are upsampled mush);
 * - detectorScore: YuNet's cls·obj;
 * - sharpness: variance of the 4-neighbour Laplacian of the grey aligned crop (its central part,
 *   so the black border of a face near the image edge does not count as detail);
 * - poseResidual: mean distance of the five landmarks to the alignment template after the best
 *   similarity transform, in aligned pixels, relative to the template's eye distance: a frontal face
 *   fits the template, a profile (or a chin taken for a face) does not.
 * Pure functions.
 */

export interface FaceCues {
  faceSize: number;
  detectorScore: number;
  sharpness: number;
  poseResidual: number;
}

/** Variance of the Laplacian of the grey (BT.601 luma) image, over the central `keep` share of each side. */
export function laplacianVariance(rgb: Uint8Array, width: number, height: number, keep = 0.8): number {
  const grey = new Float32Array(width * height);
  for (let i = 0, p = 0; i < grey.length; i++, p += 3)
    grey[i] = 0.299 * rgb[p]! + 0.587 * rgb[p + 1]! + 0.114 * rgb[p + 2]!;
  const mx = Math.max(1, Math.floor((width * (1 - keep)) / 2));
  const my = Math.max(1, Math.floor((height * (1 - keep)) / 2));
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let y = my; y < height - my; y++) {
    for (let x = mx; x < width - mx; x++) {
      const i = y * width + x;
      const l = grey[i - 1]! + grey[i + 1]! + grey[i - width]! + grey[i + width]! - 4 * grey[i]!;
      sum += l;
      sumSq += l * l;
      n++;
    }
  }
  if (n === 0) return 0;
  const mean = sum / n;
  return sumSq / n - mean * mean;
}

/** Mean landmark residual after alignment over the template's eye distance (0 = fits the template). */
export function poseResidual(residuals: readonly number[], template: readonly (readonly number[])[]): number {
  const eye = Math.hypot(template[1]![0]! - template[0]![0]!, template[1]![1]! - template[0]![1]!);
  if (residuals.length === 0 || !(eye > 0)) return 0;
  return residuals.reduce((s, r) => s + r, 0) / residuals.length / eye;
}

export function faceCues(input: {
  bbox: readonly number[];
  score: number;
  alignedRgb: Uint8Array;
  alignedSize: readonly [number, number] | readonly number[];
  landmarkResiduals: readonly number[];
  templatePoints: readonly (readonly number[])[];
}): FaceCues {
  return {
    faceSize: Math.min(input.bbox[2]!, input.bbox[3]!),
    detectorScore: input.score,
    sharpness: laplacianVariance(input.alignedRgb, input.alignedSize[0]!, input.alignedSize[1]!),
    poseResidual: poseResidual(input.landmarkResiduals, input.templatePoints),
  };
}
