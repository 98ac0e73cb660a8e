import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runEmbedded } from '../app/run.ts';
import { photoIdForFile } from '../schemas/face.ts';
import { openFaceDatabase } from '../indexers/database.ts';
import { loadManifest, resolveModelsDir, type EmbedderManifest } from '../pipeline/models.ts';
import { collectPhotos } from '../cli/models.ts';
import { evaluate, type Evaluation } from '../clustering/metrics.ts';
import {
  attachPenaltyOf,
  clusterParamsFromManifest,
  qualityOf,
  type ClusterParams,
} from '../clustering/params.ts';
import { buildCoreGraph, clusterBatch } from '../clustering/batch.ts';
import { keptGraph, runBaselineOnGraph } from '../clustering/methods.ts';
import {
  fitClusterParams,
  fitImpostorCosine,
  fitQualityMapping,
  DEFAULT_GRID,
  fittedParams,
  followsIdentities,
  qualityRejectCurve,
  scoreCollection,
  DEFAULT_MIN_PRECISION,
  type LabelledCollection,
  type QualityMapping,
  type FittedParams,
} from '../clustering/calibration.ts';
import type { ClusterFace } from '../clustering/types.ts';
import { QUALITY_CUES, type QualityCue } from '../pipeline/models.ts';
import { qualityFromScore } from '../pipeline/qualityGate.ts';
import { rng } from '../core/random.ts';
import { buildCache, cacheFile, readCache } from './realphotos/analysisCache.ts';
import { buildFaceSet, toCollection, type DetectionConfig } from './realphotos/faceSet.ts';
import { leftoverStudy, type LeftoverStudy } from './realphotos/leftovers.ts';
import { impostorCheck, type ImpostorCheck } from './realphotos/impostorCheck.ts';

/**
 * Real labelled photos (`npm run bench -- --only=realphotos [--photos DIR ...]`, default the two
 * development sets beside the repository when present): one folder per person, the largest face of
 * each photo scored against its folder.
 * 1. The whole main job (`facepipe run`, shipped manifest) end to end on each folder; BCubed and
 *    pairwise P/R/F, identities found vs true, unassigned share.
 * 2. Baselines on the same stored embeddings at their best single threshold found WITH the truth:
 *    single linkage, core points, Chinese Whispers, average-linkage HAC.
 * 3. Each rule on/off, the quality signal before/after (error versus reject), detector settings,
 *    half/half and cross-set stability of the calibration: from a per-face analysis cache
 *    (bench/.cache, git-ignored; built with the real analyzer when missing).
 */

const here = path.dirname(fileURLToPath(import.meta.url));
/** the development sets in the team's `shared/datasets` beside the checkout (or beside its worktree folder) */
const DEV_SETS = ['celeba-dev', 'lfw-dev'].map((d) => {
  const near = path.resolve(here, '..', '..', 'shared', 'datasets', d);
  return existsSync(near) ? near : path.resolve(here, '..', '..', '..', 'shared', 'datasets', d);
});
const THRESHOLDS = Array.from({ length: 20 }, (_, i) => round(0.34 + 0.02 * i, 2));

export async function run(): Promise<Record<string, unknown>> {
  const given = photoArgs();
  const dirs = given.length > 0 ? given : DEV_SETS.filter((d) => existsSync(d));
  if (dirs.length === 0) {
    const reason = `no labelled photo folders: pass --photos DIR (one sub-folder per person), or place the development sets at ${DEV_SETS.join(' and ')}`;
    process.stderr.write(`bench realphotos: skipped (${reason})\n`);
    return { skipped: reason };
  }
  const manifestDir = resolveModelsDir();
  const embedder = loadManifest(manifestDir).embedders[0]!;
  const params = clusterParamsFromManifest(embedder);
  const sets: MainJobFigures[] = [];
  for (const dir of dirs) {
    process.stderr.write(`bench realphotos: main job on ${dir}\n`);
    sets.push(await mainJob(dir, params, embedder.embeddingDim));
  }
  process.stderr.write('bench realphotos: analysis cache, rules on/off, stability\n');
  for (const dir of dirs) if (!existsSync(cacheFile(dir))) await buildCache(dir);
  const study = await rulesAndStability(dirs, embedder, params);
  const figures = {
    shipped: shippedSettings(embedder, params),
    sets,
    baselinesAtOneSetting: baselinesAtOneSetting(sets),
    ...study,
  };
  writeFileSync(path.join(here, 'results', 'realphotos.md'), readmeTables(figures));
  return figures;
}

