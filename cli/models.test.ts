import { appendFileSync, copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadManifest } from '../pipeline/models.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { runEmbedded } from '../app/run.ts';
import {
  collectPhotos,
  describeNormalisation,
  errorRejectCurve,
  formatReport,
  magnitudeStats,
  register,
  runList,
  suggestDropThreshold,
  verificationErrors,
  type CalibrationReport,
  type LabelledFace,
} from './models.ts';
import { loadConfig } from '../app/config.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundledModels = path.join(repoRoot, 'models');
const crops = path.join(repoRoot, 'examples', 'faceapi-crops');

/** Runs `facepipe models ...` through commander, returning what it wrote to stdout. */
async function facepipe(args: string[]): Promise<string> {
  const program = new Command('facepipe').exitOverride();
  register(program, loadConfig({}));
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

afterEach(() => {
  process.exitCode = undefined;
});

describe('models list', () => {
  it('describes pixel normalisations readably', () => {
    expect(describeNormalisation({ scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] })).toBe('p/255');
    expect(describeNormalisation({ scale: 1, mean: [127.5, 127.5, 127.5], std: [128, 128, 128] })).toBe(
      '(p - 127.5)/128',
    );
    expect(describeNormalisation({ scale: 1, mean: [0, 0, 0], std: [1, 1, 1] })).toBe('p');
  });

  it('lists the bundled models with their contracts', async () => {
    const text = await facepipe(['models', 'list', '--models', bundledModels]);
    expect(text).toContain('yunet_n_dynamic  (detector, yunet_n_dynamic.onnx, 322906 bytes)');
    expect(text).toContain('any, padded to a multiple of 32, BGR, NCHW, value = p');
    expect(text).toContain('mobilefacenet  (embedder, mobilefacenet.onnx, 5247274 bytes)');
    expect(text).toContain('112x112 aligned, RGB, NCHW, value = (p - 127.5)/128');
    expect(text).toContain('192-d raw feature');
    expect(text).toContain('dropBelowMagnitude=40 magnitudeRange=[40, 90] sameIdentityCosine=0.42');
  });

  it('says where the models were found and checks each file against its sha256', async () => {
    const text = await facepipe(['models', 'list', '--models', bundledModels]);
    expect(text).toContain(`models in ${bundledModels} (from --models)`);
    expect(text).toContain(`file:        ${path.join(bundledModels, 'mobilefacenet.onnx')}`);
    expect(text).toContain(
      'sha256:      f4fd61e6c8f48929d299db40962012e96c82a672fb1fc5ebc2e4d852893ee3b7 ok',
    );
    let out = '';
    runList({}, (t) => (out += t)); // no option, no environment: the bundled models
    expect(JSON.stringify(out)).toContain('the models bundled with facepipe');
  });

  it('a model file that does not match its manifest sha256 is a clear error', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-sha-'));
    try {
      for (const f of ['manifest.json', 'yunet_n_dynamic.onnx', 'mobilefacenet.onnx'])
        copyFileSync(path.join(bundledModels, f), path.join(dir, f));
      appendFileSync(path.join(dir, 'yunet_n_dynamic.onnx'), 'tampered');
      let out = '';
      expect(() => runList({ models: dir }, (t) => (out += t))).toThrow(
        /yunet_n_dynamic: .*yunet_n_dynamic\.onnx does not match the sha256 in its manifest/,
      );
      expect(out).toContain('sha256:      MISMATCH');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has a JSON form', () => {
    let out = '';
    runList({ models: bundledModels, json: true }, (t) => (out += t));
    const parsed = JSON.parse(out) as { models: { name: string; dim?: number; colorOrder: string }[] };
    expect(parsed.models.map((m) => [m.name, m.dim, m.colorOrder])).toEqual([
      ['yunet_n_dynamic', undefined, 'BGR'],
      ['mobilefacenet', 192, 'RGB'],
    ]);
  });
});

