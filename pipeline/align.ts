import { reduceByBlocks } from './resample.ts';

/**
 * Face alignment: the least-squares similarity transform (rotation, uniform scale, translation,
 * no reflection) from 5 landmarks to a template, and a bilinear warp with OpenCV `warpAffine`
 * conventions (integer coordinates are pixel centres, samples outside the image count as 0,
 * results rounded to uint8). A face the warp shrinks by 2× or more is first pre-shrunk by an
 * integer factor with a block mean (`preShrinkFactor`), so that the bilinear warp, which samples
 * only 4 source pixels per output pixel, does not alias (models/README.md, "Preprocessing
 * contract"). Pure functions.
 */

export type Point = readonly [number, number];

/** T(p) = [[a, -b], [b, a]]·p + [tx, ty] */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

function centroid(points: readonly Point[]): [number, number] {
  let x = 0;
  let y = 0;
  for (const p of points) {
    x += p[0];
    y += p[1];
  }
  return [x / points.length, y / points.length];
}

/** Closed form (same optimum as Umeyama): minimises Σ‖T(src_i) − dst_i‖². */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): Similarity {
  if (src.length !== dst.length || src.length < 2)
    throw new Error('estimateSimilarity: need ≥ 2 matching points');
  const [sx, sy] = centroid(src);
  const [dx, dy] = centroid(dst);
  let num_a = 0;
  let num_b = 0;
  let den = 0;
  for (let i = 0; i < src.length; i++) {
    const x = src[i]![0] - sx;
    const y = src[i]![1] - sy;
    const u = dst[i]![0] - dx;
    const v = dst[i]![1] - dy;
    num_a += x * u + y * v;
    num_b += x * v - y * u;
    den += x * x + y * y;
  }
  if (den === 0) throw new Error('estimateSimilarity: source points coincide');
  const a = num_a / den;
  const b = num_b / den;
  return { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) };
}

export function applySimilarity(t: Similarity, p: Point): [number, number] {
  return [t.a * p[0] - t.b * p[1] + t.tx, t.b * p[0] + t.a * p[1] + t.ty];
}

/** The 2×3 row-major matrix [a, −b, tx, b, a, ty] (OpenCV's warpAffine M). */
export function similarityMatrix(t: Similarity): [number, number, number, number, number, number] {
  return [t.a, -t.b, t.tx, t.b, t.a, t.ty];
}

/** Distance from each transformed source point to its destination point, in destination pixels. */
export function alignmentResiduals(t: Similarity, src: readonly Point[], dst: readonly Point[]): number[] {
  return src.map((p, i) => {
    const [u, v] = applySimilarity(t, p);
    return Math.hypot(u - dst[i]![0], v - dst[i]![1]);
  });
}

/**
 * Warps an interleaved uint8 image through `t` (source → destination) into an `outWidth`×`outHeight`
 * image, sampling the source bilinearly at T⁻¹(u, v).
 */
export function warpSimilarity(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  t: Similarity,
  outWidth: number,
  outHeight: number,
): Buffer {
  const out = Buffer.alloc(outWidth * outHeight * channels);
  const det = t.a * t.a + t.b * t.b;
  // inverse of [[a, -b], [b, a]] is [[a, b], [-b, a]] / det
  const ia = t.a / det;
  const ib = t.b / det;
  const stride = width * channels;
  for (let v = 0; v < outHeight; v++) {
    for (let u = 0; u < outWidth; u++) {
      const du = u - t.tx;
      const dv = v - t.ty;
      const x = ia * du + ib * dv;
      const y = -ib * du + ia * dv;
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      if (x0 < -1 || y0 < -1 || x0 >= width || y0 >= height) continue; // all four neighbours outside: 0
      const fx = x - x0;
      const fy = y - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w10 = fx * (1 - fy);
      const w01 = (1 - fx) * fy;
      const w11 = fx * fy;
      const in0 = y0 >= 0;
      const in1 = y0 + 1 < height;
      const inL = x0 >= 0;
      const inR = x0 + 1 < width;
      const o = (v * outWidth + u) * channels;
      const p00 = y0 * stride + x0 * channels;
      for (let c = 0; c < channels; c++) {
        let s = 0;
        if (in0 && inL) s += w00 * src[p00 + c]!;
        if (in0 && inR) s += w10 * src[p00 + channels + c]!;
        if (in1 && inL) s += w01 * src[p00 + stride + c]!;
        if (in1 && inR) s += w11 * src[p00 + stride + channels + c]!;
        out[o + c] = Math.min(255, Math.max(0, Math.round(s)));
      }
    }
  }
  return out;
}

export interface AlignedFace {
  /** outWidth×outHeight×3 RGB */
  rgb: Buffer;
  transform: Similarity;
  /** per-landmark distance to the template after the fit, in aligned pixels */
  residuals: number[];
}

/** A crop of a larger image: `data` (width×height×3) starts at (left, top) of the image. */
export interface ImageRegion {
  data: Uint8Array;
  width: number;
  height: number;
  left: number;
  top: number;
}

/** Aligns one face of an RGB image to a 5-point template. */
export function alignFace(
  rgb: Uint8Array,
  width: number,
  height: number,
  landmarks: readonly Point[],
  template: readonly Point[],
  size: readonly [number, number],
): AlignedFace {
  return alignFaceInRegion({ data: rgb, width, height, left: 0, top: 0 }, landmarks, template, size);
}

