import { statSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import {
  AnalyzeError,
  createAnalyzer,
  type Analyzer,
  type AnalyzedFace,
  type PhotoAnalysis,
} from '../pipeline/analyze.ts';
import { log } from '../core/log.ts';
import { walkImages } from '../pipeline/imageFiles.ts';
import { ModelConfigError } from '../pipeline/models.ts';
import { noImagesLine, positiveInt, modelsDirFrom } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';

/**
 * `facepipe analyze <file|dir>... [--models DIR] [--embeddings]`: one JSON line per face on
 * stdout, one `{"photo","error"}` line per photo that cannot be processed, then carries on.
 * Exit code 0 when at least one photo was processed, 1 when none could be, 2 when the
 * arguments or models are wrong.
 */

interface AnalyzeCliOptions {
  models?: string;
  embeddings?: boolean;
  batchSize?: number;
  threads?: number;
  workers?: number;
  provider?: 'cpu' | 'cuda';
  concurrency: number;
}

function provider(value: string): 'cpu' | 'cuda' {
  if (value !== 'cpu' && value !== 'cuda') throw new InvalidArgumentError('expected cpu or cuda');
  return value;
}

/** Files named on the command line are always analysed; directories are walked for image files. */
export function expandInputs(inputs: readonly string[]): string[] {
  const out: string[] = [];
  for (const input of inputs) {
    let isDir = false;
    try {
      isDir = statSync(input).isDirectory();
    } catch {
      // a missing path becomes that photo's READ_FAILED line
    }
    if (isDir) out.push(...walkImages(input));
    else out.push(input);
  }
  return out;
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

export function faceLine(photo: string, face: AnalyzedFace, withEmbedding: boolean): Record<string, unknown> {
  return {
    photo,
    face: face.faceIndex,
    bbox: face.bbox.map((v) => round(v, 2)),
    landmarks: face.landmarks.map(([x, y]) => [round(x, 2), round(y, 2)]),
    score: round(face.score, 4),
    magnitude: round(face.magnitude, 4),
    quality: round(face.quality, 4),
    kept: face.kept,
    ...(face.reason ? { reason: face.reason } : {}),
    ...(withEmbedding ? { embedding: Array.from(face.embedding, (v) => Number(v.toPrecision(7))) } : {}),
  };
}

export function errorLine(photo: string, err: unknown): Record<string, unknown> {
  const code = err instanceof AnalyzeError ? err.code : 'INTERNAL';
  return { photo, error: { code, message: (err as Error)?.message ?? String(err) } };
}

interface PhotoOutcome {
  lines: string[];
  ok: boolean;
  faces: number;
}

async function analyzeOne(analyzer: Analyzer, file: string, withEmbedding: boolean): Promise<PhotoOutcome> {
  try {
    const result: PhotoAnalysis = await analyzer.analyzeFile(file, file);
    return {
      lines: result.faces.map((f) => JSON.stringify(faceLine(file, f, withEmbedding))),
      ok: true,
      faces: result.faces.length,
    };
  } catch (err) {
    if (!(err instanceof AnalyzeError)) log.error({ photo: file, err }, 'unexpected failure');
    return { lines: [JSON.stringify(errorLine(file, err))], ok: false, faces: 0 };
  }
}

function write(lines: string[]): Promise<void> {
  if (lines.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    if (process.stdout.write(lines.join('\n') + '\n')) resolve();
    else process.stdout.once('drain', resolve);
  });
}

/** Analyses the photos with `concurrency` in flight, writing results in input order. Returns counts. */
export async function analyzePhotos(
  analyzer: Analyzer,
  files: readonly string[],
  withEmbedding: boolean,
  concurrency: number,
) {
  const inFlight: Promise<PhotoOutcome>[] = [];
  let processed = 0;
  let failed = 0;
  let faces = 0;
  const settle = async (): Promise<void> => {
    const outcome = await inFlight.shift()!;
    await write(outcome.lines);
    if (outcome.ok) processed++;
    else failed++;
    faces += outcome.faces;
  };
  for (const file of files) {
    inFlight.push(analyzeOne(analyzer, file, withEmbedding));
    if (inFlight.length >= concurrency) await settle();
  }
  while (inFlight.length > 0) await settle();
  return { processed, failed, faces };
}

async function runAnalyze(inputs: string[], opts: AnalyzeCliOptions, config: FacepipeConfig): Promise<void> {
  let analyzer: Analyzer;
  try {
    analyzer = await createAnalyzer({
      modelsDir: modelsDirFrom(opts.models, config),
      batchSize: opts.batchSize,
      threads: opts.threads,
      workers: opts.workers,
      provider: opts.provider ?? config.provider,
      inferenceNice: config.inferenceNice,
    });
  } catch (err) {
    if (!(err instanceof ModelConfigError)) throw err;
    process.stderr.write(`facepipe analyze: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    const files = expandInputs(inputs);
    if (files.length === 0) {
      // like `run`: nothing to do is said, and is not a failure
      process.stderr.write(noImagesLine('analyze', inputs.join(', ')));
      return;
    }
    const started = Date.now();
    const { processed, failed, faces } = await analyzePhotos(
      analyzer,
      files,
      opts.embeddings ?? false,
      opts.concurrency,
    );
    log.info(
      { photos: files.length, processed, failed, faces, seconds: (Date.now() - started) / 1000 },
      'analyze finished',
    );
    if (processed === 0) process.exitCode = 1;
  } finally {
    await analyzer.close();
  }
}

export function register(program: Command, config: FacepipeConfig): void {
  program
    .command('analyze')
    .description('detect, align and embed the faces of photos; JSON Lines on stdout, one line per face')
    .argument('<paths...>', 'image files or directories (walked recursively for image files)')
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .option('--embeddings', 'include the raw embedding in each line')
    .option('--batch-size <n>', 'faces per embedding batch', positiveInt)
    .option('--threads <n>', 'onnxruntime threads per session', positiveInt)
    .option('--workers <n>', 'inference worker threads', positiveInt)
    .option('--provider <name>', 'execution provider: cpu or cuda (falls back to cpu)', provider)
    .option('--concurrency <n>', 'photos in flight', positiveInt, 4)
    .action((inputs: string[], opts: AnalyzeCliOptions) => runAnalyze(inputs, opts, config));
}
