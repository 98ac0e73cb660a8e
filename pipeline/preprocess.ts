/**
 * Pixel → tensor conversion driven by a model manifest's input contract:
 * value = (pixel * scale - mean[c]) / std[c], channels in the manifest's colour order, NCHW.
 */

export interface PixelTransform {
  colorOrder: 'RGB' | 'BGR';
  scale: number;
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Writes one interleaved RGB image (`width`×`height`×3, uint8) as a planar NCHW sample into `out`
 * starting at `offset`. The plane is `outWidth`×`outHeight` (≥ the image); the area beyond the
 * image (right/bottom padding) is left as it is in `out` (zero for a fresh Float32Array).
 */
export function writeNchw(
  rgb: Uint8Array,
  width: number,
  height: number,
  t: PixelTransform,
  out: Float32Array,
  offset = 0,
  outWidth = width,
  outHeight = height,
): void {
  const plane = outWidth * outHeight;
  // source channel feeding output channel c: RGB keeps the order, BGR reverses it
  const srcChannel = t.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c++) {
    const src = srcChannel[c]!;
    const mean = t.mean[c]!;
    const std = t.std[c]!;
    const base = offset + c * plane;
    for (let y = 0; y < height; y++) {
      const row = base + y * outWidth;
      let p = y * width * 3 + src;
      for (let x = 0; x < width; x++, p += 3) out[row + x] = (rgb[p]! * t.scale - mean) / std;
    }
  }
}

/** A batch of same-size RGB images as one NCHW float32 tensor buffer. */
export function batchToNchw(
  images: readonly Uint8Array[],
  width: number,
  height: number,
  t: PixelTransform,
): Float32Array {
  const sample = 3 * width * height;
  const out = new Float32Array(images.length * sample);
  images.forEach((img, i) => writeNchw(img, width, height, t, out, i * sample));
  return out;
}
