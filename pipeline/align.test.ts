import { describe, expect, it } from 'vitest';
import {
  alignFace,
  alignFaceInRegion,
  alignmentResiduals,
  alignmentSourceRect,
  applySimilarity,
  estimateSimilarity,
  preShrinkFactor,
  preShrunkSimilarity,
  warpSimilarity,
  type Point,
  type Similarity,
} from './align.ts';
import { reduceByBlocks } from './resample.ts';

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
    const width = 803; // not a multiple of the large face's pre-shrink factor: a partial edge block
    const height = 700;
    const image = new Uint8Array(width * height * 3);
    for (let i = 0; i < image.length; i++) image[i] = (i * 2654435761) >>> 24; // deterministic noise
    const faces: Point[][] = [
      TEMPLATE.map(([x, y]) => [x * 1.7 + 150, y * 1.7 + 60]), // inside, upscaled
      TEMPLATE.map(([x, y]) => [x * 0.6 + 2, y * 0.6 - 20]), // past the top-left border
      TEMPLATE.map(([x, y]) => [x * 2.2 - y * 0.3 + 250, y * 2.2 + x * 0.3 + 120]), // rotated, bottom-right
      TEMPLATE.map(([x, y]) => [x * 5.3 + 37, y * 5.3 + 11]), // large: pre-shrunk by 5
      TEMPLATE.map(([x, y]) => [x * 3.1 - y * 0.8 + 560, y * 3.1 + x * 0.8 + 420]), // large, past the bottom-right
    ];
    for (const landmarks of faces) {
      const whole = alignFace(image, width, height, landmarks, TEMPLATE, [112, 112]);
      const r = alignmentSourceRect(whole.transform, 112, 112);
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

describe('pre-shrinking a large face before the warp (the contract: k×k block mean, k = ⌊1/scale⌋ ≥ 2)', () => {
  const scaled = (scale: number): Similarity => ({ a: scale, b: 0, tx: 0, ty: 0 });

  it('pre-shrinks only faces the warp shrinks by 2× or more', () => {
    expect(preShrinkFactor(scaled(1.2))).toBe(1);
    expect(preShrinkFactor(scaled(0.51))).toBe(1);
    expect(preShrinkFactor(scaled(0.5))).toBe(2);
    expect(preShrinkFactor(scaled(0.34))).toBe(2);
    expect(preShrinkFactor(scaled(0.1))).toBe(10);
    // rotation does not change the scale
    expect(preShrinkFactor({ a: 0.3 * Math.cos(1), b: 0.3 * Math.sin(1), tx: 5, ty: 9 })).toBe(3);
  });

  it('warps the block mean of the image through the transform in block pixels', () => {
    const width = 900;
    const height = 760;
    const image = new Uint8Array(width * height * 3);
    for (let i = 0; i < image.length; i++) image[i] = (i * 2654435761) >>> 24;
    const landmarks = TEMPLATE.map(([x, y]): Point => [x * 6.4 - y * 1.1 + 120, y * 6.4 + x * 1.1 + 40]);
    const aligned = alignFace(image, width, height, landmarks, TEMPLATE, [112, 112]);
    const k = preShrinkFactor(aligned.transform);
    expect(k).toBe(6);
    const blocks = reduceByBlocks({ data: image, width, height }, k);
    const want = warpSimilarity(
      blocks.data,
      blocks.width,
      blocks.height,
      3,
      preShrunkSimilarity(aligned.transform, k),
      112,
      112,
    );
    // the same samples; the window's offset moves a value on a half by one level at most
    expect(aligned.rgb.every((v, i) => Math.abs(v - want[i]!) <= 1)).toBe(true);
    expect(aligned.rgb.filter((v, i) => v !== want[i]!).length).toBeLessThan(aligned.rgb.length / 100);
  });

  it('does not alias: a face-sized window of fine stripes comes out as their mean, where a plain bilinear warp does not', () => {
    const width = 1000;
    const height = 1000;
    const image = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++)
        image.fill((x + y) % 2 ? 255 : 0, (y * width + x) * 3, (y * width + x) * 3 + 3);
    const landmarks = TEMPLATE.map(([x, y]): Point => [x * 8 + 31.3, y * 8 + 27.7]);
    const aligned = alignFace(image, width, height, landmarks, TEMPLATE, [112, 112]);
    const plain = warpSimilarity(image, width, height, 3, aligned.transform, 112, 112);
    const off = (rgb: Buffer) => rgb.filter((v) => Math.abs(v - 127.5) > 20).length;
    expect(off(aligned.rgb)).toBe(0);
    expect(off(plain)).toBeGreaterThan(plain.length / 4);
  });
});
