import { loadManifest, resolveModelsDir } from '../pipeline/models.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildCoreGraph, clusterBatch, clusterBatchParallel } from '../clustering/batch.ts';
import { parseAssignments } from '../clustering/csv.ts';
import { writeNpy } from '../clustering/npy.ts';
import { benchDir, ensurePeerVenv, measured, peerDir, venvPython, type ProcessCost } from './peer/venv.ts';
import { evaluate, type Evaluation } from '../clustering/metrics.ts';
import { hnswlibBuildHere } from '../clustering/hnswlibBuild.mjs';
import { execFileSync } from 'node:child_process';
import { keptGraph, runBaselineOnGraph } from '../clustering/methods.ts';
import { OnlineClusterer } from '../clustering/online.ts';
import { clusterParamsFromManifest, withLinkThreshold, type ClusterParams } from '../clustering/params.ts';
import { syntheticOfSize, type SyntheticOptions, type SyntheticSet } from '../clustering/synthetic.ts';
import { median as medianOf } from '../core/stats.ts';

/**
 * Clustering benchmark on synthetic MagFace-like data (clustering/synthetic.ts):
 * 1. quality table: each method at its best single setting (grid over its threshold; core also over
 *    minFaces) and the quality method at its manifest defaults, on several generator settings —
 *    including one where a third of the faces are low quality, and a clean one;
 * 2. online vs batch agreement (BCubed F of the online result against the batch result);
 * 3. time and memory of the quality method for 10k and 100k faces (1M with --full).
 */

const SETTINGS: { name: string; options: Partial<SyntheticOptions> }[] = [
  { name: 'lowQualityThird', options: { lowQualityShare: 1 / 3 } },
  { name: 'mixed', options: { lowQualityShare: 0.1 } },
  { name: 'clean', options: { lowQualityShare: 0 } },
  { name: 'cleanNoTwins', options: { lowQualityShare: 0, twinShare: 0 } },
];

const repo = path.resolve(benchDir, '..');

/** the Python peer runs up to this many faces (ours at every size) */
const PEER_MAX_FACES = 100_000;

const QUALITY_TAUS = range(0.3, 0.54, 0.02);
const BASELINE_THRESHOLDS = range(0.25, 0.75, 0.025);
const CORE_MIN_FACES = [2, 3, 5];

function range(a: number, b: number, step: number): number[] {
  const out: number[] = [];
  for (let x = a; x <= b + 1e-9; x += step) out.push(Math.round(x * 1000) / 1000);
  return out;
}

const round = (x: number) => Math.round(x * 10000) / 10000;

interface Scored {
  setting: Record<string, number>;
  bcubedF: number;
  bcubedP: number;
  bcubedR: number;
  pairwiseF: number;
  nmi: number;
  clusters: number;
  unassigned: number;
}

function score(setting: Record<string, number>, e: Evaluation): Scored {
  return {
    setting,
    bcubedF: round(e.bcubed.f),
    bcubedP: round(e.bcubed.p),
    bcubedR: round(e.bcubed.r),
    pairwiseF: round(e.pairwise.f),
    nmi: round(e.nmi),
    clusters: e.clusters,
    unassigned: round(e.unassigned),
  };
}

function best(list: Scored[]): Scored {
  return list.reduce((a, b) => (b.bcubedF > a.bcubedF ? b : a));
}

/**
 * The parameters for the synthetic sets: the embedder's defaults derived from its τ, without the
 * `clustering` block the shipped manifest carries. That block is an operating point fitted on real
 * photos (clustering/calibration.ts); the synthetic generator draws another distribution, so each
 * method's operating point here is fitted on a synthetic calibration set instead (`calibrate`).
 */
export function syntheticBaseParams(): ClusterParams {
  const manifest = loadManifest(resolveModelsDir());
  const embedder = manifest.embedders[0];
  if (!embedder) throw new Error('no embedder in the models manifest');
  return clusterParamsFromManifest({ ...embedder, clustering: undefined });
}