function photoArgs(): string[] {
  const args = process.argv.slice(2);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--photos') {
      while (i + 1 < args.length && !args[i + 1]!.startsWith('--')) out.push(path.resolve(args[++i]!));
    } else if (args[i]!.startsWith('--photos=')) out.push(path.resolve(args[i]!.slice('--photos='.length)));
  }
  return out;
}

function shippedSettings(embedder: EmbedderManifest, params: ClusterParams): Record<string, unknown> {
  return {
    model: embedder.name,
    quality: embedder.quality,
    clustering: fittedParams(params),
  };
}

const BASELINES = ['single', 'core', 'cw', 'hac'] as const;

/** one baseline setting on one collection */
interface SweepPoint extends Scored {
  threshold: number;
  minFaces?: number;
}

/** the item with the highest score (the first of equals), null for none */
function highest<T>(items: readonly T[], score: (item: T) => number): T | null {
  let best: T | null = null;
  let bestScore = -Infinity;
  for (const item of items) {
    const s = score(item);
    if (best === null || s > bestScore) [best, bestScore] = [item, s];
  }
  return best;
}

const bcubedF = (x: SweepPoint) => x.bcubed.f;

/**
 * Each baseline at ONE setting for every collection, as facepipe ships one manifest: the setting
 * with the best mean BCubed F over the collections, chosen with the truth of all of them, and the
 * same among the settings that keep the precision floor on each.
 */
export function baselinesAtOneSetting(
  sets: readonly { folder: string; baselineSweeps: Record<string, SweepPoint[]> }[],
): Record<string, { any: SharedSetting | null; atPrecisionFloor: SharedSetting | null }> {
  const out: Record<string, { any: SharedSetting | null; atPrecisionFloor: SharedSetting | null }> = {};
  for (const method of BASELINES) {
    // every collection's sweep runs the same settings in the same order (mainJob), so the k-th
    // points of all of them are one shared setting
    const sweeps = sets.map((s) => s.baselineSweeps[method] ?? []);
    const shared: SharedSetting[] = (sweeps[0] ?? []).map((point, k) => {
      const per = sweeps.map((sw, j) => ({ folder: sets[j]!.folder, ...sw[k]!.bcubed }));
      const meanF = per.reduce((a, x) => a + x.f, 0) / per.length;
      return {
        threshold: point.threshold,
        ...(point.minFaces !== undefined ? { minFaces: point.minFaces } : {}),
        meanF: round(meanF),
        per,
      };
    });
    const meanF = (x: SharedSetting) => x.meanF;
    out[method] = {
      any: highest(shared, meanF),
      atPrecisionFloor: highest(
        shared.filter((x) => x.per.every((c) => c.p >= DEFAULT_MIN_PRECISION)),
        meanF,
      ),
    };
  }
  return out;
}

interface SharedSetting {
  threshold: number;
  minFaces?: number;
  meanF: number;
  per: { folder: string; p: number; r: number; f: number }[];
}

interface Scored {
  bcubed: { p: number; r: number; f: number };
  pairwise: { p: number; r: number; f: number };
  identitiesFound: number;
  identitiesTrue: number;
  unassigned: number;
}

function scored(e: Evaluation, truth: readonly string[]): Scored {
  const r = (x: { p: number; r: number; f: number }) => ({ p: round(x.p), r: round(x.r), f: round(x.f) });
  return {
    bcubed: r(e.bcubed),
    pairwise: r(e.pairwise),
    identitiesFound: e.clusters,
    identitiesTrue: new Set(truth).size,
    unassigned: round(e.unassigned),
  };
}

