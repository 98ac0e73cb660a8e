import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { examplesDir, pixelBombPng, repoRoot } from '../pipeline/testFixtures.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-analyze-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function facepipe(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/facepipe.mjs'), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const lines = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, lines, stderr: r.stderr };
}

beforeAll(async () => {
  const jpeg = readFileSync(path.join(examplesDir, 'faceapi-groups/bbt3.jpg'));
  writeFileSync(path.join(tmp, 'a-zero.jpg'), Buffer.alloc(0));
  writeFileSync(path.join(tmp, 'b-truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  writeFileSync(path.join(tmp, 'c-text.jpg'), 'not an image\n');
  writeFileSync(path.join(tmp, 'd-bomb.png'), pixelBombPng(30000, 30000));
  await sharp({ create: { width: 320, height: 240, channels: 3, background: '#5a8cc8' } })
    .jpeg()
    .toFile(path.join(tmp, 'e-noface.jpg'));
  copyFileSync(path.join(examplesDir, 'faceapi-groups/bbt3.jpg'), path.join(tmp, 'f-good.jpg'));
  writeFileSync(path.join(tmp, 'notes.txt'), 'not an image extension: skipped when walking a directory');
});

describe('facepipe analyze', () => {
  it('writes one line per face and one error line per bad photo, carries on, exits 0', () => {
    const { status, lines } = facepipe('analyze', tmp, '--embeddings');
    expect(status).toBe(0);
    const errors = Object.fromEntries(
      lines
        .filter((l) => 'error' in l)
        .map((l) => [path.basename(l.photo as string), (l.error as { code: string }).code]),
    );
    expect(errors).toEqual({
      'a-zero.jpg': 'EMPTY_FILE',
      'b-truncated.jpg': 'CORRUPT_IMAGE',
      'c-text.jpg': 'NOT_AN_IMAGE',
      'd-bomb.png': 'PIXEL_LIMIT',
    });
    const faces = lines.filter((l) => !('error' in l));
    expect(faces.map((l) => path.basename(l.photo as string))).toEqual(Array(5).fill('f-good.jpg'));
    expect(faces.map((l) => l.face)).toEqual([0, 1, 2, 3, 4]);
    for (const f of faces) {
      expect(Object.keys(f).sort()).toEqual(
        ['bbox', 'embedding', 'face', 'kept', 'landmarks', 'magnitude', 'photo', 'quality', 'score'].sort(),
      );
      expect(f.landmarks).toHaveLength(5);
      expect(f.embedding).toHaveLength(192);
    }
  });

  it('omits embeddings by default, exits 1 when nothing could be processed and 2 on bad models', () => {
    const good = facepipe('analyze', path.join(tmp, 'f-good.jpg'));
    expect(good.status).toBe(0);
    expect(good.lines).toHaveLength(5);
    expect(good.lines.every((l) => !('embedding' in l))).toBe(true);
    const bad = facepipe('analyze', path.join(tmp, 'a-zero.jpg'), path.join(tmp, 'c-text.jpg'));
    expect(bad.status).toBe(1);
    expect(bad.lines).toHaveLength(2);
    const models = facepipe('analyze', '--models', path.join(tmp, 'no-models'), path.join(tmp, 'f-good.jpg'));
    expect(models.status).toBe(2);
    expect(models.stderr).toContain('models folder not found');
  });
});
