import { describe, expect, it } from 'vitest';
import {
  alignFace,
  alignFaceInRegion,
  alignmentResiduals,
  applySimilarity,
  estimateSimilarity,
  warpSimilarity,
  warpSourceRect,
  type Point,
  type Similarity,
} from './align.ts';

const TEMPLATE: Point[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

function invert(t: Similarity): Similarity {
  const det = t.a * t.a + t.b * t.b;
  const a = t.a / det;
  const b = -t.b / det;
  return { a, b, tx: -(a * t.tx - b * t.ty), ty: -(b * t.tx + a * t.ty) };
}

describe('estimateSimilarity', () => {
  it('recovers a known transform from synthetic landmarks to within 0.01 px', () => {
    // photo landmarks = an exact similarity image of the template (scale 2.7, 23°, shifted)
    const scale = 2.7;
    const angle = (23 * Math.PI) / 180;
    const known: Similarity = {
      a: scale * Math.cos(angle),
      b: scale * Math.sin(angle),
      tx: 412.3,
      ty: 187.9,
    };
    const landmarks = TEMPLATE.map((p) => applySimilarity(known, p));
    const fitted = estimateSimilarity(landmarks, TEMPLATE);
    const expected = invert(known);
    const residuals = alignmentResiduals(fitted, landmarks, TEMPLATE);
    expect(Math.max(...residuals)).toBeLessThan(0.01);
    // the fitted transform maps image points where the inverse of the known one does
    for (const p of [
      [0, 0],
      [800, 600],
      [412, 188],
    ] as Point[]) {
      const [u, v] = applySimilarity(fitted, p);
      const [eu, ev] = applySimilarity(expected, p);
      expect(Math.hypot(u - eu, v - ev)).toBeLessThan(0.01);
    }
  });

  it('is the least-squares fit: noisy landmarks give small but non-zero residuals', () => {
    const noisy = TEMPLATE.map(([x, y], i): Point => [x * 2 + (i % 2 ? 1.5 : -1.5), y * 2 + (i % 3) - 1]);
    const t = estimateSimilarity(noisy, TEMPLATE);
    const r = alignmentResiduals(t, noisy, TEMPLATE);
    expect(Math.max(...r)).toBeGreaterThan(0.1);
    expect(Math.max(...r)).toBeLessThan(2);
    expect(t.a).toBeCloseTo(0.5, 1);
  });
});

describe('warpSimilarity', () => {
  const w = 4;
  const h = 3;
  const img = Uint8Array.from({ length: w * h }, (_, i) => i * 10);

  it('reproduces the image under the identity transform', () => {
    const out = warpSimilarity(img, w, h, 1, { a: 1, b: 0, tx: 0, ty: 0 }, w, h);
    expect([...out]).toEqual([...img]);
  });

  it('samples bilinearly at pixel centres and treats outside as 0', () => {
    // shift by half a pixel: output (u, v) samples source (u - 0.5, v)
    const out = warpSimilarity(img, w, h, 1, { a: 1, b: 0, tx: 0.5, ty: 0 }, w, h);
    expect(out[0]).toBe(Math.round(0.5 * 0 + 0.5 * 0)); // half outside (0), half pixel 0 (value 0)
    expect(out[1]).toBe(5); // between 0 and 10
    expect(out[5]).toBe(45); // between 40 and 50
    const shifted = warpSimilarity(img, w, h, 1, { a: 1, b: 0, tx: 10, ty: 0 }, w, h);
    expect([...shifted].every((v) => v === 0)).toBe(true);
  });
});

describe('alignment from a crop of the image', () => {
  it('gives the same aligned pixels and transform as the whole image, inside and at its borders', () => {
    const width = 400;
    const height = 300;
    const image = new Uint8Array(width * height * 3);
    for (let i = 0; i < image.length; i++) image[i] = (i * 2654435761) >>> 24; // deterministic noise
    const faces: Point[][] = [
      TEMPLATE.map(([x, y]) => [x * 1.7 + 150, y * 1.7 + 60]), // inside, upscaled
      TEMPLATE.map(([x, y]) => [x * 0.6 + 2, y * 0.6 - 20]), // past the top-left border
      TEMPLATE.map(([x, y]) => [x * 2.2 - y * 0.3 + 250, y * 2.2 + x * 0.3 + 120]), // rotated, bottom-right
    ];
    for (const landmarks of faces) {
      const whole = alignFace(image, width, height, landmarks, TEMPLATE, [112, 112]);
      const r = warpSourceRect(whole.transform, 112, 112);
      const left = Math.max(0, r.left);
      const top = Math.max(0, r.top);
      const right = Math.min(width, r.left + r.width);
      const bottom = Math.min(height, r.top + r.height);
      const crop = new Uint8Array((right - left) * (bottom - top) * 3);
      for (let y = top; y < bottom; y++)
        crop.set(
          image.subarray((y * width + left) * 3, (y * width + right) * 3),
          (y - top) * (right - left) * 3,
        );
      const region = { data: crop, width: right - left, height: bottom - top, left, top };
      const fromCrop = alignFaceInRegion(region, landmarks, TEMPLATE, [112, 112]);
      expect(fromCrop.transform).toEqual(whole.transform);
      expect(fromCrop.residuals).toEqual(whole.residuals);
      let differing = 0;
      for (let i = 0; i < whole.rgb.length; i++)
        if (Math.abs(whole.rgb[i]! - fromCrop.rgb[i]!) > 1) differing++;
      expect(differing).toBe(0);
    }
  });
});
