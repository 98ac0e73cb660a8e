/**
 * Pixel → tensor conversion driven by a model manifest's input contract:
 * value = (pixel * scale - mean[c]) / std[c], channels in the manifest's colour order, NCHW.
 */

import { nativePixels } from './nativePixels.ts';

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
  const { tables, planes } = channelLookup(t);
  const [lutR, lutG, lutB] = tables as [Float32Array, Float32Array, Float32Array];
  const offR = planes[0]! * plane;
  const offG = planes[1]! * plane;
  const offB = planes[2]! * plane;
  const native = nativePixels();
  if (native) {
    native.writeNchw(rgb, width, height, lutR, lutG, lutB, offR, offG, offB, out, offset, outWidth);
    return;
  }
  // One pass over the interleaved pixels with three planar writes each. The values come from
  // 256-entry tables (the formula in float64, rounded to float32 once: the same numbers as computing
  // it per pixel), so a 1600 px detector input costs one read per byte instead of three strided
  // passes with a division per value.
  let row = offset;
  for (let y = 0, p = 0; y < height; y++, row += outWidth) {
    const end = row + width;
    for (let o = row; o < end; o++, p += 3) {
      out[o + offR] = lutR[rgb[p]!]!;
      out[o + offG] = lutG[rgb[p + 1]!]!;
      out[o + offB] = lutB[rgb[p + 2]!]!;
    }
  }
}

interface ChannelLookup {
  /** per source channel (R, G, B): the value each byte becomes */
  tables: Float32Array[];
  /** per source channel (R, G, B): the output plane it fills */
  planes: number[];
}

// keyed by value: a transform arrives in a worker as a fresh structured-clone copy with every task
const lookupCache = new Map<string, ChannelLookup>();

function channelLookup(t: PixelTransform): ChannelLookup {
  const key = `${t.colorOrder}|${t.scale}|${t.mean.join(',')}|${t.std.join(',')}`;
  let lookup = lookupCache.get(key);
  if (!lookup) {
    // output plane c holds source channel order[c], normalised with mean[c] / std[c]
    const order = t.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
    const planes = [0, 1, 2].map((k) => order.indexOf(k));
    const tables = planes.map((c) => {
      const table = new Float32Array(256);
      for (let v = 0; v < 256; v++) table[v] = (v * t.scale - t.mean[c]!) / t.std[c]!;
      return table;
    });
    lookup = { tables, planes };
    lookupCache.set(key, lookup);
  }
  return lookup;
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