export function qualityTableRow(set: SyntheticSet, params: ClusterParams): Record<string, unknown> {
  const core = buildCoreGraph(set.faces, params);
  const quality = QUALITY_TAUS.map((tau) =>
    score(
      { tau },
      evaluate(
        set.truth,
        clusterBatch(set.faces, withLinkThreshold(params, tau), { coreGraph: core }).labels,
      ),
    ),
  );
  const atDefault = score(
    { tau: params.linkThreshold },
    evaluate(set.truth, clusterBatch(set.faces, params, { coreGraph: core }).labels),
  );
  const graph = keptGraph(set.faces, params);
  const n = set.faces.length;
  const base = (method: 'single' | 'core' | 'cw', minFaces = 3) =>
    BASELINE_THRESHOLDS.map((threshold) =>
      score(
        method === 'core' ? { threshold, minFaces } : { threshold },
        evaluate(
          set.truth,
          runBaselineOnGraph(method, set.faces, graph, { threshold, minFaces, seed: params.seed }).labels,
        ),
      ),
    );
  const single = best(base('single'));
  const corePt = best(CORE_MIN_FACES.flatMap((m) => base('core', m)));
  const cw = best(base('cw'));
  const q = best(quality);
  const bestBaseline = Math.max(single.bcubedF, corePt.bcubedF, cw.bcubedF);
  return {
    faces: n,
    lowQualityShare: round(set.options.lowQualityShare),
    quality: q,
    qualityAtManifestDefaults: atDefault,
    single,
    core: corePt,
    cw,
    qualityMinusBestBaselineBcubedF: round(q.bcubedF - bestBaseline),
  };
}

function onlineVsBatch(set: SyntheticSet, params: ClusterParams): Record<string, number> {
  const batch = clusterBatch(set.faces, params).labels;
  const online = new OnlineClusterer(params, set.options.dim);
  const started = performance.now();
  for (const f of set.faces) online.add(f);
  const ms = performance.now() - started;
  const labels = online.labels(set.faces.map((f) => f.id));
  return {
    faces: set.faces.length,
    onlineVsBatchBcubedF: round(evaluate(batch, labels).bcubed.f),
    batchVsTruthBcubedF: round(evaluate(set.truth, batch).bcubed.f),
    onlineVsTruthBcubedF: round(evaluate(set.truth, labels).bcubed.f),
    onlineFacesPerSecond: Math.round((set.faces.length / ms) * 1000),
  };
}

/**
 * `facepipe cluster` (quality method, kNN search on every core) against the Python reference
 * (bench/peer/peer_cluster.py: pip hnswlib kNN graph on the same cores + Chinese Whispers at its
 * best threshold from the quality table), both as whole processes under the same meter on the
 * same .npy, interleaved, medians.
 */
