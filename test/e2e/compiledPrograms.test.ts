import { spawn } from 'node:child_process';
import { readFileSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { examplesDir, repoRoot, runCli, type CliResult } from './helpers.ts';

// `facepipe` runs the programs compiled into dist/ (bin/build.mjs): built by npm ci, rebuilt when a
// source changes, and doing exactly what the TypeScript sources do.
const stampFile = path.join(repoRoot, 'dist', 'sources.sha256');
const stamp = () => readFileSync(stampFile, 'utf8').trim();

/** the same command line run from the TypeScript sources through tsx, as before compiling */
function runFromSource(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['test/e2e/facepipeFromSource.mjs', ...args], {
      cwd: repoRoot,
      env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the compiled programs', () => {
  it('are rebuilt when a source changed since the last build', async () => {
    expect((await runCli(['--version'])).code).toBe(0);
    const before = stamp();
    const source = path.join(repoRoot, 'core', 'paths.ts');
    const { atime, mtime } = statSync(source);
    // a new modification time is a changed source to the build, with no change to the code
    utimesSync(source, atime, new Date(mtime.getTime() + 7_000));
    try {
      const r = await runCli(['--version']);
      expect(r.code, r.stderr).toBe(0);
      expect(stamp()).not.toBe(before);
      expect(statSync(path.join(repoRoot, 'dist', 'facepipe.mjs')).mtimeMs).toBeGreaterThan(mtime.getTime());
    } finally {
      utimesSync(source, atime, mtime);
    }
    // and the next start, back on the old sources, builds again rather than trusting the stamp
    expect((await runCli(['--version'])).code).toBe(0);
    expect(stamp()).toBe(before);
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
