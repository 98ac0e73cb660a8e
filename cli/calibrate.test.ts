import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { register, type CalibrationReport } from './models.ts';
import { loadManifest } from '../pipeline/models.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { runEmbedded } from '../app/run.ts';

/**
 * Calibration round trip on a small labelled set made here: the face-api crops (8 people × 5)
 * copied into a temporary folder, the bundled models copied beside it. `models calibrate --write`
 * fits the clustering operating point and writes it into that manifest; the next `run` with that
 * models folder reads it back and groups the photos with it.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let work: string;
let photos: string;
let models: string;
let report: CalibrationReport;

async function facepipe(args: string[]): Promise<string> {
  const program = new Command('facepipe').exitOverride();
  register(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    spy.mockRestore();
  }
  return out;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'facepipe-calibrate-'));
  photos = path.join(work, 'people');
  models = path.join(work, 'models');
  cpSync(path.join(repoRoot, 'examples', 'faceapi-crops'), photos, { recursive: true });
  cpSync(path.join(repoRoot, 'models'), models, { recursive: true });
  const out = await facepipe([
    'models',
    'calibrate',
    '--model',
    'mobilefacenet',
    '--photos',
    photos,
    '--models',
    models,
    '--write',
    '--json',
  ]);
  report = JSON.parse(out) as CalibrationReport;
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('models calibrate --write, then run', () => {
  it('fits the clustering operating point on the labelled folder and reports it', () => {
    const c = report.clustering!;
    expect(c.folders).toEqual([photos]);
    expect(c.fit.settingsTried).toBeGreaterThan(1);
    expect(c.fit.meetsPrecisionFloor).toBe(true);
    expect(c.fit.perCollection).toHaveLength(1);
    expect(c.fit.perCollection[0]!.f).toBeGreaterThanOrEqual(0.9);
    expect(c.written).toBe(path.join(models, 'manifest.json'));
    // 40 easy crops: no face's nearest face is someone else, so there is nothing to fit a cue mapping on
    expect(c.quality.cues.errors).toBe(0);
    expect(c.quality.mapping).toBeNull();
  });

  it('writes the fitted values into the manifest, leaving the bundled one alone', () => {
    const written = JSON.parse(readFileSync(path.join(models, 'manifest.json'), 'utf8')) as {
      models: { name: string; clustering?: Record<string, number>; clusteringCalibration?: unknown }[];
    };
    const entry = written.models.find((m) => m.name === 'mobilefacenet')!;
    expect(entry.clustering).toEqual(report.clustering!.fit.params);
    expect(entry.clusteringCalibration).toMatchObject({ folders: ['people'] });
    const bundled = readFileSync(path.join(repoRoot, 'models', 'manifest.json'), 'utf8');
    expect(bundled).not.toContain(photos);
  });

  it('the next run reads them from the manifest and groups the 8 people with them', async () => {
    const embedder = loadManifest(models).embedders[0]!;
    const params = clusterParamsFromManifest(embedder);
    expect(params).toMatchObject(report.clustering!.fit.params);
    const summary = await runEmbedded({
      dir: photos,
      dataDir: path.join(work, 'data'),
      modelsDir: models,
      progress: false,
      exportCsv: path.join(work, 'people.csv'),
    });
    expect(summary.identities).toBe(8);
    const rows = readFileSync(path.join(work, 'people.csv'), 'utf8').trim().split('\n').slice(1);
    const byPerson = new Map<string, Set<string>>();
    for (const row of rows) {
      const [photo, , identity] = row.split(',');
      const person = path.basename(path.dirname(photo!));
      byPerson.set(person, (byPerson.get(person) ?? new Set()).add(identity!));
    }
    expect(byPerson.size).toBe(8);
    for (const ids of byPerson.values()) expect(ids.size).toBe(1);
  }, 120_000);
});
