import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

/** Test helpers: where the bundled photos, models and reference outputs are, and hand-made bad inputs. */

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** the sample photos (face-api.js crops and group photos) the quick start runs on */
export const examplesDir = path.join(repoRoot, 'examples');
/** test-only fixtures: MagFace toy images and the reference outputs (`reference/*.json`) */
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
/** the default models that ship with facepipe */
export const modelsDir = path.join(repoRoot, 'models');

export interface CropFixture {
  file: string;
  /** path relative to examplesDir, as in reference/*.json */
  rel: string;
  identity: string;
}

export function cropFixtures(): CropFixture[] {
  const root = path.join(examplesDir, 'faceapi-crops');
  return readdirSync(root)
    .sort()
    .flatMap((identity) =>
      readdirSync(path.join(root, identity))
        .filter((f) => f.endsWith('.png'))
        .sort()
        .map((f) => ({
          file: path.join(root, identity, f),
          rel: `faceapi-crops/${identity}/${f}`,
          identity,
        })),
    );
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * A decompression bomb: a valid PNG header declaring width×height 8-bit RGB pixels followed by a
 * tiny IDAT — only the header is real, nothing of that size is ever allocated.
 */
export function pixelBombPng(width = 30000, height = 30000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
