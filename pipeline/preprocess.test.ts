import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbedderManifest, loadManifest } from './models.ts';
import { batchToNchw, writeNchw } from './preprocess.ts';
import { useNativePixels } from './nativePixels.ts';
import { fixturesDir, modelsDir } from './testFixtures.ts';

interface ToyReference {
  images: Record<string, { shape: number[]; channelMeanBGR: number[]; samples: Record<string, number> }>;
}

/** A MagFace-contract manifest (BGR, pixel/255, no mean, NCHW) built from the test embedder's entry. */
function magfaceContract(): EmbedderManifest {
  const base = loadManifest(modelsDir).embedders[0]!;
  return EmbedderManifest.parse({
    ...base,
    name: 'magface-contract',
    input: { ...base.input, colorOrder: 'BGR', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] },
  });
}

describe('manifest-driven preprocessing', () => {
  it('reproduces reference/magface-toy-tensors.json for a MagFace-contract manifest', async () => {
    const ref = JSON.parse(
      readFileSync(path.join(fixturesDir, 'reference/magface-toy-tensors.json'), 'utf8'),
    ) as ToyReference;
    const m = magfaceContract();
    const names = Object.keys(ref.images);
    expect(names).toHaveLength(10);
    for (const name of names) {
      const expected = ref.images[name]!;
      const { data, info } = await sharp(path.join(fixturesDir, 'magface-toy', name))
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      expect([1, 3, info.height, info.width]).toEqual(expected.shape);
      const t = batchToNchw([data], info.width, info.height, m.input);
      const plane = info.width * info.height;
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let i = 0; i < plane; i++) sum += t[c * plane + i]!;
        expect(sum / plane).toBeCloseTo(expected.channelMeanBGR[c]!, 4);
      }
      for (const [key, value] of Object.entries(expected.samples)) {
        const [c, y, x] = key.split(',').map((s) => Number(s.slice(1)));
        expect(t[c! * plane + y! * info.width + x!]).toBeCloseTo(value, 5);
      }
    }
  });

  it('applies (pixel·scale − mean)/std per channel in the manifest colour order, padding untouched', () => {
    const rgb = Uint8Array.from([10, 20, 30, 40, 50, 60]); // 2×1 image
    const out = new Float32Array(3 * 3 * 2).fill(-7); // written into a 3×2 plane
    writeNchw(
      rgb,
      2,
      1,
      { colorOrder: 'RGB', scale: 1, mean: [127.5, 127.5, 127.5], std: [128, 128, 128] },
      out,
      0,
      3,
      2,
    );
    expect(out[0]).toBeCloseTo((10 - 127.5) / 128, 6);
    expect(out[1]).toBeCloseTo((40 - 127.5) / 128, 6);
    expect(out[2]).toBe(-7); // padding column
    expect(out[6]).toBeCloseTo((20 - 127.5) / 128, 6); // G plane
    const bgr = batchToNchw([rgb], 2, 1, { colorOrder: 'BGR', scale: 1, mean: [0, 0, 0], std: [1, 1, 1] });
    expect([...bgr]).toEqual([30, 60, 20, 50, 10, 40]);
  });
});

describe('the compiled tensor loop (pipeline/native/pixels.cc)', () => {
  afterEach(() => useNativePixels(true));

  it('writes the same floats as the JavaScript version, padding untouched', () => {
    expect(useNativePixels()).toBe(true);
    const width = 37;
    const height = 23;
    const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 97 + (i >> 5)) % 256);
    for (const t of [
      { colorOrder: 'BGR' as const, scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }, // YuNet's input
      { colorOrder: 'RGB' as const, scale: 1 / 255, mean: [0.5, 0.4, 0.3], std: [0.5, 0.25, 0.2] },
    ]) {
      // into a padded 40×32 plane at an offset: the second sample of a batch
      const plane = 40 * 32;
      const run = (native: boolean) => {
        useNativePixels(native);
        const out = new Float32Array(2 * 3 * plane).fill(-7);
        writeNchw(rgb, width, height, t, out, 3 * plane, 40, 32);
        return out;
      };
      expect(run(true)).toEqual(run(false));
    }
  });
});