interface MainJobFigures {
  folder: string;
  photos: number;
  run: Record<string, number>;
  facepipe: Scored;
  baselines: Record<string, SweepPoint>;
  baselinesAtPrecisionFloor: Record<string, SweepPoint | null>;
  baselineSweeps: Record<string, SweepPoint[]>;
  marginOverBestBaselinePoints: number;
}

/** `facepipe run` on the folder in a fresh data dir, scored from its store; baselines on its embeddings. */
async function mainJob(dir: string, params: ClusterParams, dim: number): Promise<MainJobFigures> {
  const { photos } = collectPhotos(dir);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-realphotos-'));
  try {
    const summary = await runEmbedded({ dir, dataDir, recluster: true });
    const db = openFaceDatabase(dataDir, { modelId: summary.modelId, dim });
    const byPhoto = new Map<string, ReturnType<typeof db.listFaces>>();
    for (const f of db.listFaces()) {
      const list = byPhoto.get(f.photoId) ?? [];
      list.push(f);
      byPhoto.set(f.photoId, list);
    }
    db.close();
    const truth: string[] = [];
    const predicted: (string | null)[] = [];
    const largestFace: (string | null)[] = [];
    for (const p of photos) {
      truth.push(p.person!);
      const faces = byPhoto.get(photoIdForFile(p.file)) ?? [];
      const largest = faces.reduce<(typeof faces)[number] | null>(
        (a, b) => (a && a.bbox[2] * a.bbox[3] >= b.bbox[2] * b.bbox[3] ? a : b),
        null,
      );
      largestFace.push(largest?.faceId ?? null);
      predicted.push(largest?.kept ? largest.identityId : null);
    }
    const facepipe = scored(evaluate(truth, predicted), truth);
    // baselines on the same stored embeddings: every kept face, scored on the same largest faces
    const kept = [...byPhoto.values()].flat().filter((f) => f.kept);
    const faces: ClusterFace[] = kept.map((f) => {
      const unit = Float32Array.from(f.embedding, (v) => v / f.magnitude);
      return { id: f.faceId, unit, magnitude: f.magnitude, quality: 1, photoId: f.photoId };
    });
    const at = new Map(kept.map((f, i) => [f.faceId, i]));
    const graph = keptGraph(faces, { ...params, dropBelowMagnitude: 0 });
    const baselines: Record<string, SweepPoint> = {};
    const baselinesAtPrecisionFloor: Record<string, SweepPoint | null> = {};
    const baselineSweeps: Record<string, SweepPoint[]> = {};
    for (const method of BASELINES) {
      const sweep: SweepPoint[] = [];
      for (const minFaces of method === 'core' ? [2, 3, 4] : [0]) {
        for (const threshold of THRESHOLDS) {
          const labels = runBaselineOnGraph(method, faces, graph, { threshold, minFaces, seed: 1 }).labels;
          const pred = largestFace.map((id) => {
            const i = id === null ? undefined : at.get(id);
            return i === undefined ? -1 : labels[i]!;
          });
          sweep.push({
            ...scored(evaluate(truth, pred), truth),
            threshold,
            ...(method === 'core' ? { minFaces } : {}),
          });
        }
      }
      baselineSweeps[method] = sweep;
      baselines[method] = highest(sweep, bcubedF)!;
      baselinesAtPrecisionFloor[method] = highest(
        sweep.filter((x) => x.bcubed.p >= DEFAULT_MIN_PRECISION),
        bcubedF,
      );
    }
    const bestBaseline = Math.max(...Object.values(baselines).map((b) => b.bcubed.f));
    return {
      folder: path.basename(dir),
      photos: photos.length,
      run: {
        seconds: round(summary.seconds, 1),
        photosPerSecond: summary.photosPerSecond,
        facesKept: summary.store.kept,
        facesDropped: summary.store.dropped,
        failed: summary.photos.failed,
      },
      facepipe,
      baselines,
      baselinesAtPrecisionFloor,
      baselineSweeps,
      marginOverBestBaselinePoints: round(100 * (facepipe.bcubed.f - bestBaseline), 1),
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

type CueQuality = (c: LabelledCollection, i: number) => number;

export async function rulesAndStability(
  dirs: string[],
  embedder: EmbedderManifest,
  params: ClusterParams,
): Promise<Record<string, unknown>> {
  const caches = await Promise.all(dirs.map((d) => readCache(d)));
  const detector = loadManifest(resolveModelsDir()).detectors[0]!;
  const shippedDetection: DetectionConfig = {
    scoreThreshold: detector.thresholds.score,
    minFaceSize: detector.thresholds.minFaceSize,
    containment: detector.thresholds.nmsContainment,
  };
  const collectionsFor = (det: DetectionConfig) =>
    caches.map((c, k) => toCollection(path.basename(dirs[k]!), buildFaceSet(c, det)));
  const mapping = embedder.quality.cues as QualityMapping | undefined;
  const byMagnitude: CueQuality = (c, i) => qualityOf(c.faces[i]!.magnitude, params.qualityRange);
  const byCues: CueQuality = mapping
    ? (c, i) => qualityFromScore(mapping, c.cues[i] as Record<QualityCue, number>)
    : byMagnitude;
  const withQuality = (cols: LabelledCollection[], q: CueQuality | 'off') => {
    for (const c of cols) c.faces.forEach((f, i) => (f.quality = q === 'off' ? 1 : q(c, i)));
    return cols;
  };
  /** flatWeights: every kept face weighs the same in templates (magnitude 1; dropped ones stay dropped) */
  const cluster = (cols: LabelledCollection[], p: ClusterParams, flatWeights = false) =>
    cols.map((c) => {
      const faces = flatWeights
        ? c.faces.map((f) => ({ ...f, magnitude: f.magnitude >= p.dropBelowMagnitude ? 1 : 0 }))
        : c.faces;
      const used = flatWeights ? { ...p, dropBelowMagnitude: 0.5 } : p;
      const e = scoreCollection(c, clusterBatch(faces, used).labels);
      return { folder: c.name, ...scored(e, c.truth).bcubed };
    });

  const shipped = withQuality(collectionsFor(shippedDetection), byCues);
  const variants: Record<string, unknown> = {};
  variants['shipped defaults (all rules on)'] = cluster(shipped, params);
  const off = (name: string, p: ClusterParams) => (variants[name] = cluster(shipped, p));
  off('small identities not harder to join (smallGroupPenalty 0, attachSmallGroupPenalty 0)', {
    ...params,
    smallGroupPenalty: 0,
    attachSmallGroupPenalty: 0,
  });
  off('no runner-up margin (attachMargin 0)', { ...params, attachMargin: 0 });
  off('missing quality costs no extra cosine (μ 0)', { ...params, lowQualityMargin: 0 });
  off('low-quality faces may create/merge (coreQuality 0)', { ...params, coreQuality: 0 });
  off('two faces of one photo may be one person', { ...params, samePhotoCannotLink: false });
  off('only clustered faces, nothing attached (attachThreshold 2)', {
    ...params,
    attachFalseRate: 0,
    attachThreshold: 2,
  });
  // the shipped collections' impostor cosines, measured once for the two fits below and the check
  const measured = fitImpostorCosine(shipped, { dropBelowMagnitude: params.dropBelowMagnitude });
  // the attach bar fixed, as before it followed the number of identities: the best such calibration
  const fixedBar = fitClusterParams(shipped, params, {
    grid: { ...DEFAULT_GRID, attach: DEFAULT_GRID.attach.filter((a) => !followsIdentities(a)) },
    impostor: measured,
  });
  off(
    `attach bar fixed, not by the number of identities (best fixed-bar fit: merge ${fixedBar.params.mergeThreshold}, ω ${fixedBar.params.smallGroupPenalty}, attach ${fixedBar.params.attachThreshold}, margin ${fixedBar.params.attachMargin})`,
    { ...params, ...fixedBar.params },
  );
  // the same calibration for plain F (β 1) under the same precision floor: what recall costs
  const forF1 = fitClusterParams(shipped, params, { beta: 1, impostor: measured });
  off(
    `calibrated for F_1, not F_0.5 (models calibrate --beta 1: merge ${forF1.params.mergeThreshold}, ω ${forF1.params.smallGroupPenalty}, ω_a ${forF1.params.attachSmallGroupPenalty}, ${attachCell(forF1.params)}, margin ${forF1.params.attachMargin})`,
    { ...params, ...forF1.params },
  );
  variants['quality = magnitude only (issue-time mapping)'] = cluster(
    withQuality(collectionsFor(shippedDetection), byMagnitude),
    params,
  );
  variants['quality off (every face quality 1, unweighted templates)'] = cluster(
    withQuality(collectionsFor(shippedDetection), 'off'),
    params,
    true,
  );
  variants['one box per face off (no containment suppression)'] = cluster(
    withQuality(collectionsFor({ ...shippedDetection, containment: 1 }), byCues),
    params,
  );
  variants['no minimum face size'] = cluster(
    withQuality(collectionsFor({ ...shippedDetection, minFaceSize: 0 }), byCues),
    params,
  );
  for (const score of [0.6, 0.7])
    variants[`detector score threshold ${score}`] = cluster(
      withQuality(collectionsFor({ ...shippedDetection, scoreThreshold: score }), byCues),
      params,
    );
  const issueTime = clusterParamsFromManifest({ ...embedder, clustering: {} }, { samePhotoCannotLink: true });
  variants['before: issue-time defaults (τ 0.42, magnitude quality, no penalty)'] = cluster(
    withQuality(collectionsFor({ scoreThreshold: 0.5, minFaceSize: 0, containment: 1 }), byMagnitude),
    { ...issueTime, smallGroupPenalty: 0, attachThreshold: issueTime.linkThreshold },
  );

  const rejectCurves = {
    magnitude: qualityRejectCurve(shipped, byMagnitude),
    shippedMapping: qualityRejectCurve(shipped, byCues),
  };
  const shippedClusterings = shipped.map((c) => clusterBatch(c.faces, params));
  const leftovers = shipped.map((c, k) => leftoverStudy(c, shippedClusterings[k]!));
  const wholeDistribution = measured
    ? { impostorCosineMean: measured.overallMean, impostorCosineSd: measured.overallSd }
    : undefined;
  const impostorChecks = shipped.map((c, k) =>
    impostorCheck(c, shippedClusterings[k]!.labels, params, wholeDistribution),
  );
  const detection = detectionFigures(caches, dirs, shippedDetection);
  const stability = calibrationStability(shipped, params, byCues);
  return { variants, rejectCurves, detection, leftovers, impostorChecks, stability };
}

/** Boxes per photo, duplicate boxes, small faces at a few detector thresholds (no box truth here). */
function detectionFigures(
  caches: Awaited<ReturnType<typeof readCache>>[],
  dirs: string[],
  shipped: DetectionConfig,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  caches.forEach((photos, k) => {
    for (const score of [0.5, 0.6, 0.7]) {
      const raw = buildFaceSet(photos, { scoreThreshold: score, minFaceSize: 0, containment: 1 });
      const clean = buildFaceSet(photos, { ...shipped, scoreThreshold: score });
      out.push({
        folder: path.basename(dirs[k]!),
        scoreThreshold: score,
        photosWithoutFace: round(Array.from(raw.largest).filter((i) => i < 0).length / photos.length, 4),
        boxesPerPhoto: round(raw.faces.length / photos.length, 3),
        boxesInsideAnotherBox:
          raw.faces.length -
          buildFaceSet(photos, { scoreThreshold: score, minFaceSize: 0, containment: shipped.containment })
            .faces.length,
        facesBelowMinSize: raw.faces.filter((f) => Math.min(f.bbox[2], f.bbox[3]) < shipped.minFaceSize)
          .length,
        boxesKept: clean.faces.length,
      });
    }
  });
  return out;
}

/** Fit on half the people (or one set), score on the other half (or set), with the shipped quality. */
function calibrationStability(
  collections: LabelledCollection[],
  params: ClusterParams,
  quality: CueQuality,
): Record<string, unknown> {
  const half = (c: LabelledCollection, side: 0 | 1): LabelledCollection => {
    const people = [...new Set(c.truth)].sort();
    const rand = rng(7);
    const inA = new Set(people.filter(() => rand() < 0.5));
    const keepPhoto = c.truth.map((t) => inA.has(t) === (side === 0));
    // faces of the other half's photos leave the collection entirely
    const keepFace = new Uint8Array(c.faces.length);
    const photoOf = c.faces.map((f) => Number(f.photoId));
    c.faces.forEach((_, i) => (keepFace[i] = keepPhoto[photoOf[i]!] ? 1 : 0));
    const remap = new Int32Array(c.faces.length).fill(-1);
    const faces: ClusterFace[] = [];
    const cues: LabelledCollection['cues'] = [];
    c.faces.forEach((f, i) => {
      if (!keepFace[i]) return;
      remap[i] = faces.length;
      faces.push(f);
      cues.push(c.cues[i]!);
    });
    const photos = c.truth.map((_, p) => p).filter((p) => keepPhoto[p]);
    return {
      name: `${c.name} half ${side === 0 ? 'A' : 'B'}`,
      faces,
      cues,
      largest: Int32Array.from(photos, (p) => (c.largest[p]! >= 0 ? remap[c.largest[p]!]! : -1)),
      truth: photos.map((p) => c.truth[p]!),
    };
  };
  for (const c of collections) c.faces.forEach((f, i) => (f.quality = quality(c, i)));
  const fitAndScore = (fitOn: LabelledCollection[], scoreOn: LabelledCollection[]) => {
    const fit = fitClusterParams(fitOn, params);
    const p = { ...params, ...fit.params };
    return {
      fittedOn: fitOn.map((c) => c.name),
      fitted: fit.params,
      scoredOn: scoreOn.map((c) => {
        const e = scoreCollection(
          c,
          clusterBatch(c.faces, p, { coreGraph: buildCoreGraph(c.faces, p) }).labels,
        );
        return { folder: c.name, ...scored(e, c.truth).bcubed };
      }),
    };
  };
  const A = collections.map((c) => half(c, 0));
  const B = collections.map((c) => half(c, 1));
  const out: Record<string, unknown> = {
    halfAtoB: fitAndScore(A, B),
    halfBtoA: fitAndScore(B, A),
  };
  if (collections.length >= 2) {
    out.crossSet = collections.map((c, k) =>
      fitAndScore(
        [c],
        collections.filter((_, j) => j !== k),
      ),
    );
  }
  const mapping = fitQualityMapping(A, QUALITY_CUES);
  out.qualityMappingFromHalfA = { mapping: mapping.mapping, cueAuc: mapping.report };
  return out;
}

/** BCubed or pairwise P / R / F as a table cell */
const prf = (x: { p: number; r: number; f: number }) =>
  `${x.p.toFixed(3)} / ${x.r.toFixed(3)} / ${x.f.toFixed(3)}`;

/**
 * The baselines where facepipe operates: per collection at the precision floor, and at one
 * setting for every collection (as one manifest is shipped), both still chosen with the truth.
 */
function operatingPointTables(
  sets: readonly MainJobFigures[],
  shared: ReturnType<typeof baselinesAtOneSetting>,
): string[] {
  const setting = (x: { threshold: number; minFaces?: number }) =>
    `t=${x.threshold}${x.minFaces !== undefined ? `, ${x.minFaces} faces` : ''}`;
  const floor = DEFAULT_MIN_PRECISION;
  const lines = [
    `| collection | facepipe, shipped defaults | best truth-tuned baseline per collection | the same with BCubed P ≥ ${floor} |`,
    '| --- | --- | --- | --- |',
  ];
  /** the method whose point has the highest BCubed F */
  const bestBy = (r: Record<string, SweepPoint | null>) =>
    highest(
      Object.entries(r).filter((e): e is [string, SweepPoint] => e[1] !== null),
      ([, x]) => x.bcubed.f,
    );
  for (const s of sets) {
    const any = bestBy(s.baselines);
    const atFloor = bestBy(s.baselinesAtPrecisionFloor);
    const cell = (b: [string, SweepPoint] | null) =>
      b ? `${b[0]} (${setting(b[1])}): ${prf(b[1].bcubed)}` : 'none';
    lines.push(`| ${s.folder} | ${prf(s.facepipe.bcubed)} | ${cell(any)} | ${cell(atFloor)} |`);
  }
  lines.push('');
  const folders = sets.map((s) => s.folder);
  lines.push(
    `| one setting for all collections (truth-tuned on all) | mean F | ${folders.map((x) => `${x} P / R / F`).join(' | ')} |`,
  );
  lines.push(`| --- | --- | ${folders.map(() => '---').join(' | ')} |`);
  const meanFacepipe = sets.reduce((a, s) => a + s.facepipe.bcubed.f, 0) / Math.max(1, sets.length);
  lines.push(
    `| **facepipe, shipped defaults** | ${meanFacepipe.toFixed(3)} | ${sets.map((s) => prf(s.facepipe.bcubed)).join(' | ')} |`,
  );
  for (const [method, b] of Object.entries(shared)) {
    for (const [label, x] of [
      ['best mean F', b.any],
      [`best mean F with P ≥ ${floor} on each`, b.atPrecisionFloor],
    ] as const) {
      if (x)
        lines.push(
          `| ${method} (${setting(x)}), ${label} | ${x.meanF.toFixed(3)} | ${x.per.map(prf).join(' | ')} |`,
        );
      else lines.push(`| ${method}, ${label} | none | ${folders.map(() => '—').join(' | ')} |`);
    }
  }
  return lines;
}

export function readmeTables(f: Record<string, unknown>): string {
  const sets = f.sets as MainJobFigures[];
  const lines: string[] = [];
  lines.push(
    '| collection | method | BCubed P / R / F | pairwise P / R / F | identities found / true | unassigned |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const s of sets) {
    const row = (name: string, x: Scored) =>
      lines.push(
        `| ${s.folder} | ${name} | ${prf(x.bcubed)} | ${prf(x.pairwise)} | ${x.identitiesFound} / ${x.identitiesTrue} | ${(100 * x.unassigned).toFixed(1)}% |`,
      );
    row('**facepipe run, shipped defaults**', s.facepipe);
    for (const [m, b] of Object.entries(s.baselines)) row(`${m} (truth-tuned, t=${b.threshold})`, b);
  }
  lines.push('');
  lines.push(
    ...operatingPointTables(sets, f.baselinesAtOneSetting as ReturnType<typeof baselinesAtOneSetting>),
  );
  lines.push('');
  const variants = f.variants as Record<string, { folder: string; p: number; r: number; f: number }[]>;
  const folders = Object.values(variants)[0]!.map((x) => x.folder);
  lines.push(
    `| variant (analysis cache, shipped manifest) | ${folders.map((x) => `${x} P / R / F`).join(' | ')} |`,
  );
  lines.push(`| --- | ${folders.map(() => '---').join(' | ')} |`);
  for (const [name, per] of Object.entries(variants)) lines.push(`| ${name} | ${per.map(prf).join(' | ')} |`);
  lines.push('');
  const curves = f.rejectCurves as Record<string, { rejectPercent: number; rankOneError: number }[]>;
  lines.push(
    '| reject % (lowest quality first) | ' + curves.magnitude!.map((p) => p.rejectPercent).join(' | ') + ' |',
  );
  lines.push('| --- | ' + curves.magnitude!.map(() => '---').join(' | ') + ' |');
  for (const [name, c] of Object.entries(curves))
    lines.push(
      `| rank-1 error, ${name} | ${c.map((p) => `${(100 * p.rankOneError).toFixed(2)}%`).join(' | ')} |`,
    );
  lines.push('');
  lines.push(...leftoverTable(f.leftovers as LeftoverStudy[]));
  lines.push('');
  lines.push(
    '| collection | identities | labelled faces | best cosine to another person’s identity, p50 / p90 | the impostor model predicts (normal fitted to the tail, shipped) | a normal with the whole distribution’s mean and sd predicts |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- |');
  const pair = (x?: { p50: number; p90: number }) =>
    x ? `${x.p50.toFixed(3)} / ${x.p90.toFixed(3)}` : 'not measured';
  for (const x of f.impostorChecks as ImpostorCheck[])
    lines.push(
      `| ${x.folder} | ${x.identities} | ${x.faces} | ${pair(x.observed)} | ${pair(x.predicted)} | ${pair(x.predictedByWholeDistribution)} |`,
    );
  lines.push('');
  const st = f.stability as Record<
    string,
    | {
        fittedOn: string[];
        fitted: FittedParams;
        scoredOn: { folder: string; p: number; r: number; f: number }[];
      }
    | unknown
  >;
  lines.push('| calibration fitted on | fitted merge / ω / ω_a / attach / μ | scored on: P / R / F |');
  lines.push('| --- | --- | --- |');
  const fits = [st.halfAtoB, st.halfBtoA, ...((st.crossSet as unknown[]) ?? [])] as {
    fittedOn: string[];
    fitted: FittedParams;
    scoredOn: { folder: string; p: number; r: number; f: number }[];
  }[];
  for (const x of fits)
    lines.push(
      `| ${x.fittedOn.join(' + ')} | ${x.fitted.mergeThreshold} / ${x.fitted.smallGroupPenalty} / ${attachPenaltyOf(x.fitted)} / ${attachCell(x.fitted)} / ${x.fitted.lowQualityMargin} | ${x.scoredOn.map((s) => `${s.folder}: ${prf(s)}`).join('; ')} |`,
    );
  return lines.join('\n') + '\n';
}

/** the fitted attach step: its false rate α when the bar follows the number of identities, else the bar */
const attachCell = (p: { attachFalseRate?: number; attachThreshold?: number }) =>
  p.attachFalseRate! > 0 ? `α ${p.attachFalseRate}` : `${p.attachThreshold} (fixed)`;

/** the unassigned labelled faces per reason, by where their nearest identity would put them */
function leftoverTable(studies: readonly LeftoverStudy[]): string[] {
  const outcomes = ['ownPerson', 'otherPerson', 'unlabelledIdentity', 'noIdentity', 'seenOnce'] as const;
  const lines = [
    `| unassigned labelled faces, nearest identity is: | ${outcomes.join(' | ')} |`,
    `| --- | ${outcomes.map(() => '---').join(' | ')} |`,
  ];
  for (const s of studies) {
    for (const [reason, row] of Object.entries(s.byReason).sort())
      lines.push(`| ${s.folder}, ${reason} | ${outcomes.map((o) => row[o] ?? 0).join(' | ')} |`);
    const cos = outcomes.map((o) => {
      const c = s.nearestCosine[o];
      return c ? `${c.p50.toFixed(3)} / ${c.p90.toFixed(3)}` : '—';
    });
    lines.push(`| ${s.folder}, its template cosine p50 / p90 | ${cos.join(' | ')} |`);
  }
  return lines;
}

function round(x: number, digits = 4): number {
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}
