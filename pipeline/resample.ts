/**
 * The two downscaling filters of the preprocessing contract (models/README.md, "Preprocessing
 * contract"), on interleaved 3-channel uint8 images. Pure functions.
 *
 * - `resizeArea`: the detection copy. Each output pixel is the mean of the source pixels its
 *   footprint covers, each weighted by the share of it that is covered (OpenCV's `INTER_AREA`,
 *   the same weights and order of summation, exact integer sums), rounded to the nearest integer,
 *   a tie to the even one (OpenCV's `cvRound`). An anti-aliased
 *   reduction that is cheap and that a Python pipeline reproduces with `cv2.resize(...,
 *   interpolation=cv2.INTER_AREA)`.
 * - `reduceByBlocks`: the pre-shrink of a large face before its warp. The mean of each k×k block,
 *   blocks anchored at the image's top-left pixel, rounded half up, integer arithmetic throughout.
 *
 * The JavaScript below is the specification and the fallback; where `npm ci` built
 * pipeline/native/pixels.cc (the same integer arithmetic, so the same bytes: tested) both run
 * there, about three times faster.
 */

import { nativePixels } from './nativePixels.ts';

export interface RgbPixels {
  /** interleaved RGB, width×height×3 */
  data: Uint8Array;
  width: number;
  height: number;
}

interface AreaTable {
  /** per entry: source index (×3 for the horizontal axis: a byte offset), weight */
  source: Int32Array;
  weight: Int32Array;
  /** per destination pixel d, its entries are [first[d], first[d + 1]) */
  first: Int32Array;
}

/**
 * The area-resampling weights along one axis, in exact integers: measured in 1/destSize of a source
 * pixel, destination pixel d covers [d·sourceSize, (d+1)·sourceSize) and source pixel s covers
 * [s·destSize, (s+1)·destSize), so the share of s that d covers is an integer and d's weights sum
 * to sourceSize. As in OpenCV's `computeResizeAreaTab`, a partly covered source pixel at either end
 * of a footprint is left out when its share is at most 1e-3 of a pixel.
 */
function areaTable(sourceSize: number, destSize: number, sourceStep: number): AreaTable {
  const source = new Int32Array(sourceSize + 2 * destSize);
  const weight = new Int32Array(sourceSize + 2 * destSize);
  const first = new Int32Array(destSize + 1);
  const sliver = 1e-3 * destSize;
  let k = 0;
  for (let d = 0; d < destSize; d++) {
    first[d] = k;
    const from = d * sourceSize;
    const to = from + sourceSize;
    for (let s = Math.floor(from / destSize); s * destSize < to; s++) {
      const share = Math.min(to, (s + 1) * destSize) - Math.max(from, s * destSize);
      if (share < destSize && share <= sliver) continue;
      source[k] = s * sourceStep;
      weight[k++] = share;
    }
  }
  first[destSize] = k;
  return { source, weight, first };
}

/**
 * Area-averaged downscale of an RGB image to `width`×`height` (each at most the source's): each
 * output pixel is the mean of the source pixels its footprint covers, each weighted by the share
 * of it that is covered (OpenCV's `INTER_AREA` weights). Separable, in OpenCV's order: each source
 * row an output row needs is reduced horizontally into one `width`-wide row, and those rows are
 * summed with their vertical weights into the output row, so only two rows are ever held, never a
 * full-size intermediate (a source row shared by two output rows is reduced once). The weights are
 * integers and so are the sums (below 2^53), so the mean is exact; it is rounded to the nearest
 * integer, a tie to the even one, as OpenCV rounds. Ties are common in photos that were enlarged,
 * and rounding them all up moves YuNet's landmarks on large faces measurably (one face of the peer
 * benchmark fell to cosine 0.995 against the Python peer). OpenCV sums in float: the two differ by 1
 * where the exact mean lies within about 1e-5 of a half, a few pixels in a thousand at worst.
 */
