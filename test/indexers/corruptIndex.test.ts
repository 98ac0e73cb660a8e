/**
 * Index files that are wrong inside but whose checksum matches the sidecar (a checkpoint written
 * by a bug, crafted, or damaged before the checksum was taken). hnswlib trusts such a file and
 * used to crash the process (SIGSEGV) on every command, `index rebuild` included. Each command
 * runs as a real child process here, so a crash would show as a signal, not take the test down.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileChecksum, readSidecar, SIDECAR_FILE } from '../../indexers/checkpoint.ts';
import { openFaceDatabase } from '../../indexers/database.ts';
import { hnswFileProblem, readHnswHeader } from '../../indexers/hnswFile.ts';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { faceRecord, randomFeature, recordingLogger, rng, tempDataDir } from '../../indexers/testUtil.ts';
import { repoRoot } from '../e2e/helpers.ts';

const DIM = 16;
const FACES = 400;
const dirs: string[] = [];
let seeded: string;

beforeAll(() => {
  seeded = tempDataDir('facepipe-corrupt-index-');
  dirs.push(seeded);
  const db = openFaceDatabase(seeded, { modelId: 'm', dim: DIM, log: recordingLogger() });
  const r = rng(7);
  db.upsertFaces(Array.from({ length: FACES }, (_, i) => faceRecord(`p${i}`, 0, randomFeature(r, DIM), 'm')));
  db.close();
});

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A copy of the seeded data dir whose index file `edit` changed, the sidecar updated to match. */
function craftedDir(edit: (bytes: Buffer) => Buffer): string {
  const dir = tempDataDir('facepipe-crafted-');
  dirs.push(dir);
  cpSync(seeded, dir, { recursive: true });
  const sidecar = readSidecar(dir)!;
  const file = path.join(dir, sidecar.file);
  writeFileSync(file, edit(readFileSync(file)));
  const bytes = readFileSync(file).length;
  writeFileSync(
    path.join(dir, SIDECAR_FILE),
    JSON.stringify({ ...sidecar, bytes, checksum: fileChecksum(file) }, null, 2),
  );
  return dir;
}

function facepipe(args: string[]): {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
} {
  const r = spawnSync(process.execPath, ['bin/facepipe.mjs', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' },
    timeout: 120_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function storeFaces(dir: string): number {
  const store = new FaceStore(path.join(dir, STORE_FILE), { create: false, readonly: true });
  try {
    return store.counts().faces;
  } finally {
    store.close();
  }
}

const header = (b: Buffer) => readHnswHeader(b.subarray(0, 96));
/** offset of element i's level-0 record */
const level0 = (b: Buffer, i: number) => 96 + i * header(b).sizeDataPerElement;

const CORRUPTIONS: Record<string, (b: Buffer) => Buffer> = {
  'element count beyond the file': (b) => {
    b.writeBigUInt64LE(BigInt(header(b).count * 50), 16);
    b.writeBigUInt64LE(BigInt(header(b).count * 50), 8);
    return b;
  },
  'entry point outside the elements': (b) => {
    b.writeUInt32LE(header(b).count + 1000, 52);
    return b;
  },
  'top level above any element': (b) => {
    b.writeInt32LE(header(b).maxLevel + 5, 48);
    return b;
  },
  'a level-0 link to an element that does not exist': (b) => {
    const at = level0(b, 3);
    b.writeUInt16LE(Math.max(1, b.readUInt16LE(at)), at);
    b.writeUInt32LE(0x7fffffff, at + 4);
    return b;
  },
  'a level-0 link count above the degree': (b) => {
    b.writeUInt16LE(60_000, level0(b, 5));
    return b;
  },
  'element size that does not match the dimension': (b) => {
    b.writeBigUInt64LE(BigInt(header(b).sizeDataPerElement + 4), 24);
    return b;
  },
  'truncated link section': (b) => b.subarray(0, b.length - 7),
};

describe('a corrupt index file with a matching checksum', () => {
  it('the seeded checkpoint itself passes the structural check', () => {
    const sidecar = readSidecar(seeded)!;
    expect(header(readFileSync(path.join(seeded, sidecar.file))).maxLevel).toBeGreaterThan(0);
    expect(hnswFileProblem(path.join(seeded, sidecar.file), { dim: DIM, M: sidecar.M })).toBeNull();
  });

  for (const [name, edit] of Object.entries(CORRUPTIONS)) {
    it(`${name}: refused before hnswlib reads it; verify rebuilds from the store`, () => {
      const dir = craftedDir(edit);
      const sidecar = readSidecar(dir)!;
      expect(hnswFileProblem(path.join(dir, sidecar.file), { dim: DIM, M: sidecar.M })).not.toBeNull();
      const verify = facepipe(['index', 'verify', '--data', dir, '--json']);
      expect(verify.signal).toBeNull();
      expect(verify.status, verify.stderr).toBe(0);
      const report = JSON.parse(verify.stdout);
      expect(report.recovery.action).toBe('rebuilt');
      expect(report).toMatchObject({ ok: true, store: FACES, indexed: FACES, missing: 0, extra: 0 });
      expect(storeFaces(dir)).toBe(FACES);
    });
  }

  it('index rebuild never reads the old file, whatever is in it', () => {
    const dir = craftedDir((b) => CORRUPTIONS['a level-0 link to an element that does not exist']!(b));
    const rebuild = facepipe(['index', 'rebuild', '--data', dir]);
    expect(rebuild.signal).toBeNull();
    expect(rebuild.status, rebuild.stderr).toBe(0);
    expect(JSON.parse(rebuild.stdout)).toMatchObject({ rebuilt: true, ok: true, indexed: FACES });
    // the new checkpoint is sound: the next command loads it as it is
    const verify = JSON.parse(facepipe(['index', 'verify', '--data', dir, '--json']).stdout);
    expect(verify.recovery.action).toBe('loaded');
    expect(verify.ok).toBe(true);
  });
});
