import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openFaceDatabase } from '../../indexers/database.ts';
import { recordingLogger, rng } from '../../indexers/testUtil.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CRASH_DIM = 64;
const CRASH_MODEL = 'crash-model';
const RUNS = 20;
const BATCHES = 25;

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-crash-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/**
 * Runs the child and SIGKILLs it: either while it starts up (recovering the previous run's
 * state), or right after it reports batch `killAfterBatch` (mid-transaction or mid-checkpoint).
 */
function runAndKill(
  run: number,
  plan: { startupDelayMs?: number; killAfterBatch?: number; extraDelayMs: number },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['bin/run-ts.mjs', 'test/indexers/crashChild.ts', dataDir, String(run), String(BATCHES)],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    let killed = false;
    const kill = (): void => {
      if (killed) return;
      killed = true;
      setTimeout(() => child.kill('SIGKILL'), plan.extraDelayMs);
    };
    if (plan.startupDelayMs !== undefined) setTimeout(kill, plan.startupDelayMs);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (plan.killAfterBatch !== undefined && out.includes(`batch ${plan.killAfterBatch}\n`)) kill();
      if (out.includes('done\n')) kill();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited by itself (${code}): ${err}`));
      else resolve(out.trim().split('\n').pop() ?? '(nothing)');
    });
  });
}

describe('index and store agree after SIGKILL at random points (real processes)', () => {
  it(`survives ${RUNS} kills`, async () => {
    const rand = rng(42);
    const lastLines: string[] = [];
    const recoveries: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const duringStartup = rand() < 0.15;
      const plan = duringStartup
        ? { startupDelayMs: 300 + Math.floor(rand() * 900), extraDelayMs: 0 }
        : { killAfterBatch: Math.floor(rand() * BATCHES), extraDelayMs: Math.floor(rand() * 4) };
      lastLines.push(await runAndKill(run, plan));

      const db = openFaceDatabase(dataDir, {
        modelId: CRASH_MODEL,
        dim: CRASH_DIM,
        log: recordingLogger(),
      });
      recoveries.push(db.recovery.action);
      try {
        const kept = db.listFaces({ kept: true });
        // same face id set: an exhaustive search returns exactly the stored kept faces
        const all = kept.length > 0 ? db.search(kept[0].embedding, kept.length + 5) : [];
        expect(new Set(all.map((h) => h.faceId))).toEqual(new Set(kept.map((f) => f.faceId)));
        expect(db.size()).toBe(kept.length);
        // every stored kept face is found by its own vector as top-1
        const misses = kept
          .filter((f) => db.search(f.embedding, 1)[0]?.faceId !== f.faceId)
          .map((f) => f.faceId);
        expect(misses).toEqual([]);
        // no dropped face is ever searchable
        for (const f of db.listFaces({ kept: false }).slice(0, 20)) {
          expect(db.search(f.embedding, 3).some((h) => h.faceId === f.faceId)).toBe(false);
        }
        expect(db.verify()).toMatchObject({ ok: true, missing: 0, extra: 0 });
      } finally {
        // half the time leave without a checkpoint, so the next child must replay
        db.close({ checkpoint: rand() < 0.5 });
      }
    }
    // the kills landed at different points of the work
    expect(new Set(lastLines).size).toBeGreaterThan(5);
    // and recovery had to replay changes made after the last checkpoint
    expect(recoveries).toContain('replayed');
  }, 240_000);
});
