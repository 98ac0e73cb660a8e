import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrateClustering, writeCalibration } from '../../cli/models.ts';
import { loadManifest, resolveModelsDir } from '../../pipeline/models.ts';
import { DEFAULT_MIN_PRECISION } from '../../clustering/calibration.ts';
import { readCache } from './analysisCache.ts';
import { buildFaceSet, toCollection } from './faceSet.ts';

/**
 * `models calibrate --write` from the analysis cache of labelled folders (the same fitting and
 * writing code; the analysis is the cached real-analyzer output instead of a fresh pass), for
 * re-fitting the shipped manifest on a busy machine: `node bin/run-ts.mjs
 * bench/realphotos/calibrateFromCache.ts DIR...`.
 */
export async function calibrateFromCache(dirs: string[]): Promise<string> {
  const modelsDir = resolveModelsDir();
  const manifest = loadManifest(modelsDir);
  const detector = manifest.detectors[0]!;
  const embedder = manifest.embedders[0]!;
  const detection = {
    scoreThreshold: detector.thresholds.score,
    minFaceSize: detector.thresholds.minFaceSize,
    containment: detector.thresholds.nmsContainment,
  };
  const collections = [];
  for (const dir of dirs) collections.push(toCollection(dir, buildFaceSet(await readCache(dir), detection)));
  const result = calibrateClustering(collections, embedder, {
    beta: 0.5,
    minPrecision: DEFAULT_MIN_PRECISION,
  });
  const file = writeCalibration(modelsDir, embedder.name, result);
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  return file;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await calibrateFromCache(process.argv.slice(2));
}