// Hand-made faces: person A and B are clean and well apart; the two lowest-magnitude faces are
// blurred ones that look like the other person — exactly what the magnitude gate should remove.
function face(person: string, magnitude: number, angleDeg: number): LabelledFace {
  const a = (angleDeg * Math.PI) / 180;
  return { person, magnitude, unit: new Float32Array([Math.cos(a), Math.sin(a)]) };
}
const synthetic: LabelledFace[] = [
  face('A', 30, 0),
  face('A', 28, 5),
  face('A', 27, -5),
  face('A', 26, 3),
  face('A', 12, 85), // blurred A near B
  face('B', 29, 90),
  face('B', 28, 95),
  face('B', 27, 88),
  face('B', 25, 92),
  face('B', 11, 2), // blurred B near A
];

describe('calibration computations', () => {
  it('magnitude statistics and histogram cover every face', () => {
    const s = magnitudeStats(
      synthetic.map((f) => f.magnitude),
      4,
    );
    expect([s.count, s.min, s.max]).toEqual([10, 11, 30]);
    expect(s.median).toBe(27);
    expect(s.histogram.reduce((n, h) => n + h.count, 0)).toBe(10);
    expect(s.histogram[0]).toMatchObject({ from: 11, count: 2 });
  });

  it('counts verification errors at a threshold and finds the best threshold', () => {
    const r = verificationErrors(synthetic, 0.5);
    expect([r.samePairs, r.differentPairs]).toEqual([20, 25]);
    // each blurred face: 4 false non-matches with its own person, 4 false matches with the other
    expect(r.errorAtThreshold).toBeCloseTo(16 / 45);
    expect(r.bestError).toBeLessThanOrEqual(r.errorAtThreshold);
  });

  it('the error-versus-reject curve falls to zero once the two blurred faces are dropped', () => {
    const curve = errorRejectCurve(synthetic, 0.5, [0, 10, 20, 30]);
    expect(curve.map((p) => p.faces)).toEqual([10, 9, 8, 7]);
    expect(curve[0]!.errorAtThreshold).toBeGreaterThan(0);
    expect(curve[2]!.errorAtThreshold).toBe(0);
    expect(curve[2]!.dropBelowMagnitude).toBe(25);
    const s = suggestDropThreshold(magnitudeStats(synthetic.map((f) => f.magnitude)), curve, 20);
    expect(s.dropBelowMagnitude).toBe(25);
    expect(s.basis).toContain('lowest 20%');
  });

  it('without labels the suggestion is the 5th percentile', () => {
    const stats = magnitudeStats(synthetic.map((f) => f.magnitude));
    expect(suggestDropThreshold(stats, null, 20)).toMatchObject({ dropBelowMagnitude: stats.p05 });
  });

  it('recognises a folder with one sub-folder per person', () => {
    const c = collectPhotos(crops);
    expect(c.labelled).toBe(true);
    expect(c.photos).toHaveLength(40);
    expect(new Set(c.photos.map((p) => p.person)).size).toBe(8);
    const flat = collectPhotos(path.join(crops, 'amy'));
    expect([flat.labelled, flat.photos.length]).toEqual([false, 5]);
  });
});

/** `facepipe models calibrate --model mobilefacenet --json` on these photos with these models. */
async function calibrate(photos: string, models: string, extra: string[] = []): Promise<CalibrationReport> {
  const out = await facepipe([
    'models',
    'calibrate',
    '--model',
    'mobilefacenet',
    '--photos',
    photos,
    '--models',
    models,
    ...extra,
    '--json',
  ]);
  return JSON.parse(out) as CalibrationReport;
}

