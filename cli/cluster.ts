import { readFileSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { log } from '../core/log.ts';
import { loadManifest, resolveModelsDir } from '../pipeline/models.ts';
import {
  clusterParamsFromManifest,
  validateParams,
  withLinkThreshold,
  type ClusterParams,
} from '../clustering/params.ts';
import { readNpy } from '../clustering/npy.ts';
import { formatAssignments } from '../clustering/csv.ts';
import { facesFromMatrix, METHODS, runMethod, type Method } from '../clustering/methods.ts';
import { defaultKnnThreads } from '../clustering/parallelKnn.ts';
import { hnswlibBuildHere, loadKnnKernel } from '../clustering/hnswlibBuild.mjs';
import { finiteNumber, positiveInt, modelsDirFrom } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';

/**
 * `facepipe cluster --embeddings X.npy [--ids ids.txt] --out assignments.csv [--method ...]`:
 * clusters raw (un-normalised) float32 [N, D] embeddings, writes `id,cluster` (empty cluster =
 * unassigned or dropped) and prints a one-line JSON summary on stdout.
 * Exit code 2 for bad arguments or inputs.
 */

interface ClusterCliOptions {
  embeddings: string;
  ids?: string;
  out: string;
  method: Method;
  minMagnitude?: number;
  qualityRange?: [number, number];
  k?: number;
  threshold?: number;
  minFaces?: number;
  models?: string;
  embedder?: string;
  /** a JSON file of clustering parameters over the manifest's (e.g. an operating point fitted elsewhere) */
  params?: string;
  progress?: boolean;
}

function range(value: string): [number, number] {
  const parts = value.split(',').map(Number);
  if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x)) || !(parts[1] > parts[0])) {
    throw new InvalidArgumentError('expected LO,HI with HI > LO');
  }
  return [parts[0], parts[1]];
}

function method(value: string): Method {
  if (!(METHODS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${METHODS.join(', ')}`);
  return value as Method;
}

/** Parameters: the embedder manifest's calibration, overridden by the command line. */
export function paramsFor(
  opts: Pick<
    ClusterCliOptions,
    'minMagnitude' | 'qualityRange' | 'k' | 'threshold' | 'models' | 'embedder' | 'params'
  >,
): ClusterParams {
  const dir = resolveModelsDir(opts.models);
  const manifest = loadManifest(dir);
  const embedder = opts.embedder
    ? manifest.embedders.find((e) => e.name === opts.embedder)
    : manifest.embedders[0];
  if (!embedder)
    throw new Error(
      opts.embedder ? `no embedder named "${opts.embedder}" in ${dir}` : `no embedder in ${dir}`,
    );
  const overrides: Partial<ClusterParams> = opts.params
    ? paramsFileOverrides(opts.params, clusterParamsFromManifest(embedder))
    : {};
  if (opts.minMagnitude !== undefined) overrides.dropBelowMagnitude = opts.minMagnitude;
  if (opts.qualityRange) overrides.qualityRange = opts.qualityRange;
  if (opts.k !== undefined) overrides.k = opts.k;
  let params = clusterParamsFromManifest(embedder, overrides);
  // τ moves the thresholds derived from it (the same ratios as the manifest defaults)
  if (opts.threshold !== undefined) params = withLinkThreshold(params, opts.threshold);
  validateParams(params);
  return params;
}

/**
 * `--params FILE.json`: an object of clustering parameters (any field of ClusterParams, e.g.
 * `{"linkThreshold": 0.34, "smallGroupPenalty": 0, "efConstruction": 64}`) that replace the
 * manifest's. Each name and type is checked against the parameters the manifest gives, so a typo
 * is one line naming it, not a silently ignored key.
 */
export function paramsFileOverrides(file: string, base: ClusterParams): Partial<ClusterParams> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`--params ${file}: ${err instanceof SyntaxError ? 'not JSON' : 'cannot be read'}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`--params ${file}: expected a JSON object of clustering parameters`);
  const known = base as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!(name in known))
      throw new Error(
        `--params ${file}: unknown parameter "${name}" (known: ${Object.keys(known).join(', ')})`,
      );
    const expected = known[name];
    const ok = Array.isArray(expected)
      ? Array.isArray(value) &&
        value.length === expected.length &&
        value.every((x) => typeof x === 'number' && Number.isFinite(x))
      : typeof expected === 'number'
        ? typeof value === 'number' && Number.isFinite(value)
        : typeof value === typeof expected;
    if (!ok)
      throw new Error(
        `--params ${file}: "${name}" must be ${describeType(expected)}, got ${JSON.stringify(value)}`,
      );
    out[name] = value;
  }
  return out as Partial<ClusterParams>;
}

function describeType(example: unknown): string {
  if (Array.isArray(example)) return `an array of ${example.length} numbers`;
  return typeof example === 'number' ? 'a finite number' : `a ${typeof example}`;
}

