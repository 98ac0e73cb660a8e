import { execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { examplesDir, repoRoot, runCli, type CliResult } from './helpers.ts';

// `facepipe` runs the programs compiled into dist/ (bin/build.mjs): built by npm ci, rebuilt when a
// source changes, and doing exactly what the TypeScript sources do.

/** the same command line run from the TypeScript sources through tsx, as before compiling */
function runFromSource(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/facepipe.mjs', ...args], {
      cwd: repoRoot,
      env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn', FACEPIPE_FROM_SOURCE: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The programs' sources (the files the repository's last build read), bin/ and the lock file,
 * copied with their modification times to a fresh folder, node_modules linked.
 */
function copyOfThePrograms(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-build-'));
  const inputs = JSON.parse(readFileSync(path.join(repoRoot, 'dist', 'inputs.json'), 'utf8')) as string[];
  for (const file of [...inputs, 'bin', 'package.json', 'package-lock.json']) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    cpSync(path.join(repoRoot, file), path.join(dir, file), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

describe('the compiled programs', () => {
  it('are built on first use and rebuilt when a source changed since', () => {
    // in a copy, so that the facepipe processes other tests start meanwhile see none of it
    expect(
      execFileSync(process.execPath, ['bin/facepipe.mjs', '--version'], { cwd: repoRoot, encoding: 'utf8' }),
    ).toMatch(/0\.1\.0/);
    const dir = copyOfThePrograms();
    try {
      const inCopy = (...args: string[]) =>
        execFileSync(process.execPath, args, {
          cwd: dir,
          encoding: 'utf8',
          env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' },
        });
      const stamp = () => readFileSync(path.join(dir, 'dist', 'sources.sha256'), 'utf8').trim();
      const fingerprint = () => inCopy('bin/build.mjs', '--fingerprint').trim();
      expect(existsSync(path.join(dir, 'dist'))).toBe(false);
      expect(inCopy('bin/facepipe.mjs', '--version').trim()).toBe('0.1.0');
      expect(stamp()).toBe(fingerprint());
      const built = statSync(path.join(dir, 'dist', 'facepipe.mjs')).mtimeMs;
      // a new modification time is a changed source to the build, with no change to the code
      const source = path.join(dir, 'core', 'paths.ts');
      const { atime, mtime } = statSync(source);
      utimesSync(source, atime, new Date(mtime.getTime() + 7_000));
      const changed = fingerprint();
      expect(stamp()).not.toBe(changed);
      expect(inCopy('bin/facepipe.mjs', '--version').trim()).toBe('0.1.0');
      expect(stamp()).toBe(changed);
      expect(statSync(path.join(dir, 'dist', 'facepipe.mjs')).mtimeMs).toBeGreaterThan(built);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('find the same faces and embeddings as the TypeScript sources', async () => {
    const photos = [
      path.join(examplesDir, 'faceapi-groups', 'bbt1.jpg'),
      path.join(examplesDir, 'faceapi-crops'),
    ];
    const compiled = await runCli(['analyze', '--embeddings', ...photos]);
    const fromSource = await runFromSource(['analyze', '--embeddings', ...photos]);
    expect(compiled.code, compiled.stderr).toBe(0);
    expect(fromSource.code, fromSource.stderr).toBe(0);
    const lines = compiled.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(40);
    expect(compiled.stdout).toBe(fromSource.stdout);
  }, 120_000);
});
