import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodePhoto, halvingsBefore, pixelFootprint } from './decode.ts';
import { reduceByBlocks, resizeArea } from './resample.ts';
import { examplesDir } from './testFixtures.ts';

describe('decoding a photo larger than the detection size', () => {
  it('keeps only the detection copy, and reads full-resolution regions equal to a full decode', async () => {
    const bytes = await sharp(path.join(examplesDir, 'faceapi-groups/bbt1.jpg'))
      .resize(2400, 1800, { fit: 'fill' })
      .png()
      .toBuffer();
    const reserved: number[] = [];
    let released = 0;
    const photo = await decodePhoto(bytes, {}, async (n) => {
      reserved.push(n);
      return () => released++;
    });
    expect([photo.width, photo.height]).toEqual([2400, 1800]);
    expect([photo.detect.width, photo.detect.height]).toEqual([1600, 1200]);
    expect(photo.full).toBeUndefined();
    expect(reserved).toEqual([pixelFootprint(2400, 1800, 1600)]);
    const full = await sharp(bytes).removeAlpha().raw().toBuffer();
    const region = await photo.readRegion({ left: -20, top: 1700, width: 300, height: 400 }); // clipped
    expect([region.left, region.top, region.width, region.height]).toEqual([0, 1700, 280, 100]);
    for (let y = 0; y < region.height; y++) {
      const row = full.subarray(
        ((region.top + y) * 2400 + region.left) * 3,
        ((region.top + y) * 2400 + 280) * 3,
      );
      expect(Buffer.compare(region.data.subarray(y * 280 * 3, (y + 1) * 280 * 3), row)).toBe(0);
    }
    photo.release();
    expect(released).toBe(1);
  });

  it('makes the detection copy as the contract says (2×2 block means, then the area average), not by the JPEG decoder shrinking', async () => {
    // 5000 px: large enough that libvips would otherwise shrink the JPEG while decoding it
    const bytes = await sharp(path.join(examplesDir, 'faceapi-groups/bbt4.jpg'))
      .resize(5000, 1200, { fit: 'fill' })
      .jpeg({ quality: 90 })
      .toBuffer();
    const photo = await decodePhoto(bytes);
    expect([photo.detect.width, photo.detect.height]).toEqual([1600, 384]);
    // the contract: 2×2 block means while at least twice the copy (5000 → 2500 → 1250 is too
    // small, so once), then the area average
    expect(halvingsBefore(5000, 1200, { width: 1600, height: 384 })).toBe(1);
    const full = await sharp(bytes).raw().toBuffer();
    const halved = reduceByBlocks({ data: full, width: 5000, height: 1200 }, 2);
    const want = resizeArea(halved, 1600, 384);
    expect(Buffer.compare(photo.detect.data, want)).toBe(0);
    photo.release();
  });

  it('halves an EXIF-rotated photo of odd size after orienting it, dropping the partial block', async () => {
    // stored 1201×3403, shown (orientation 6: rotated 90°) as 3403×1201; detection copy 1600×565
    const bytes = await sharp(path.join(examplesDir, 'faceapi-groups/bbt3.jpg'))
      .resize(1201, 3403, { fit: 'fill' })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 92 })
      .toBuffer();
    const photo = await decodePhoto(bytes);
    expect([photo.width, photo.height]).toEqual([3403, 1201]);
    expect([photo.detect.width, photo.detect.height]).toEqual([1600, 565]);
    const shown = await sharp(bytes).rotate().raw().toBuffer();
    const halved = reduceByBlocks({ data: shown, width: 3403, height: 1201 }, 2);
    expect([halved.width, halved.height]).toEqual([1701, 600]);
    expect(Buffer.compare(photo.detect.data, resizeArea(halved, 1600, 565))).toBe(0);
    photo.release();
  });

  it('halves twice or more a photo four times the detection size', () => {
    expect(halvingsBefore(6401, 3000, { width: 1600, height: 750 })).toBe(2);
    expect(halvingsBefore(3199, 2000, { width: 1600, height: 1000 })).toBe(0);
    expect(halvingsBefore(13000, 9000, { width: 1600, height: 1108 })).toBe(3);
  });

  it('gives the reservation back when the pixels cannot be decoded', async () => {
    const good = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer();
    const truncated = good.subarray(0, Math.floor(good.length / 2));
    let released = 0;
    await expect(decodePhoto(truncated, {}, async () => () => released++)).rejects.toMatchObject({
      code: 'CORRUPT_IMAGE',
    });
    expect(released).toBe(1);
  });
});

describe('colour: an embedded ICC profile is converted to sRGB (the contract)', () => {
  it('decodes an Adobe RGB (1998) photo to the sRGB colours it stands for, not its stored numbers', async () => {
    // bbt5.jpg carries Adobe RGB (1998); a flat sRGB colour written with that profile stores other
    // numbers (converted into Adobe RGB) that the decode must convert back
    const adobe = (await sharp(path.join(examplesDir, 'faceapi-groups/bbt5.jpg')).metadata()).icc!;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-icc-'));
    try {
      const profile = path.join(dir, 'adobe-rgb-1998.icc');
      writeFileSync(profile, adobe);
      const srgb = [200, 60, 40];
      const bytes = await sharp({
        create: { width: 64, height: 48, channels: 3, background: { r: srgb[0]!, g: srgb[1]!, b: srgb[2]! } },
      })
        .withIccProfile(profile)
        .png()
        .toBuffer();
      expect((await sharp(bytes).metadata()).hasProfile).toBe(true);
      const stored = await sharp(bytes, { ignoreIcc: true }).raw().toBuffer();
      const photo = await decodePhoto(bytes);
      const decoded = Array.from(photo.detect.data.subarray(0, 3));
      const storedPixel = Array.from(stored.subarray(0, 3));
      expect(Math.max(...storedPixel.map((v, c) => Math.abs(v - srgb[c]!)))).toBeGreaterThan(10);
      expect(Math.max(...decoded.map((v, c) => Math.abs(v - srgb[c]!)))).toBeLessThanOrEqual(2);
      photo.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