describe('models calibrate on the face-api crops (MobileFaceNet)', () => {
  let report: CalibrationReport;
  beforeAll(async () => {
    report = await calibrate(crops, bundledModels);
  });

  it('reports the magnitude distribution of the 40 faces (maintainers: min 46.5, median 66.0, max 84.7)', () => {
    expect([report.photos, report.faces, report.people, report.labelled]).toEqual([40, 40, 8, true]);
    const s = report.magnitude;
    expect(s.min).toBeGreaterThan(44);
    expect(s.min).toBeLessThan(49);
    expect(s.median).toBeGreaterThan(63.5);
    expect(s.median).toBeLessThan(68.5);
    expect(s.max).toBeGreaterThan(82);
    expect(s.max).toBeLessThan(87);
    expect(s.min <= s.p05 && s.p05 <= s.median && s.median <= s.p95 && s.p95 <= s.max).toBe(true);
    expect(s.histogram.reduce((n, h) => n + h.count, 0)).toBe(40);
    expect(report.droppedByManifestThreshold).toBe(0);
  });

  it('gives the error-versus-reject curve at the manifest threshold (maintainers: 1 error in 780 pairs)', () => {
    expect(report.curveThreshold).toEqual({ value: 0.42, source: 'manifest' });
    const curve = report.errorVersusReject!;
    expect(curve.map((p) => p.rejectPercent)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]);
    expect([curve[0]!.samePairs, curve[0]!.differentPairs]).toEqual([80, 700]);
    expect(curve[0]!.errorAtThreshold).toBeLessThanOrEqual(3 / 780);
    expect(curve[10]!.faces).toBe(20);
    for (let i = 1; i < curve.length; i++)
      expect(curve[i]!.dropBelowMagnitude).toBeGreaterThanOrEqual(curve[i - 1]!.dropBelowMagnitude);
  });

  it('suggests a drop threshold within the observed magnitudes, and prints a readable report', () => {
    expect(report.suggested.dropBelowMagnitude).toBeGreaterThanOrEqual(
      Math.min(report.manifest.dropBelowMagnitude, report.magnitude.min),
    );
    expect(report.suggested.dropBelowMagnitude).toBeLessThanOrEqual(report.magnitude.max);
    expect(report.suggested.magnitudeRange).toEqual([report.magnitude.p05, report.magnitude.p95]);
    const text = formatReport(report);
    expect(text).toContain('error versus reject (cosine threshold 0.42, manifest)');
    expect(text).toMatch(/magnitude {2}min \d+\.\d\d {2}p05/);
    expect(text).toContain('suggested: dropBelowMagnitude');
  });

  it('a wrong model name is a clear error with exit code 2', async () => {
    const errors: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
    try {
      await facepipe([
        'models',
        'calibrate',
        '--model',
        'nope',
        '--photos',
        crops,
        '--models',
        bundledModels,
      ]);
    } finally {
      spy.mockRestore();
    }
    expect(process.exitCode).toBe(2);
    expect(errors.join('')).toContain('no embedder named "nope"');
  });
});

/**
 * Calibration round trip on a small labelled set made here: the face-api crops (8 people × 5)
 * copied into a temporary folder, the bundled models copied beside it. `models calibrate --write`
 * fits the clustering operating point and writes it into that manifest; the next `run` with that
 * models folder reads it back and groups the photos with it.
 */

describe('models calibrate --write, then run', () => {
  let work: string;
  let photos: string;
  let models: string;
  let round: CalibrationReport;
  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'facepipe-calibrate-'));
    photos = path.join(work, 'people');
    models = path.join(work, 'models');
    cpSync(path.join(repoRoot, 'examples', 'faceapi-crops'), photos, { recursive: true });
    cpSync(path.join(repoRoot, 'models'), models, { recursive: true });
    round = await calibrate(photos, models, ['--write']);
  }, 120_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('fits the clustering operating point on the labelled folder and reports it', () => {
    const c = round.clustering!;
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
    expect(entry.clustering).toEqual(round.clustering!.fit.params);
    expect(entry.clusteringCalibration).toMatchObject({ folders: ['people'] });
    const bundled = readFileSync(path.join(repoRoot, 'models', 'manifest.json'), 'utf8');
    expect(bundled).not.toContain(photos);
  });

  it('the next run reads them from the manifest and groups the 8 people with them', async () => {
    const embedder = loadManifest(models).embedders[0]!;
    const params = clusterParamsFromManifest(embedder);
    expect(params).toMatchObject(round.clustering!.fit.params);
    const summary = await runEmbedded({
      dir: photos,
      dataDir: path.join(work, 'data'),
      modelsDir: models,
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
