import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listModels, loadManifest, ModelConfigError, resolveModelsDir, selectModels } from './models.ts';
import { modelsDir } from './testFixtures.ts';

const bundledModels = modelsDir;
const bundledManifest = JSON.parse(readFileSync(path.join(bundledModels, 'manifest.json'), 'utf8')) as {
  models: Record<string, unknown>[];
};
const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-models-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function modelsDirWith(name: string, manifest: unknown): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'manifest.json'),
    typeof manifest === 'string' ? manifest : JSON.stringify(manifest),
  );
  return dir;
}

function expectConfigError(fn: () => unknown, ...fragments: string[]): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelConfigError);
    for (const f of fragments) expect((err as Error).message).toContain(f);
    return;
  }
  throw new Error('expected a ModelConfigError');
}

describe('models folder and manifest', () => {
  it('reads the bundled manifest: detector thresholds and the embedder calibration by their manifest names', () => {
    const m = loadManifest(bundledModels);
    const { detector, embedder } = selectModels(m);
    expect(detector.name).toBe('yunet_n_dynamic');
    expect(detector.thresholds).toMatchObject({
      score: 0.5,
      nmsIou: 0.45,
      nmsContainment: 0.5,
      minFaceSize: 20,
    });
    expect(embedder.name).toBe('mobilefacenet');
    expect(embedder.quality.dropBelowMagnitude).toBe(40);
    expect(embedder.quality.magnitudeRange).toEqual([40, 90]);
    expect(embedder.embeddingDim).toBe(192);
    expect(listModels(bundledModels).map((l) => [l.name, l.present])).toEqual([
      ['yunet_n_dynamic', true],
      ['mobilefacenet', true],
    ]);
  });

  it('resolves --models, then FACEPIPE_MODELS, then the bundled models/', () => {
    expect(resolveModelsDir(bundledModels)).toBe(bundledModels);
    const saved = process.env.FACEPIPE_MODELS;
    try {
      process.env.FACEPIPE_MODELS = bundledModels;
      expect(resolveModelsDir()).toBe(bundledModels);
      delete process.env.FACEPIPE_MODELS;
      expect(resolveModelsDir()).toBe(bundledModels);
      expectConfigError(
        () => resolveModelsDir(path.join(tmp, 'nope')),
        'models folder not found',
        '--models',
      );
    } finally {
      if (saved === undefined) delete process.env.FACEPIPE_MODELS;
      else process.env.FACEPIPE_MODELS = saved;
    }
  });

  it('names the file and the field of a malformed manifest', () => {
    const broken = structuredClone(bundledManifest);
    (broken.models[1]!.quality as Record<string, unknown>).dropBelowMagnitude = 'forty';
    const dir = modelsDirWith('broken-field', broken);
    expectConfigError(
      () => loadManifest(dir),
      path.join(dir, 'manifest.json'),
      'models[1].quality.dropBelowMagnitude',
    );

    const noTask = structuredClone(bundledManifest);
    delete noTask.models[0]!.task;
    expectConfigError(() => loadManifest(modelsDirWith('no-task', noTask)), 'models[0].task');

    expectConfigError(
      () => loadManifest(modelsDirWith('not-json', '{ nope')),
      'manifest.json',
      'cannot read manifest',
    );
  });

  it('names a missing model file', () => {
    const dir = modelsDirWith('missing-onnx', bundledManifest);
    copyFileSync(path.join(bundledModels, 'yunet_n_dynamic.onnx'), path.join(dir, 'yunet_n_dynamic.onnx'));
    const m = loadManifest(dir);
    expectConfigError(() => selectModels(m), 'model file missing', 'mobilefacenet.onnx', '"file"');
    expectConfigError(
      () => selectModels(loadManifest(bundledModels), { embedder: 'magface' }),
      'no embedder named "magface"',
    );
  });
});
