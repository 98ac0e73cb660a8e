import type { FaceRecord } from '../schemas/face.ts';

/**
 * A face record of a synthetic bench store: one kept face per photo with a fixed box and landmarks;
 * the caller chooses the ids, the raw feature and its quality (the benches fill their stores with these).
 */
export function syntheticFaceRecord(face: {
  faceId: string;
  photoId: string;
  embedding: number[];
  magnitude: number;
  quality: number;
  modelId: string;
}): FaceRecord {
  return {
    v: 1,
    faceId: face.faceId,
    photoId: face.photoId,
    faceIndex: 0,
    bbox: [0, 0, 100, 100],
    landmarks: [
      [30, 40],
      [70, 40],
      [50, 60],
      [35, 80],
      [65, 80],
    ],
    score: 0.9,
    embedding: face.embedding,
    magnitude: face.magnitude,
    quality: face.quality,
    kept: true,
    modelId: face.modelId,
  };
}
