import { afterEach, describe, expect, it } from 'vitest';
import { reduceByBlocks, resizeArea } from './resample.ts';
import { useNativePixels as useNative } from './nativePixels.ts';
import { nativeAddonReason } from '../core/nativeAddon.ts';
import { rng } from '../core/random.ts';

/** A w×h RGB image whose channels are three different functions of (x, y). */
function pattern(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 37 + y * 11) % 256;
      data[o + 1] = (x * y * 7) % 256;
      data[o + 2] = ((x ^ y) * 29) % 256;
    }
  return data;
}

/**
 * The area average written out from its definition: output pixel (u, v) covers the source square
 * [u·sx, (u+1)·sx) × [v·sy, (v+1)·sy); every source pixel counts with the area of it that is covered.
 */
function areaByDefinition(src: Buffer, w: number, h: number, ow: number, oh: number): number[] {
  const sx = w / ow;
  const sy = h / oh;
  const out: number[] = [];
  for (let v = 0; v < oh; v++)
    for (let u = 0; u < ow; u++)
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let area = 0;
        for (let y = Math.floor(v * sy); y < Math.min(h, Math.ceil((v + 1) * sy)); y++)
          for (let x = Math.floor(u * sx); x < Math.min(w, Math.ceil((u + 1) * sx)); x++) {
            const cover =
              (Math.min(x + 1, (u + 1) * sx) - Math.max(x, u * sx)) *
              (Math.min(y + 1, (v + 1) * sy) - Math.max(y, v * sy));
            sum += cover * src[(y * w + x) * 3 + c]!;
            area += cover;
          }
        out.push(Math.round(sum / area));
      }
  return out;
}

describe('resizeArea (the detection copy filter: area average, OpenCV INTER_AREA)', () => {
  it('gives each output pixel the area-weighted mean of the source pixels it covers', () => {
    const w = 47;
    const h = 31;
    const src = pattern(w, h);
    for (const [ow, oh] of [
      [20, 13], // 2.35× × 2.38×: fractional footprints
      [47, 31], // identity
      [16, 31], // one axis only
      [1, 1],
    ] as const) {
      const got = Array.from(resizeArea({ data: src, width: w, height: h }, ow, oh));
      const want = areaByDefinition(src, w, h, ow, oh);
      const off = got.filter((v, i) => Math.abs(v - want[i]!) > 0);
      // floating-point order may move a value lying on a half by one level, nothing more
      expect(got.every((v, i) => Math.abs(v - want[i]!) <= 1)).toBe(true);
      expect(off.length).toBeLessThanOrEqual(Math.ceil(got.length / 1000));
    }
  });

  it('rounds a mean lying exactly on a half to the even integer, as OpenCV does (exact integer sums)', () => {
    // 4×1 → 3×1, footprints of 4/3 px: means (3·0 + 2)/4, (2 + 1)/2 and (1 + 3·3)/4, all on a half,
    // where weights of 1/3 in floating point would land either side of it
    const data = Buffer.from([0, 2, 1, 3].flatMap((v) => [v, v, v]));
    expect(Array.from(resizeArea({ data, width: 4, height: 1 }, 3, 1))).toEqual([0, 0, 0, 2, 2, 2, 2, 2, 2]);
    // the same along the vertical axis
    expect(Array.from(resizeArea({ data, width: 1, height: 4 }, 1, 3))).toEqual([0, 0, 0, 2, 2, 2, 2, 2, 2]);
    // and a tie off a half-way point of a footprint: (1 + 4)/2 → 2, (3 + 4)/2 → 4
    const pairs = Buffer.from([1, 4, 3, 4].flatMap((v) => [v, v, v]));
    expect(Array.from(resizeArea({ data: pairs, width: 4, height: 1 }, 2, 1))).toEqual([2, 2, 2, 4, 4, 4]);
  });

  it('refuses to enlarge', () => {
    expect(() => resizeArea({ data: pattern(4, 4), width: 4, height: 4 }, 5, 4)).toThrow(/not a reduction/);
  });
});

describe('reduceByBlocks (the pre-shrink filter: k×k block mean, rounded half up)', () => {
  it('averages each block anchored at the top-left and leaves out partial edge blocks', () => {
    const w = 11;
    const h = 7;
    const src = pattern(w, h);
    const k = 3;
    const out = reduceByBlocks({ data: src, width: w, height: h }, k);
    expect([out.width, out.height]).toEqual([3, 2]);
    for (let j = 0; j < 2; j++)
      for (let i = 0; i < 3; i++)
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let y = j * k; y < j * k + k; y++)
            for (let x = i * k; x < i * k + k; x++) sum += src[(y * w + x) * 3 + c]!;
          expect(out.data[(j * 3 + i) * 3 + c]).toBe(Math.floor((sum + 4) / 9));
        }
  });

  it('rounds a mean lying on a half upwards', () => {
    // one 2×2 block whose channel sums are 2, 6 and 10: means 0.5, 1.5 and 2.5
    const data = Buffer.from([2, 0, 10, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(reduceByBlocks({ data, width: 2, height: 2 }, 2).data)).toEqual([1, 2, 3]);
  });

  it('reads the blocks of a rectangle inside the image', () => {
    const w = 12;
    const h = 10;
    const src = pattern(w, h);
    const whole = reduceByBlocks({ data: src, width: w, height: h }, 2);
    const part = reduceByBlocks({ data: src, width: w, height: h }, 2, {
      left: 4,
      top: 2,
      width: 6,
      height: 6,
    });
    for (let j = 0; j < 3; j++)
      for (let i = 0; i < 3; i++)
        for (let c = 0; c < 3; c++)
          expect(part.data[(j * 3 + i) * 3 + c]).toBe(whole.data[((j + 1) * 6 + i + 2) * 3 + c]);
  });
});

describe('the compiled filters (pipeline/native/pixels.cc)', () => {
  afterEach(() => useNative(true));

  it('are built by npm ci and loaded', () => {
    // the postinstall builds them where a compiler is present, as on every machine this runs on
    expect(nativeAddonReason('pixels')).toBe('loaded');
    expect(useNative()).toBe(true);
  });

  it('give the same bytes as the JavaScript specification', () => {
    const random = rng(7);
    const noise = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    for (const [w, h, ow, oh] of [
      [2300, 1530, 1600, 1064], // a detection copy after one halving
      [3199, 2100, 1600, 1050],
      [47, 31, 20, 13],
      [640, 480, 333, 250],
      [9, 7, 9, 7],
      [5, 5, 1, 1],
    ] as const) {
      // smooth images (many exact ties, as in enlarged photos) and, where small, noise
      for (const data of w * h <= 640 * 480 ? [pattern(w, h), noise(w * h * 3)] : [pattern(w, h)]) {
        const image = { data, width: w, height: h };
        useNative(true);
        const compiled = resizeArea(image, ow, oh);
        const blocksC = reduceByBlocks(image, 3, { left: 1, top: 2, width: w - 1, height: h - 2 });
        useNative(false);
        expect(Buffer.compare(compiled, resizeArea(image, ow, oh)), `${w}×${h} → ${ow}×${oh}`).toBe(0);
        const blocksJ = reduceByBlocks(image, 3, { left: 1, top: 2, width: w - 1, height: h - 2 });
        expect([blocksC.width, blocksC.height]).toEqual([blocksJ.width, blocksJ.height]);
        expect(Buffer.compare(blocksC.data, blocksJ.data)).toBe(0);
      }
    }
  });
});
