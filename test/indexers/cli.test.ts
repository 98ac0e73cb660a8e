import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { register } from '../../cli/index.ts';
import { loadConfig } from '../../app/config.ts';
import { readSidecar } from '../../indexers/checkpoint.ts';
import { openFaceDatabase } from '../../indexers/database.ts';
import { faceRecord, randomFeature, recordingLogger, rng, tempDataDir } from '../../indexers/testUtil.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  process.exitCode = 0;
  vi.restoreAllMocks();
});

function seededDir(n = 50): string {
  const dir = tempDataDir('facepipe-cli-');
  dirs.push(dir);
  const db = openFaceDatabase(dir, {
    modelId: 'cli-model',
    dim: 16,
    log: recordingLogger(),
  });
  const r = rng(2);
  db.upsertFaces(
    Array.from({ length: n }, (_, i) =>
      faceRecord(`p${i}`, 0, randomFeature(r, 16), 'cli-model', i % 5 !== 0),
    ),
  );
  db.close();
  return dir;
}

/** Runs `facepipe index ...` in-process; returns what it printed on stdout and the exit code. */
async function facepipeIndex(args: string[]): Promise<{ stdout: string; exitCode: number }> {
  let stdout = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const program = new Command('facepipe').exitOverride();
  register(program, loadConfig({}));
  process.exitCode = 0;
  await program.parseAsync(['node', 'facepipe', 'index', ...args]);
  vi.restoreAllMocks();
  return { stdout, exitCode: Number(process.exitCode ?? 0) };
}

describe('facepipe index', () => {
  it('verify --json prints one object comparing store and index', async () => {
    const dir = seededDir();
    const { stdout, exitCode } = await facepipeIndex(['verify', '--data', dir, '--json']);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({
      store: 40,
      indexed: 40,
      missing: 0,
      extra: 0,
      ok: true,
      modelId: 'cli-model',
      dim: 16,
    });
    expect(report.indexPath).toBe(path.join(dir, readSidecar(dir)!.file));
    expect(exitCode).toBe(0);
  });

  it('verify recovers a damaged index first, and says so', async () => {
    const dir = seededDir();
    writeFileSync(path.join(dir, readSidecar(dir)!.file), 'garbage');
    const { stdout, exitCode } = await facepipeIndex(['verify', '--data', dir, '--json']);
    const report = JSON.parse(stdout);
    expect(report.recovery.action).toBe('rebuilt');
    expect(report.recovery.reason).toMatch(/truncated/);
    expect(report.ok).toBe(true);
    expect(exitCode).toBe(0);
  });

  it('rebuild rebuilds from the store and checkpoints', async () => {
    const dir = seededDir();
    const before = readSidecar(dir)!.file;
    const { stdout, exitCode } = await facepipeIndex(['rebuild', '--data', dir]);
    expect(JSON.parse(stdout)).toMatchObject({ rebuilt: true, indexed: 40, ok: true });
    expect(readSidecar(dir)!.file).not.toBe(before);
    expect(exitCode).toBe(0);
  });

  it('exits 2 when the data dir holds no store', async () => {
    const dir = tempDataDir('facepipe-cli-empty-');
    dirs.push(dir);
    const { stdout, exitCode } = await facepipeIndex(['verify', '--data', dir, '--json']);
    expect(stdout).toBe('');
    expect(exitCode).toBe(2);
  });
});
