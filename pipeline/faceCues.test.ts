import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnalyzer, type Analyzer } from './analyze.ts';
import { overlapOfSmaller } from './detect.ts';
import { laplacianVariance, poseResidual } from './faceCues.ts';
import { qualityFromCues } from './qualityGate.ts';
import { examplesDir, modelsDir } from '../clustering/testUtil.ts';

function checkerboard(size: number, cell: number): Uint8Array {
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      rgb.fill(((x / cell) ^ (y / cell)) & 1 ? 255 : 0, (y * size + x) * 3, (y * size + x) * 3 + 3);
  return rgb;
}

describe('per-face cues', () => {
  it('sharpness: a fine pattern has a larger Laplacian variance than a coarse one, a flat crop none', () => {
    const fine = laplacianVariance(checkerboard(112, 2), 112, 112);
    const coarse = laplacianVariance(checkerboard(112, 16), 112, 112);
    expect(fine).toBeGreaterThan(coarse);
    expect(laplacianVariance(new Uint8Array(112 * 112 * 3).fill(128), 112, 112)).toBe(0);
  });

  it('pose: landmarks on the template give 0, residuals scale with the eye distance', () => {
    const template = [
      [38.3, 51.7],
      [73.5, 51.5],
      [56.0, 71.7],
      [41.5, 92.4],
      [70.7, 92.2],
    ];
    expect(poseResidual([0, 0, 0, 0, 0], template)).toBe(0);
    expect(poseResidual([3.52, 3.52, 3.52, 3.52, 3.52], template)).toBeCloseTo(0.1, 2);
  });

  it('quality from the manifest: magnitude only without a cue mapping, the fitted score with one', () => {
    const cues = { faceSize: 80, detectorScore: 0.9, sharpness: 200, poseResidual: 0.05 };
    const magnitudeOnly = { dropBelowMagnitude: 40, magnitudeRange: [40, 90] as [number, number] };
    expect(qualityFromCues(magnitudeOnly, 65, cues)).toBeCloseTo(0.5, 6);
    const mapping = {
      ...magnitudeOnly,
      cues: { weights: { detectorScore: 10, poseResidual: -10 }, range: [0, 10] as [number, number] },
    };
    expect(qualityFromCues(mapping, 65, cues)).toBeCloseTo((10 * 0.9 - 10 * 0.05) / 10, 6);
    expect(qualityFromCues(mapping, 65, { ...cues, detectorScore: 2 })).toBe(1);
  });
});

describe('one box per face on the fixture photos', () => {
  let analyzer: Analyzer;
  beforeAll(async () => {
    analyzer = await createAnalyzer();
  }, 60_000);
  afterAll(async () => analyzer.close());

  it('the group photos give 4/3/5/6/5 faces, no box inside another, every face with its cues', async () => {
    const counts: number[] = [];
    for (const n of [1, 2, 3, 4, 5]) {
      const a = await analyzer.analyzeFile(path.join(examplesDir, 'faceapi-groups', `bbt${n}.jpg`));
      counts.push(a.faces.length);
      const boxes = a.faces.map(
        (f) => [f.bbox[0], f.bbox[1], f.bbox[0] + f.bbox[2], f.bbox[1] + f.bbox[3]] as const,
      );
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++)
          expect(overlapOfSmaller([...boxes[i]!], [...boxes[j]!])).toBeLessThanOrEqual(
            analyzer.detectorManifest.thresholds.nmsContainment,
          );
      for (const f of a.faces) {
        expect(f.cues.faceSize).toBe(Math.min(f.bbox[2], f.bbox[3]));
        expect(f.cues.faceSize).toBeGreaterThanOrEqual(analyzer.detectorManifest.thresholds.minFaceSize);
        expect(f.cues.sharpness).toBeGreaterThan(0);
        expect(f.quality).toBeGreaterThanOrEqual(0);
        expect(f.quality).toBeLessThanOrEqual(1);
      }
    }
    expect(counts).toEqual([4, 3, 5, 6, 5]);
  }, 60_000);
});

describe('the minimum face size comes from the detector manifest', () => {
  it('a models folder whose manifest says 50 px marks the faces under 50 px of bbt3 too_small', async () => {
    // the bundled models with one manifest change: detector thresholds.minFaceSize 20 → 50
    const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-minface-'));
    const manifest = JSON.parse(readFileSync(path.join(modelsDir, 'manifest.json'), 'utf8')) as {
      models: { task: string; file: string; thresholds?: { minFaceSize?: number } }[];
    };
    for (const m of manifest.models) symlinkSync(path.join(modelsDir, m.file), path.join(dir, m.file));
    const detector = manifest.models.find((m) => m.task === 'detector')!;
    expect(detector.thresholds!.minFaceSize).toBeLessThan(43); // bundled: bbt3's 43×61 px face is kept
    detector.thresholds!.minFaceSize = 50;
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    const bbt3 = path.join(examplesDir, 'faceapi-groups', 'bbt3.jpg');
    const strict = await createAnalyzer({ modelsDir: dir }); // no minFaceSize option: the manifest's
    try {
      expect(strict.detectorManifest.thresholds.minFaceSize).toBe(50);
      const faces = (await strict.analyzeFile(bbt3)).faces;
      expect(faces).toHaveLength(5);
      const small = faces.filter((f) => Math.min(f.bbox[2], f.bbox[3]) < 50);
      expect(small.length).toBeGreaterThan(0);
      for (const f of faces)
        expect([f.kept, f.reason]).toEqual(small.includes(f) ? [false, 'too_small'] : [true, undefined]);
    } finally {
      await strict.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
