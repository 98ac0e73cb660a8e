import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAnalyzer, type Analyzer } from '../pipeline/analyze.ts';
import { runEmbedded } from '../app/run.ts';
import { walkImages } from '../pipeline/imageFiles.ts';
import { benchDir } from './peer/venv.ts';

/**
 * GPU figures (run through bench/gpu.sh, which installs the CUDA binaries first): faces/s of the
 * embed stage at batch 1/8/32/128 and photos/s of the whole main job, on the CUDA provider and on
 * the CPU in the same run. Refuses (no figures written) when the CUDA provider cannot be created.
 */

const repo = path.resolve(benchDir, '..');
const BATCHES = [1, 8, 32, 128];
const r1 = (x: number) => Math.round(x * 10) / 10;

async function alignedFaces(analyzer: Analyzer, files: string[], count: number): Promise<Buffer[]> {
  const faces: Buffer[] = [];
  for (const f of files) {
    const a = await analyzer.analyzeBytes(readFileSync(f), f);
    faces.push(...a.faces.map((x) => x.alignedRgb));
    if (faces.length >= 64) break;
  }
  return Array.from({ length: count }, (_, i) => faces[i % faces.length]!);
}

async function embedRates(provider: 'cpu' | 'cuda', faces: Buffer[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const b of BATCHES) {
    const analyzer = await createAnalyzer({ provider, batchSize: b });
    try {
      await analyzer.embedAligned(faces.slice(0, 2 * b)); // warm-up (CUDA kernels, arena)
      const rates: number[] = [];
      for (let r = 0; r < 3; r++) {
        const t0 = performance.now();
        await analyzer.embedAligned(faces);
        rates.push(faces.length / ((performance.now() - t0) / 1000));
      }
      out[`batch${b}`] = r1(rates.sort((x, y) => x - y)[1]!);
    } finally {
      await analyzer.close();
    }
  }
  return out;
}

async function mainJob(provider: 'cpu' | 'cuda', dir: string, batchSize: number) {
  const analyzer = await createAnalyzer({ provider, batchSize });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-gpu-'));
  try {
    const s = await runEmbedded({ dir, dataDir, analyzer, recluster: false });
    return { photosPerS: s.photosPerSecond, facesPerS: s.facesPerSecond, provider: analyzer.provider };
  } finally {
    await analyzer.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const probe = await createAnalyzer({ provider: 'cuda' });
  const provider = probe.provider;
  const datasets = process.env.FACEPIPE_DATASETS ?? path.resolve(repo, '../shared/datasets');
  const celeba = path.join(datasets, 'celeba-dev');
  const dir = existsSync(celeba) ? celeba : path.join(repo, 'examples');
  if (dir !== celeba) process.stderr.write(`bench gpu: ${celeba} absent: the main job runs on examples/\n`);
  const faces = provider === 'cuda' ? await alignedFaces(probe, walkImages(dir), 1024) : [];
  await probe.close();
  if (provider !== 'cuda') {
    const reason =
      'the CUDA execution provider is not available here (see the log line above): nothing measured';
    process.stderr.write(`bench gpu: ${reason}\n`);
    return { skipped: true, reason };
  }
  return {
    faces: faces.length,
    embedFacesPerS: { cuda: await embedRates('cuda', faces), cpu: await embedRates('cpu', faces) },
    mainJob: {
      set: dir === celeba ? 'celeba-dev' : 'examples',
      cuda: await mainJob('cuda', dir, 32),
      cpu: await mainJob('cpu', dir, 4),
    },
  };
}
