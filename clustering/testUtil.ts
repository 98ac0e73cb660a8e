import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EmbedderCalibration } from './params.ts';
import type { ClusterFace } from './types.ts';
import { qualityOf } from './params.ts';
import { toUnit } from './vec.ts';

/** Test helpers: the bundled models, sample photos and reference outputs, found relative to the repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const modelsDir = path.join(repoRoot, 'models');
export const examplesDir = path.join(repoRoot, 'examples');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');

export function testEmbedderManifest(): EmbedderCalibration & { name: string; embeddingDim: number } {
  const m = JSON.parse(readFileSync(path.join(modelsDir, 'manifest.json'), 'utf8')) as {
    models: (EmbedderCalibration & { task: string; name: string; embeddingDim: number })[];
  };
  const e = m.models.find((x) => x.task === 'embedder');
  if (!e) throw new Error('no embedder in the bundled models manifest');
  return e;
}

/**
 * The bundled embedder's manifest without its calibrated clustering operating point (`clustering`
 * block, `quality.cues`): the defaults derived from τ. Tests of a rule's mechanics pin these, so a
 * re-calibration of the shipped manifest on real photos does not change what they test; the
 * shipped values are checked by the real-photo benchmark and the end-to-end tests.
 */
export function uncalibratedEmbedderManifest(): EmbedderCalibration & { name: string; embeddingDim: number } {
  const m = testEmbedderManifest();
  const { cues: _cues, ...quality } = m.quality as typeof m.quality & { cues?: unknown };
  return { ...m, quality, clustering: undefined };
}

/** The 40 real crops (8 identities × 5) embedded by the reference pipeline. */
export function referenceCrops(range: readonly number[]): {
  faces: ClusterFace[];
  truth: string[];
  raw: number[][];
} {
  const ref = JSON.parse(
    readFileSync(path.join(fixturesDir, 'reference', 'mobilefacenet-crops.json'), 'utf8'),
  ) as {
    faces: { file: string; identity: string; embedding: number[] }[];
  };
  const faces = ref.faces.map((f) => {
    const { unit, magnitude } = toUnit(f.embedding);
    return { id: f.file, unit, magnitude, quality: qualityOf(magnitude, range) };
  });
  return { faces, truth: ref.faces.map((f) => f.identity), raw: ref.faces.map((f) => f.embedding) };
}

/**
 * Real faces of the group photos bbt1 and bbt4 (clustering/fixtures/groupFaces.json, made by
 * test/fixtures/makeGroupFaces.ts with the pipeline's default models, identities from the reference
 * labels), each with its photo id: in bbt1, raj's and leonard's faces are closer to each other
 * (cos ≈ 0.5) than the model's same-person threshold.
 */
export function groupPhotoFaces(range: readonly number[]): {
  faces: ClusterFace[];
  truth: string[];
  raw: number[][];
  photo: string[];
} {
  const fixture = JSON.parse(
    readFileSync(path.join(repoRoot, 'clustering', 'fixtures', 'groupFaces.json'), 'utf8'),
  ) as { photos: Record<string, { identity: string; embedding: number[] }[]> };
  const out = {
    faces: [] as ClusterFace[],
    truth: [] as string[],
    raw: [] as number[][],
    photo: [] as string[],
  };
  for (const [photoId, list] of Object.entries(fixture.photos)) {
    list.forEach((f, i) => {
      const { unit, magnitude } = toUnit(f.embedding);
      out.faces.push({
        id: `${photoId}#${i}`,
        unit,
        magnitude,
        quality: qualityOf(magnitude, range),
        photoId,
      });
      out.truth.push(f.identity);
      out.raw.push(f.embedding);
      out.photo.push(photoId);
    });
  }
  return out;
}