/**
 * Aligns a face from a crop of the image (landmarks in whole-image pixels). The crop must contain
 * `alignmentSourceRect` of the face's transform wherever that lies inside the image; the transform
 * returned maps whole-image pixels.
 */
export function alignFaceInRegion(
  region: ImageRegion,
  landmarks: readonly Point[],
  template: readonly Point[],
  size: readonly [number, number],
): AlignedFace {
  const transform = estimateSimilarity(landmarks, template);
  return {
    rgb: warpRegion(region, transform, size),
    transform,
    residuals: alignmentResiduals(transform, landmarks, template),
  };
}

/**
 * The pre-shrink factor of a warp: k = ⌊1 / scale⌋ when the warp shrinks by 2× or more (scale =
 * aligned pixels per source pixel), else 1. After the block mean the bilinear warp shrinks by less
 * than 1.5× (at most 2× when k = 1).
 */
export function preShrinkFactor(t: Similarity): number {
  const k = Math.floor(1 / Math.hypot(t.a, t.b));
  return k >= 2 ? k : 1;
}

/**
 * The transform in pre-shrunk pixels: block pixel p' covers source pixels k·p' … k·p'+k−1, whose
 * centre is k·p' + (k−1)/2, so T'(p') = T(k·p' + (k−1)/2).
 */
export function preShrunkSimilarity(t: Similarity, k: number): Similarity {
  const c = (k - 1) / 2;
  return { a: t.a * k, b: t.b * k, tx: t.tx + (t.a - t.b) * c, ty: t.ty + (t.b + t.a) * c };
}

/** Warps a face out of a region through `t` (whole-image pixels), pre-shrinking a large face. */
function warpRegion(region: ImageRegion, t: Similarity, size: readonly [number, number]): Buffer {
  const k = preShrinkFactor(t);
  if (k === 1) {
    const local = shiftSimilarity(t, region.left, region.top);
    return warpSimilarity(region.data, region.width, region.height, 3, local, size[0], size[1]);
  }
  // whole blocks (anchored at the image's top-left pixel) of the region within the face's window
  const want = warpSourceRect(preShrunkSimilarity(t, k), size[0], size[1]);
  const bx0 = Math.max(want.left, Math.ceil(region.left / k));
  const by0 = Math.max(want.top, Math.ceil(region.top / k));
  const bx1 = Math.min(want.left + want.width, Math.floor((region.left + region.width) / k));
  const by1 = Math.min(want.top + want.height, Math.floor((region.top + region.height) / k));
  if (bx1 <= bx0 || by1 <= by0) return Buffer.alloc(size[0] * size[1] * 3);
  const blocks = reduceByBlocks({ data: region.data, width: region.width, height: region.height }, k, {
    left: bx0 * k - region.left,
    top: by0 * k - region.top,
    width: (bx1 - bx0) * k,
    height: (by1 - by0) * k,
  });
  const local = shiftSimilarity(preShrunkSimilarity(t, k), bx0, by0);
  return warpSimilarity(blocks.data, blocks.width, blocks.height, 3, local, size[0], size[1]);
}

/**
 * The source rectangle the alignment through `t` reads, in whole-image pixels: `warpSourceRect`,
 * or for a pre-shrunk face the whole blocks under the warp's window in block pixels.
 */
export function alignmentSourceRect(
  t: Similarity,
  outWidth: number,
  outHeight: number,
): { left: number; top: number; width: number; height: number } {
  const k = preShrinkFactor(t);
  if (k === 1) return warpSourceRect(t, outWidth, outHeight);
  const r = warpSourceRect(preShrunkSimilarity(t, k), outWidth, outHeight);
  return { left: r.left * k, top: r.top * k, width: r.width * k, height: r.height * k };
}

/**
 * The source rectangle an `outWidth`×`outHeight` warp through `t` samples: the inverse images of
 * the output corners, widened by the bilinear neighbour (and a pixel for rounding). Warping a crop
 * that covers it (through `shiftSimilarity`) gives the same pixels as warping the whole image.
 */
export function warpSourceRect(
  t: Similarity,
  outWidth: number,
  outHeight: number,
): { left: number; top: number; width: number; height: number } {
  const det = t.a * t.a + t.b * t.b;
  const ia = t.a / det;
  const ib = t.b / det;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const [u, v] of [
    [0, 0],
    [outWidth - 1, 0],
    [0, outHeight - 1],
    [outWidth - 1, outHeight - 1],
  ] as const) {
    const du = u - t.tx;
    const dv = v - t.ty;
    const x = ia * du + ib * dv;
    const y = -ib * du + ia * dv;
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  const left = Math.floor(x0) - 1;
  const top = Math.floor(y0) - 1;
  return { left, top, width: Math.ceil(x1) + 3 - left, height: Math.ceil(y1) + 3 - top };
}

/** The same mapping for coordinates relative to (left, top): T'(p − o) = T(p). */
export function shiftSimilarity(t: Similarity, left: number, top: number): Similarity {
  return { a: t.a, b: t.b, tx: t.tx + t.a * left - t.b * top, ty: t.ty + t.b * left + t.a * top };
}