export function resizeArea(src: RgbPixels, width: number, height: number): Buffer {
  if (width > src.width || height > src.height || width < 1 || height < 1)
    throw new Error(`resizeArea: ${src.width}×${src.height} → ${width}×${height} is not a reduction`);
  const out = Buffer.allocUnsafe(width * height * 3);
  const native = nativePixels();
  if (native) {
    native.resizeArea(src.data, src.width, src.height, out, width, height);
    return out;
  }
  const xs = areaTable(src.width, width, 3);
  const ys = areaTable(src.height, height, 1);
  const area = src.width * src.height;
  const twoArea = 2 * area;
  const rowBytes = width * 3;
  const reduced = new Float64Array(rowBytes);
  const sum = new Float64Array(rowBytes);
  const srcStride = src.width * 3;
  let reducedRow = -1;
  let o = 0;
  for (let dy = 0; dy < height; dy++) {
    const begin = ys.first[dy]!;
    const end = ys.first[dy + 1]!;
    for (let j = begin; j < end; j++) {
      const sy = ys.source[j]!;
      if (sy !== reducedRow) {
        reduceRow(src.data, sy * srcStride, xs, width, reduced);
        reducedRow = sy;
      }
      const beta = ys.weight[j]!;
      if (j === begin) for (let i = 0; i < rowBytes; i++) sum[i] = beta * reduced[i]!;
      else for (let i = 0; i < rowBytes; i++) sum[i] = sum[i]! + beta * reduced[i]!;
    }
    // sums are at most 255·area: exact, and 2·sum + area stays below 2^53
    for (let i = 0; i < rowBytes; i++, o++) {
      // the mean plus ½, exact when it is an integer: only then is the mean a tie (other
      // quotients lie at least 1/(2·area) from an integer, far above a double's rounding)
      const up = (2 * sum[i]! + area) / twoArea;
      const q = Math.floor(up);
      out[o] = q === up && (q & 1) === 1 ? q - 1 : q;
    }
  }
  return out;
}

/** One source row (starting at byte `base`) reduced horizontally into `into` (`width`×3 sums). */
function reduceRow(data: Uint8Array, base: number, xs: AreaTable, width: number, into: Float64Array): void {
  const { source, weight, first } = xs;
  let k = 0;
  for (let dx = 0, q = 0; dx < width; dx++, q += 3) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (const end = first[dx + 1]!; k < end; k++) {
      const s = base + source[k]!;
      const alpha = weight[k]!;
      r += data[s]! * alpha;
      g += data[s + 1]! * alpha;
      b += data[s + 2]! * alpha;
    }
    into[q] = r;
    into[q + 1] = g;
    into[q + 2] = b;
  }
}

/**
 * Mean of each k×k block of `src` (or of its rectangle `within`), rounded half up ((sum + ⌊k²/2⌋) /
 * k², integer). Output pixel (i, j) is the block of columns k·i … k·i+k−1 and rows k·j … k·j+k−1
 * from the rectangle's top-left; a partial block at the right or bottom edge is left out, so the
 * output is ⌊width/k⌋ × ⌊height/k⌋.
 */
export function reduceByBlocks(
  src: RgbPixels,
  k: number,
  within: { left: number; top: number; width: number; height: number } = {
    left: 0,
    top: 0,
    width: src.width,
    height: src.height,
  },
): RgbPixels & { data: Buffer } {
  if (!Number.isInteger(k) || k < 1) throw new Error(`reduceByBlocks: factor ${k} is not a positive integer`);
  if (
    within.left < 0 ||
    within.top < 0 ||
    within.left + within.width > src.width ||
    within.top + within.height > src.height
  )
    throw new Error('reduceByBlocks: the rectangle is not inside the image');
  const width = Math.floor(within.width / k);
  const height = Math.floor(within.height / k);
  const out = Buffer.alloc(width * height * 3);
  if (width === 0 || height === 0) return { data: out, width, height };
  const native = nativePixels();
  if (native) {
    native.reduceByBlocks(src.data, src.width, src.height, k, within.left, within.top, width, height, out);
    return { data: out, width, height };
  }
  const area = k * k;
  const half = Math.floor(area / 2);
  const sums = new Uint32Array(width * 3);
  const stride = src.width * 3;
  for (let by = 0; by < height; by++) {
    sums.fill(0);
    for (let y = within.top + by * k; y < within.top + by * k + k; y++) {
      let p = y * stride + within.left * 3;
      for (let bx = 0; bx < width; bx++) {
        const q = bx * 3;
        let r = 0;
        let g = 0;
        let b = 0;
        for (let x = 0; x < k; x++, p += 3) {
          r += src.data[p]!;
          g += src.data[p + 1]!;
          b += src.data[p + 2]!;
        }
        sums[q] = sums[q]! + r;
        sums[q + 1] = sums[q + 1]! + g;
        sums[q + 2] = sums[q + 2]! + b;
      }
    }
    const o = by * width * 3;
    for (let i = 0; i < width * 3; i++) out[o + i] = Math.floor((sums[i]! + half) / area);
  }
  return { data: out, width, height };
}