function readIds(file: string | undefined, rows: number): string[] {
  if (!file) return Array.from({ length: rows }, (_, i) => String(i));
  const ids = readFileSync(file, 'utf8').split(/\r?\n/);
  while (ids.length > 0 && ids[ids.length - 1] === '') ids.pop();
  if (ids.length !== rows) throw new Error(`${file}: ${ids.length} ids for ${rows} embeddings`);
  if (new Set(ids).size !== ids.length) throw new Error(`${file}: ids are not unique`);
  return ids;
}

function progressBar(enabled: boolean): { update: (d: number, t: number) => void; stop: () => void } {
  if (!enabled) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'cluster [{bar}] {percentage}% | {eta_formatted} left',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (d, t) => {
      if (!started) {
        bar.start(t, 0);
        started = true;
      }
      bar.setTotal(t);
      bar.update(d);
    },
    stop: () => started && bar.stop(),
  };
}

async function runCluster(opts: ClusterCliOptions): Promise<void> {
  const started = Date.now();
  const params = paramsFor(opts);
  const matrix = readNpy(opts.embeddings);
  const ids = readIds(opts.ids, matrix.rows);
  const faces = facesFromMatrix(matrix, ids, params.qualityRange);
  const bar = progressBar(opts.progress !== false && matrix.rows >= 10_000);
  let result;
  try {
    result = await runMethod(
      opts.method,
      faces,
      params,
      { threshold: opts.threshold, minFaces: opts.minFaces },
      bar.update,
    );
  } finally {
    bar.stop();
  }
  const clusters = Array.from(result.labels, (l) => (l >= 0 ? String(l) : null));
  writeFileSync(opts.out, formatAssignments(ids, clusters));
  const dropped = faces.filter((f) => f.magnitude < params.dropBelowMagnitude).length;
  const unassigned = clusters.filter((c) => c === null).length - dropped;
  const summary = {
    method: opts.method,
    faces: faces.length,
    dim: matrix.cols,
    clusters: result.clusters,
    assigned: faces.length - dropped - unassigned,
    unassigned,
    dropped,
    // the kNN search: worker threads, the hnswlib addon they load and the index parameters
    knn: {
      threads: defaultKnnThreads(),
      hnswlib: hnswlibBuildHere().build,
      engine: loadKnnKernel().kernel ? 'kernel' : 'shards',
      k: params.k,
      M: params.M,
      efConstruction: params.efConstruction,
      ef: Math.max(params.ef, 2 * params.k),
    },
    out: opts.out,
    seconds: (Date.now() - started) / 1000,
  };
  log.info(summary, 'clustered');
  process.stdout.write(JSON.stringify(summary) + '\n');
}

function fail(err: unknown): void {
  log.error({ err: err instanceof Error ? err.message : String(err) }, 'failed');
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 2;
}

export function register(program: Command, config: FacepipeConfig): void {
  program
    .command('cluster')
    .description('cluster raw face embeddings (.npy float32 [N, D]) into identities; writes id,cluster CSV')
    .requiredOption('--embeddings <file>', 'raw (un-normalised) embeddings, .npy float32 C-order [N, D]')
    .option('--ids <file>', 'one face id per line (default: row numbers)')
    .requiredOption(
      '--out <file>',
      'assignments CSV to write (id,cluster; empty cluster = unassigned or dropped)',
    )
    .option('--method <name>', `quality (default) | single | core | cw`, method, 'quality' as Method)
    .option(
      '--min-magnitude <a>',
      'drop faces below this magnitude (default: embedder manifest)',
      finiteNumber,
    )
    .option(
      '--quality-range <lo,hi>',
      'magnitude range mapped to quality 0..1 (default: embedder manifest)',
      range,
    )
    .option('--k <k>', 'neighbours per face in the kNN graph (default 16)', positiveInt)
    .option(
      '--threshold <cos>',
      'link threshold τ (quality) or cosine threshold (baselines); default: manifest',
      finiteNumber,
    )
    .option('--min-faces <n>', 'core method: neighbours needed to be a core (default 3)', positiveInt)
    .option('--models <dir>', 'models folder with the embedder manifest')
    .option('--embedder <name>', 'embedder whose manifest gives the defaults (default: the first)')
    .option(
      '--params <file.json>',
      'clustering parameters over the manifest\'s, as a JSON object (e.g. {"linkThreshold":0.34,"smallGroupPenalty":0}); --threshold, --k, --min-magnitude and --quality-range still apply on top',
    )
    .option('--no-progress', 'no progress bar')
    .action(async (opts: ClusterCliOptions) => {
      try {
        await runCluster({ ...opts, models: modelsDirFrom(opts.models, config) });
      } catch (err) {
        fail(err);
      }
    });
}
