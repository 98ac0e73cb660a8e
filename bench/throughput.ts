import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { IdentityService } from '../service/identityService.ts';
import { openFaceDatabase } from '../indexers/database.ts';
import type { Point } from '../pipeline/align.ts';
import { alignPhotoFaces, createAnalyzer, toFaceRecord, type AnalyzedFace } from '../pipeline/analyze.ts';
import { decodePhoto, type DecodedPhoto } from '../pipeline/decode.ts';
import { toOriginal } from '../pipeline/detect.ts';
import { runEmbedded } from '../app/run.ts';
import { walkImages } from '../pipeline/imageFiles.ts';
import { indexFaceRecords } from '../service/ingestStep.ts';
import { detect as detectInThisThread } from '../pipeline/inferenceWorker.ts';
import { loadManifest, modelPath, resolveModelsDir, selectModels } from '../pipeline/models.ts';
import { benchDir } from './peer/venv.ts';
import { detectTaskFor } from './pipeline.ts';

/**
 * The main job (`facepipe run`, embedded) on the development photos against the "slowest stage
 * alone" limit measured in the same run: each stage (decode, detect, align, embed, index) is timed
 * by itself with the whole machine on a sample of the same photos; the limit is the slowest one's
 * photos/s, and the job's photos/s should be at least 0.8× of it. The development set is the
 * team's (FACEPIPE_DATASETS or ../shared/datasets): absent, the benchmark says so and uses the
 * bundled examples.
 */

const repo = path.resolve(benchDir, '..');
const r2 = (x: number) => Math.round(x * 100) / 100;

async function rate(items: number, fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return items / ((performance.now() - t0) / 1000);
}

/** Runs `fn` over `items` with `n` at a time. */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export async function run(opts: { full: boolean }): Promise<Record<string, unknown>> {
  const datasets = process.env.FACEPIPE_DATASETS ?? path.resolve(repo, '../shared/datasets');
  const celeba = path.join(datasets, 'celeba-dev');
  let dir = celeba;
  if (!existsSync(celeba)) {
    process.stderr.write(
      `bench throughput: ${celeba} absent: skipping the development set, using examples/\n`,
    );
    dir = path.join(repo, 'examples');
  }
  const files = walkImages(dir);
  const cores = os.availableParallelism();

  // 1. the main job, as `facepipe run` does it (its photos/s excludes start-up)
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-throughput-'));
  try {
    const summary = await runEmbedded({ dir, dataDir, recluster: false });
    process.stderr.write(`bench throughput: main job ${summary.photosPerSecond} photos/s\n`);

    // 2. each stage alone on a sample of the same photos
    const sample = files.filter((_, i) => i % (opts.full ? 1 : 4) === 0);
    const bytes = sample.map((f) => readFileSync(f));
    const modelsDir = resolveModelsDir();
    const { detector, embedder } = selectModels(loadManifest(modelsDir));
    const decoded: DecodedPhoto[] = new Array(sample.length);
    const decodeRate = await rate(sample.length, () =>
      pool([...bytes.keys()], cores, async (i) => (decoded[i] = await decodePhoto(bytes[i]!))),
    );
    const task = detectTaskFor(detector, modelPath(modelsDir, detector), cores);
    await detectInThisThread(task(decoded[0]!)); // session opened outside the timing
    const detections: Awaited<ReturnType<typeof detectInThisThread>>[] = [];
    const detectRate = await rate(sample.length, async () => {
      for (const p of decoded) detections.push(await detectInThisThread(task(p)));
    });
    const template = embedder.alignment.templatePoints as Point[];
    const size = embedder.alignment.size;
    const aligned: Buffer[] = [];
    const alignRate = await rate(sample.length, () =>
      pool([...decoded.keys()], cores, async (i) => {
        const p = decoded[i]!;
        const geometry = detections[i]!.map((d) =>
          toOriginal(d, p.detect.width / p.width, p.detect.height / p.height, p.width, p.height),
        );
        for (const a of await alignPhotoFaces(p, geometry, template, size)) aligned.push(a.rgb);
      }),
    );
    const facesPerPhoto = aligned.length / sample.length;
    const analyzer = await createAnalyzer({ modelsDir });
    const analyzed: { photoId: string; faces: AnalyzedFace[] }[] = [];
    let embedRate: number;
    let indexRate: number;
    try {
      await analyzer.embedAligned(aligned.slice(0, 8)); // warm-up
      const facesPerS = await rate(aligned.length, () => analyzer.embedAligned(aligned));
      embedRate = facesPerS / Math.max(facesPerPhoto, 1e-9);
      for (const [i, b] of bytes.entries()) analyzed.push(await analyzer.analyzeBytes(b, `bench_${i}`));
      const indexDir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-throughput-index-'));
      const db = openFaceDatabase(indexDir, { modelId: analyzer.modelId, dim: analyzer.dim });
      try {
        const identities = new IdentityService(db, clusterParamsFromManifest(analyzer.manifest));
        const records = analyzed.map((a) => a.faces.map((f) => toFaceRecord(a.photoId, analyzer.modelId, f)));
        indexRate = await rate(records.length, async () => {
          for (const r of records) indexFaceRecords(db, identities, r);
        });
      } finally {
        db.close();
        rmSync(indexDir, { recursive: true, force: true });
      }
    } finally {
      await analyzer.close();
    }
    const stages = {
      decode: r2(decodeRate),
      detect: r2(detectRate),
      align: r2(alignRate),
      embed: r2(embedRate),
      index: r2(indexRate),
    };
    const slowest = Object.entries(stages).reduce((a, b) => (b[1] < a[1] ? b : a));
    return {
      photos: files.length,
      set: dir === celeba ? 'celeba-dev' : 'examples (development set absent)',
      cores,
      mainJobPhotosPerS: summary.photosPerSecond,
      mainJobFacesPerS: summary.facesPerSecond,
      stageSample: sample.length,
      facesPerPhoto: r2(facesPerPhoto),
      stageAlonePhotosPerS: stages,
      slowestStage: slowest[0],
      slowestStageLimitPhotosPerS: slowest[1],
      mainJobVsSlowestStage: r2(summary.photosPerSecond / slowest[1]),
      // stages share the cores: doing all of them for one photo costs the sum of their times
      allStagesOnSharedCoresPhotosPerS: r2(1 / Object.values(stages).reduce((s, v) => s + 1 / v, 0)),
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
