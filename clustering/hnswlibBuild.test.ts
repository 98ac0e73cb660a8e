import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseHnswlibBuild, loadHnswlib, TUNED_CPU_FLAGS } from './hnswlibBuild.mjs';

const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-hnswlib-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const capable = { arch: 'x64', cpuFlags: ['sse4_2', ...TUNED_CPU_FLAGS], tunedExists: true, portable: false };

/** the nearest neighbour of each of three points, with a loaded addon */
function nearest(lib: ReturnType<typeof loadHnswlib>['lib']): number[] {
  const index = new lib.HierarchicalNSW('ip', 4);
  index.initIndex(3, 16, 64, 1);
  const points = [
    [1, 0, 0, 0],
    [0.6, 0.8, 0, 0],
    [0, 0, 1, 0],
  ];
  points.forEach((p, i) => index.addPoint(p, i));
  return points.map((p) => index.searchKnn(p, 1).neighbors[0]!);
}

describe('which hnswlib build the kNN workers load', () => {
  it('takes the x86-64-v3 build only when it exists, the CPU runs it and nobody asked for the portable one', () => {
    expect(chooseHnswlibBuild(capable).build).toBe('x86-64-v3');
    expect(chooseHnswlibBuild({ ...capable, portable: true })).toEqual({
      build: 'portable',
      reason: 'portable build asked for',
    });
    expect(chooseHnswlibBuild({ ...capable, arch: 'arm64' })).toMatchObject({ build: 'portable' });
    expect(chooseHnswlibBuild({ ...capable, tunedExists: false })).toEqual({
      build: 'portable',
      reason: 'x86-64-v3 build missing',
    });
    // a CPU without AVX2 (an older x86-64, or a VM that hides it)
    expect(chooseHnswlibBuild({ ...capable, cpuFlags: ['sse4_2', 'fma', 'bmi2'] })).toEqual({
      build: 'portable',
      reason: 'CPU lacks avx2',
    });
    expect(chooseHnswlibBuild({ ...capable, cpuFlags: [] }).reason).toBe('CPU lacks avx2, fma, bmi2');
  });

  it('falls back to the working portable build when the tuned binary is missing', () => {
    const loaded = loadHnswlib({ tunedPath: path.join(dir, 'no-such-addon.node') });
    expect(loaded.build).toBe('portable');
    expect(loaded.reason).toMatch(/missing|not an x86-64|CPU lacks/);
    expect(nearest(loaded.lib)).toEqual([0, 1, 2]);
  });

  it('falls back to the portable build when the tuned binary does not load (a broken file)', () => {
    const broken = path.join(dir, 'broken.node');
    writeFileSync(broken, 'not a shared object');
    const loaded = loadHnswlib({ tunedPath: broken });
    expect(loaded.build).toBe('portable');
    expect(loaded.reason).toMatch(/does not load|not an x86-64|CPU lacks/);
    expect(nearest(loaded.lib)).toEqual([0, 1, 2]);
  });

  it('a forced portable load is the npm build even where the tuned one would be taken', () => {
    const loaded = loadHnswlib({ portable: true });
    expect(loaded).toMatchObject({ build: 'portable', reason: 'portable build asked for' });
    expect(nearest(loaded.lib)).toEqual([0, 1, 2]);
  });
});