function scaleVsPeer(
  size: number,
  params: ClusterParams,
  cwThreshold: number,
  reps: number,
  withPeer = true,
) {
  const set = syntheticOfSize(size, { seed: 42, lowQualityShare: 0.1 });
  const work = mkdtempSync(path.join(os.tmpdir(), 'facepipe-cluster-'));
  try {
    const npy = path.join(work, 'x.npy');
    const paramsFile = path.join(work, 'params.json');
    writeFileSync(paramsFile, JSON.stringify(params));
    const dim = set.options.dim;
    const data = new Float32Array(set.faces.length * dim);
    set.faces.forEach((f, i) => {
      for (let j = 0; j < dim; j++) data[i * dim + j] = f.unit[j]! * f.magnitude;
    });
    writeNpy(npy, { rows: set.faces.length, cols: dim, data });
    const ours = [
      'node',
      path.join(repo, 'bin/facepipe.mjs'),
      'cluster',
      '--embeddings',
      npy,
      '--out',
      path.join(work, 'ours.csv'),
      '--params',
      paramsFile,
      '--no-progress',
    ];
    const peer = [
      venvPython,
      path.join(peerDir, 'peer_cluster.py'),
      '--embeddings',
      npy,
      '--out',
      path.join(work, 'peer.npy'),
      ...[
        '--k',
        String(params.k),
        '--M',
        String(params.M),
        '--ef-construction',
        String(params.efConstruction),
      ],
      ...['--ef', String(params.ef), '--threads', String(os.availableParallelism())],
      ...['--threshold', String(cwThreshold), '--min-magnitude', String(params.dropBelowMagnitude)],
    ];
    const costs: { ours: ProcessCost[]; peer: ProcessCost[] } = { ours: [], peer: [] };
    let peerSplit: { graphSeconds: number; whispersSeconds: number } | undefined;
    let ourSummary: { clusters?: number; knn?: Record<string, unknown> } = {};
    for (let r = 0; r < reps; r++) {
      const order = r % 2 === 0 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
      for (const who of order.filter((w) => withPeer || w === 'ours')) {
        const out = path.join(work, `${who}.stdout`);
        const cost = measured(who === 'ours' ? ours : peer, out, path.join(work, 'cost.json'), repo);
        if (cost.rc !== 0) throw new Error(`bench clustering: ${who} exited ${cost.rc} at ${size} faces`);
        costs[who].push(cost);
        if (who === 'peer') peerSplit = JSON.parse(readFileSync(out, 'utf8'));
        else ourSummary = JSON.parse(readFileSync(out, 'utf8'));
        process.stderr.write(`bench clustering: ${size} ${who} wall ${cost.wall.toFixed(1)} s\n`);
      }
    }
    // the CSV's ids are row numbers (no --ids given)
    const ourAssignments = parseAssignments(readFileSync(path.join(work, 'ours.csv'), 'utf8'));
    const ourLabels = Int32Array.from(set.faces.keys(), (i) => {
      const c = ourAssignments.get(String(i));
      return c == null ? -1 : Number(c);
    });
    const peerLabels = withPeer
      ? Int32Array.from(parseNpyInt64(readFileSync(path.join(work, 'peer.npy'))))
      : undefined;
    const side = (cs: ProcessCost[], labels: Int32Array) => ({
      wallSeconds: round(medianOf(cs.map((c) => c.wall))),
      cpuSeconds: round(medianOf(cs.map((c) => c.user + c.sys))),
      peakRssMiB: Math.round(medianOf(cs.map((c) => c.maxRssKiB)) / 1024),
      bcubedF: round(evaluate(set.truth, labels).bcubed.f),
    });
    return {
      faces: set.faces.length,
      dim,
      reps,
      // both sides: the same HNSW parameters (the peer's ef is max(ef, 2k), as ours)
      index: {
        M: params.M,
        efConstruction: params.efConstruction,
        ef: Math.max(params.ef, 2 * params.k),
        k: params.k,
      },
      facepipeCluster: {
        ...side(costs.ours, ourLabels),
        linkThreshold: params.linkThreshold,
        knn: ourSummary.knn,
      },
      pythonPeer: peerLabels
        ? {
            ...side(costs.peer, peerLabels),
            cwThreshold,
            graphSeconds: round(peerSplit?.graphSeconds ?? NaN),
            whispersSeconds: round(peerSplit?.whispersSeconds ?? NaN),
          }
        : {
            skipped: `not run above ${PEER_MAX_FACES} faces (its pure-Python Chinese Whispers alone takes most of an hour at 1M)`,
          },
      wallRatio: peerLabels ? round(medianOf(costs.ours.map((c, i) => c.wall / costs.peer[i]!.wall))) : null,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The x86-64-v3 hnswlib build (the postinstall makes it; built here when it is missing), and which build the workers load. */
function ensureTunedHnswlib(): { build: string; reason: string } {
  if (hnswlibBuildHere().reason === 'x86-64-v3 build missing')
    execFileSync(process.execPath, [path.join(repo, 'devkit/buildHnswlibX86v3.mjs'), '--if-possible'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  return hnswlibBuildHere();
}

/** The int64 label vector np.save writes (little-endian, C order), as numbers. */
function parseNpyInt64(buf: Buffer): number[] {
  const headerLen = buf.readUInt16LE(8);
  const body = buf.subarray(10 + headerLen);
  const out: number[] = [];
  for (let i = 0; i + 8 <= body.length; i += 8) out.push(Number(body.readBigInt64LE(i)));
  return out;
}

/** log-log slope of wall time against faces between consecutive sizes. */
function growthExponents(rows: Record<string, { faces: number; facepipeCluster: { wallSeconds: number } }>) {
  const list = Object.values(rows).sort((a, b) => a.faces - b.faces);
  const out: Record<string, number> = {};
  for (let i = 1; i < list.length; i++) {
    const a = list[i - 1]!;
    const b = list[i]!;
    out[`${a.faces}to${b.faces}`] = round(
      Math.log(b.facepipeCluster.wallSeconds / a.facepipeCluster.wallSeconds) / Math.log(b.faces / a.faces),
    );
  }
  return out;
}

async function timing(size: number, params: ClusterParams): Promise<Record<string, number>> {
  const set = syntheticOfSize(size, { seed: 42, lowQualityShare: 0.1 });
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const timer = setInterval(sample, 200);
  const result = await clusterBatchParallel(set.faces, params, { onProgress: sample });
  clearInterval(timer);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  sample();
  const e = evaluate(set.truth, result.labels);
  return {
    faces: set.faces.length,
    dim: set.options.dim,
    seconds: round(seconds),
    cpuSeconds: round((cpu.user + cpu.system) / 1e6),
    peakRssMiB: Math.round(peak / 2 ** 20),
    rssGrowthMiB: Math.round((peak - rssBefore) / 2 ** 20),
    clusters: result.clusters,
    bcubedF: round(e.bcubed.f),
  };
}

export async function run(opts: { full: boolean }): Promise<Record<string, unknown>> {
  const params = syntheticBaseParams();
  const loadAtStart = os.loadavg().map(round);
  const tableSize = opts.full ? 20_000 : 6_000;
  const qualityTable: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const set = syntheticOfSize(tableSize, { seed: 7, ...s.options });
    qualityTable[s.name] = qualityTableRow(set, params);
    process.stderr.write(`bench clustering: quality table ${s.name} done\n`);
  }
  const online: Record<string, unknown> = {};
  for (const s of SETTINGS.slice(0, 3))
    online[s.name] = onlineVsBatch(syntheticOfSize(tableSize, { seed: 8, ...s.options }), params);
  process.stderr.write('bench clustering: online vs batch done\n');
  const sizes = process.env.FACEPIPE_BENCH_CLUSTER_SIZES
    ? process.env.FACEPIPE_BENCH_CLUSTER_SIZES.split(',').map(Number)
    : opts.full
      ? [10_000, 100_000, 1_000_000]
      : [10_000, 100_000];
  // The operating points for the scale runs, chosen the same way for both sides: each method's best
  // single threshold (BCubed F) on the calibration set, the quality table's `mixed` row (seed 7, a
  // set the scale runs, seed 42, never see)
  const calibration = qualityTable.mixed as { quality: Scored; cw: Scored };
  const qualityParams = withLinkThreshold(params, calibration.quality.setting.tau!);
  const cwThreshold = calibration.cw.setting.threshold!;
  const time: Record<string, unknown> = {};
  // in process, up to the peer's sizes (at 1M the whole-process run below is the figure)
  for (const n of sizes.filter((n) => n <= PEER_MAX_FACES)) {
    time[String(n)] = await timing(n, qualityParams);
    process.stderr.write(`bench clustering: ${n} faces timed\n`);
  }
  ensurePeerVenv();
  const hnswlib = ensureTunedHnswlib();
  const vsPeer: Record<string, ReturnType<typeof scaleVsPeer>> = {};
  for (const n of sizes)
    vsPeer[String(n)] = scaleVsPeer(
      n,
      qualityParams,
      cwThreshold,
      n >= 1_000_000 ? 1 : n >= 100_000 ? 2 : 3,
      n <= PEER_MAX_FACES,
    );
  return {
    params: { ...params },
    // the scale runs (`time`, `vsPythonPeer`) use these: each side's best threshold on the calibration set
    operatingPoints: {
      calibrationSet: { faces: tableSize, seed: 7, lowQualityShare: 0.1 },
      quality: qualityParams,
      cwThreshold,
    },
    hnswlib,
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map(round) },
    grids: {
      qualityTau: QUALITY_TAUS,
      baselineThresholds: BASELINE_THRESHOLDS,
      coreMinFaces: CORE_MIN_FACES,
    },
    qualityTable,
    online,
    time,
    // whole processes: `facepipe cluster` against the Python reference on the same faces
    vsPythonPeer: vsPeer,
    growthExponent: growthExponents(vsPeer),
  };
}

// `node bin/run-ts.mjs bench/clustering.ts [--full]` runs this benchmark alone
if (process.argv[1]?.endsWith('bench/clustering.ts')) {
  const figures = await run({ full: process.argv.includes('--full') });
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}
