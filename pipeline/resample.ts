/**
 * The two downscaling filters of the preprocessing contract (models/README.md, "Preprocessing
 * contract"), on interleaved 3-channel uint8 images. Pure functions.
 *
 * - `resizeArea`: the detection copy. Each output pixel is the mean of the source pixels its
 *   footprint covers, each weighted by the share of it that is covered (OpenCV's `INTER_AREA`,
 *   the same weights and order of summation), rounded to the nearest integer. An anti-aliased
 *   reduction that is cheap and that a Python pipeline reproduces with `cv2.resize(...,
 *   interpolation=cv2.INTER_AREA)`.
 * - `reduceByBlocks`: the pre-shrink of a large face before its warp. The mean of each k×k block,
 *   blocks anchored at the image's top-left pixel, rounded half up, integer arithmetic throughout.
 */

export interface RgbPixels {
  /** interleaved RGB, width×height×3 */
  data: Uint8Array;
  width: number;
  height: number;
}

interface AreaTable {
  /** per entry: source index, destination index, weight */
  source: Int32Array;
  dest: Int32Array;
  weight: Float64Array;
  size: number;
}

/**
 * The area-resampling weights along one axis (OpenCV `computeResizeAreaTab`): destination pixel d
 * covers [d·scale, (d+1)·scale) of the source; a source pixel partly covered contributes the covered
 * share; weights are normalised by the footprint (clipped at the image edge).
 */
function areaTable(sourceSize: number, destSize: number): AreaTable {
  // OpenCV computes the scale as the inverse of dsize/ssize; the same doubles give the same cells
  const scale = 1 / (destSize / sourceSize);
  const cap = 2 * sourceSize + 2 * destSize;
  const source = new Int32Array(cap);
  const dest = new Int32Array(cap);
  const weight = new Float64Array(cap);
  let k = 0;
  for (let d = 0; d < destSize; d++) {
    const f1 = d * scale;
    const f2 = f1 + scale;
    const cell = Math.min(scale, sourceSize - f1);
    let s2 = Math.floor(f2);
    s2 = Math.min(s2, sourceSize - 1);
    const s1 = Math.min(Math.ceil(f1), s2);
    if (s1 - f1 > 1e-3) {
      source[k] = s1 - 1;
      dest[k] = d;
      weight[k++] = (s1 - f1) / cell;
    }
    for (let s = s1; s < s2; s++) {
      source[k] = s;
      dest[k] = d;
      weight[k++] = 1 / cell;
    }
    if (f2 - s2 > 1e-3) {
      source[k] = s2;
      dest[k] = d;
      weight[k++] = Math.min(Math.min(f2 - s2, 1), cell) / cell;
    }
  }
  return { source, dest, weight, size: k };
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** Per destination pixel, the range [first[d], first[d + 1]) of its entries in the table. */
function rangesOf(table: AreaTable, destSize: number): Int32Array {
  const first = new Int32Array(destSize + 1);
  for (let k = table.size - 1; k >= 0; k--) first[table.dest[k]!] = k;
  first[destSize] = table.size;
  return first;
}

/**
 * Area-averaged downscale of an RGB image to `width`×`height` (each at most the source's). Output
 * row by output row: the source rows it covers are summed with their vertical weights into one
 * full-width row (a flat pass over the source bytes), which is then reduced horizontally. The same
 * weighted sum as OpenCV's horizontal-then-vertical order, up to floating-point rounding (double
 * here, float there): the outputs differ by 1 where the exact mean lies within about 1e-5 of a
 * half, a few pixels in a million.
 */
export function resizeArea(src: RgbPixels, width: number, height: number): Buffer {
  if (width > src.width || height > src.height || width < 1 || height < 1)
    throw new Error(`resizeArea: ${src.width}×${src.height} → ${width}×${height} is not a reduction`);
  const xs = areaTable(src.width, width);
  const ys = areaTable(src.height, height);
  const xFirst = rangesOf(xs, width);
  const yFirst = rangesOf(ys, height);
  const xSource = xs.source.map((s) => s * 3);
  const xWeight = xs.weight;
  const out = Buffer.allocUnsafe(width * height * 3);
  const srcStride = src.width * 3;
  const column = new Float64Array(srcStride);
  const data = src.data;
  let o = 0;
  for (let dy = 0; dy < height; dy++) {
    column.fill(0);
    for (let j = yFirst[dy]!; j < yFirst[dy + 1]!; j++) {
      const beta = ys.weight[j]!;
      const base = ys.source[j]! * srcStride;
      for (let i = 0; i < srcStride; i++) column[i] = column[i]! + beta * data[base + i]!;
    }
    for (let dx = 0; dx < width; dx++, o += 3) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = xFirst[dx]!, end = xFirst[dx + 1]!; k < end; k++) {
        const s = xSource[k]!;
        const alpha = xWeight[k]!;
        r += column[s]! * alpha;
        g += column[s + 1]! * alpha;
        b += column[s + 2]! * alpha;
      }
      out[o] = clampByte(r);
      out[o + 1] = clampByte(g);
      out[o + 2] = clampByte(b);
    }
  }
  return out;
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
