import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodePhoto } from './decode.ts';
import { AnalyzeError } from './errors.ts';
import { sniffImageFormat } from './imageSignature.ts';
import { examplesDir, pixelBombPng } from './testFixtures.ts';

/** The error code a decode ends with, or 'ok' with the decoded size. */
async function outcomeOf(bytes: Buffer): Promise<string> {
  try {
    const d = await decodePhoto(bytes);
    return `ok ${d.width}x${d.height}`;
  } catch (err) {
    if (!(err instanceof AnalyzeError)) throw err;
    return err.code;
  }
}

describe('image signatures', () => {
  it('names each accepted format from its leading bytes and nothing else', async () => {
    const rgb = { create: { width: 8, height: 8, channels: 3 as const, background: '#468' } };
    expect(sniffImageFormat(await sharp(rgb).jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImageFormat(await sharp(rgb).png().toBuffer())).toBe('png');
    expect(sniffImageFormat(await sharp(rgb).webp().toBuffer())).toBe('webp');
    expect(sniffImageFormat(await sharp(rgb).gif().toBuffer())).toBe('gif');
    expect(sniffImageFormat(await sharp(rgb).tiff().toBuffer())).toBe('tiff');
    expect(sniffImageFormat(await sharp(rgb).avif().toBuffer())).toBe('avif');
    for (const text of [
      '<svg xmlns="http://www.w3.org/2000/svg"/>',
      '%PDF-1.7',
      'GIF8',
      'RIFF....WAVE',
      '',
    ]) {
      expect(sniffImageFormat(Buffer.from(text))).toBeUndefined();
    }
  });
});

describe('bad input codes are decided by the bytes, not by decoder messages', () => {
  const inputs: Record<string, Buffer> = {};
  const expected: Record<string, string> = {};

  beforeAll(async () => {
    const jpeg = readFileSync(path.join(examplesDir, 'faceapi-groups/bbt3.jpg'));
    const png = readFileSync(path.join(examplesDir, 'faceapi-crops/amy/1.png'));
    const webp = await sharp(jpeg).webp().toBuffer();
    Object.assign(inputs, {
      'zero-byte': Buffer.alloc(0),
      'truncated-jpeg': jpeg.subarray(0, Math.floor(jpeg.length / 2)),
      'truncated-png': png.subarray(0, Math.floor(png.length / 2)),
      'jpeg-header-then-garbage': Buffer.concat([jpeg.subarray(0, 200), Buffer.alloc(4000, 0x5a)]),
      text: Buffer.from('this is not an image, only text named photo.jpg\n'),
      svg: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'),
      html: Buffer.from('<!doctype html><title>photo</title>'),
      bomb: pixelBombPng(30000, 30000),
      'good-jpeg': jpeg,
      'good-png': png,
      'good-webp': webp,
    });
    Object.assign(expected, {
      'zero-byte': 'EMPTY_FILE',
      'truncated-jpeg': 'CORRUPT_IMAGE',
      'truncated-png': 'CORRUPT_IMAGE',
      'jpeg-header-then-garbage': 'CORRUPT_IMAGE',
      text: 'NOT_AN_IMAGE',
      svg: 'NOT_AN_IMAGE',
      html: 'NOT_AN_IMAGE',
      bomb: 'PIXEL_LIMIT',
      'good-jpeg': 'ok 1200x800',
      'good-png': 'ok 150x150',
      'good-webp': 'ok 1200x800',
    });
    const meta = await sharp(jpeg).metadata();
    expected['good-jpeg'] = expected['good-webp'] = `ok ${meta.width}x${meta.height}`;
  });

  it('gives the same code to every input in 50 concurrent mixed batches', async () => {
    const names = Object.keys(inputs);
    for (let round = 0; round < 50; round++) {
      // every round decodes the whole mix at once, in a different order, so decoder errors of
      // one input are raised while others are being decoded on the other libvips threads
      const order = names.map((n, i) => names[(i * 7 + round) % names.length]!);
      const outcomes = await Promise.all(order.map((n) => outcomeOf(inputs[n]!)));
      expect(Object.fromEntries(order.map((n, i) => [n, outcomes[i]]))).toEqual(expected);
    }
  });
});
