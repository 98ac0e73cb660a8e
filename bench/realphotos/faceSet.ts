import type { ClusterFace } from '../../clustering/types.ts';
import type { LabelledCollection } from '../../clustering/calibration.ts';
import { cueValues } from '../../pipeline/qualityGate.ts';
import type { FaceCues } from '../../pipeline/faceCues.ts';
import { overlapOfSmaller } from '../../pipeline/detect.ts';
import { decodeEmbedding, type CachedPhoto } from './analysisCache.ts';

/** What the detector keeps, applied to a cache analysed at a low threshold. */
export interface DetectionConfig {
  scoreThreshold: number;
  minFaceSize: number;
  /** a box whose overlap with a higher-scored box covers more than this share of the smaller box is the same face */
  containment: number;
}

export interface StudyFace extends ClusterFace {
  cues: FaceCues;
  photoIndex: number;
  /** the photo's label when this is its largest face */
  label: string | null;
  bbox: [number, number, number, number];
}

export interface FaceSet {
  faces: StudyFace[];
  /** per photo: index of its largest face in `faces`, or −1 */
  largest: Int32Array;
  labels: string[];
  photos: number;
}

const corners = (b: readonly number[]): [number, number, number, number] => [
  b[0]!,
  b[1]!,
  b[0]! + b[2]!,
  b[1]! + b[3]!,
];

export function buildFaceSet(photos: readonly CachedPhoto[], det: DetectionConfig): FaceSet {
  const faces: StudyFace[] = [];
  const largest = new Int32Array(photos.length).fill(-1);
  photos.forEach((photo, p) => {
    const byScore = photo.faces
      .filter((f) => f.score >= det.scoreThreshold)
      .sort((a, b) => b.score - a.score);
    const kept: typeof byScore = [];
    for (const f of byScore)
      if (kept.every((k) => overlapOfSmaller(corners(k.bbox), corners(f.bbox)) <= det.containment))
        kept.push(f);
    let best = -1;
    let bestArea = -1;
    for (const f of kept) {
      if (Math.min(f.bbox[2], f.bbox[3]) < det.minFaceSize) continue;
      const raw = decodeEmbedding(f.embedding);
      const unit = new Float32Array(raw.length);
      for (let i = 0; i < raw.length; i++) unit[i] = raw[i]! / f.magnitude;
      const idx = faces.length;
      faces.push({
        id: `${p}:${idx}`,
        unit,
        magnitude: f.magnitude,
        quality: 1,
        photoId: String(p),
        cues: f.cues,
        photoIndex: p,
        label: null,
        bbox: f.bbox,
      });
      const area = f.bbox[2] * f.bbox[3];
      if (area > bestArea) [best, bestArea] = [idx, area];
    }
    largest[p] = best;
    if (best >= 0) faces[best]!.label = photo.label;
  });
  return { faces, largest, labels: photos.map((p) => p.label), photos: photos.length };
}

/** truth and prediction over the photos (largest face each; a photo without a face is unassigned) */
export function scoredLabels(set: FaceSet, labels: ArrayLike<number>): { truth: string[]; pred: number[] } {
  const pred = Array.from(set.largest, (i) => (i >= 0 ? labels[i]! : -1));
  return { truth: set.labels, pred };
}

/** The face set as calibration sees it: cue values per face, largest face and label per photo. */
export function toCollection(name: string, set: FaceSet): LabelledCollection {
  return {
    name,
    faces: set.faces,
    cues: set.faces.map((f) => cueValues(f.magnitude, f.cues)),
    largest: set.largest,
    truth: set.labels,
  };
}
