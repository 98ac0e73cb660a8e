import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodePhoto, pixelFootprint } from './decode.ts';
import { examplesDir } from './testFixtures.ts';

describe('decoding a photo larger than the detection size', () => {
  it('decodes the detection copy only, and reads full-resolution regions equal to a full decode', async () => {
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
