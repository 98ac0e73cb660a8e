import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../clustering/npy.ts';
import { formatAssignments } from '../clustering/csv.ts';
import { modelsDir, referenceCrops, repoRoot } from '../clustering/testUtil.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-cluster-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function facepipe(args: string[]): string {
  return execFileSync(process.execPath, [path.join(repoRoot, 'bin', 'facepipe.mjs'), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, FACEPIPE_MODELS: modelsDir, FACEPIPE_LOG_LEVEL: 'warn' },
  });
}

describe('facepipe cluster / eval', () => {
  const crops = referenceCrops([40, 90]);
  const emb = path.join(dir, 'crops.npy');
  const ids = path.join(dir, 'ids.txt');
  const truth = path.join(dir, 'truth.csv');
  writeNpy(emb, {
    rows: crops.raw.length,
    cols: crops.raw[0].length,
    data: Float32Array.from(crops.raw.flat()),
  });
  const names = crops.faces.map((f) => f.id);
  writeFileSync(ids, names.join('\n') + '\n');
  writeFileSync(truth, formatAssignments(names, crops.truth));

  it('clusters the real crops into their 8 identities and evaluates the result', () => {
    const out = path.join(dir, 'quality.csv');
    const summary = JSON.parse(facepipe(['cluster', '--embeddings', emb, '--ids', ids, '--out', out]));
    expect(summary).toMatchObject({ method: 'quality', faces: 40, dim: 192, clusters: 8 });
    const csv = readFileSync(out, 'utf8').trim().split('\n');
    expect(csv[0]).toBe('id,cluster');
    expect(csv.length).toBe(41);
    const metrics = JSON.parse(facepipe(['eval', '--truth', truth, '--pred', out]));
    expect(Object.keys(metrics)).toEqual(['pairwise', 'bcubed', 'nmi', 'clusters', 'unassigned', 'scoring']);
    expect(metrics.scoring).toMatchObject({ unit: 'id', scored: 40, missingFromPrediction: 0 });
    expect(metrics.bcubed.f).toBeGreaterThanOrEqual(0.9);
    expect(metrics.clusters).toBe(8);
  });

  it('runs a baseline and honours --min-magnitude (dropped faces get an empty cluster)', () => {
    const out = path.join(dir, 'single.csv');
    const summary = JSON.parse(
      facepipe(['cluster', '--embeddings', emb, '--out', out, '--method', 'single', '--min-magnitude', '60']),
    );
    expect(summary.method).toBe('single');
    expect(summary.dropped).toBe(crops.faces.filter((f) => f.magnitude < 60).length);
    const rows = readFileSync(out, 'utf8').trim().split('\n').slice(1);
    const lows = crops.faces.map((f, i) => (f.magnitude < 60 ? i : -1)).filter((i) => i >= 0);
    for (const i of lows) expect(rows[i]).toBe(`${i},`);
  });

  it('takes its parameters from --params FILE.json over the manifest, and names a wrong one in one line', () => {
    const out = path.join(dir, 'params.csv');
    const strict = path.join(dir, 'strict.json');
    // a link threshold no two faces reach: nobody is linked, every kept face is unassigned
    writeFileSync(
      strict,
      JSON.stringify({ linkThreshold: 0.999, mergeThreshold: 0.999, attachThreshold: 0.999 }),
    );
    const summary = JSON.parse(facepipe(['cluster', '--embeddings', emb, '--out', out, '--params', strict]));
    expect(summary).toMatchObject({ clusters: 0, assigned: 0 });
    expect(summary.knn).toMatchObject({ k: 16, M: 16, efConstruction: 64 });
    expect(['kernel', 'shards']).toContain(summary.knn.engine);
    for (const [body, message] of [
      ['{"linkThreshhold": 0.4}', /unknown parameter "linkThreshhold"/],
      ['{"k": "16"}', /"k" must be a finite number/],
      ['{"qualityRange": [40]}', /"qualityRange" must be an array of 2 numbers/],
      ['[0.4]', /expected a JSON object/],
      ['{', /not JSON/],
    ] as const) {
      const bad = path.join(dir, 'bad.json');
      writeFileSync(bad, body);
      const r = spawnSync(
        process.execPath,
        [
          path.join(repoRoot, 'bin', 'facepipe.mjs'),
          'cluster',
          '--embeddings',
          emb,
          '--out',
          out,
          '--params',
          bad,
        ],
        {
          cwd: repoRoot,
          encoding: 'utf8',
          env: { ...process.env, FACEPIPE_MODELS: modelsDir, FACEPIPE_LOG_LEVEL: 'silent' },
        },
      );
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});
