import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { AnalyzeError, createAnalyzer, type AnalyzedFace, type Analyzer } from '../pipeline/analyze.ts';
import { log } from '../core/log.ts';
import { walkImages } from '../pipeline/imageFiles.ts';
import {
  listModels,
  loadManifest,
  locateModelsDir,
  ModelConfigError,
  QUALITY_CUES,
  updateModelEntry,
  type DetectorManifest,
  type EmbedderManifest,
  type ModelListing,
  type ModelsOrigin,
  type QualityCue,
} from '../pipeline/models.ts';
import { positiveInt } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';
import { cueValues, qualityFromScore } from '../pipeline/qualityGate.ts';
import {
  fitClusterParams,
  fitQualityMapping,
  MIN_ERRORS_TO_FIT,
  qualityRejectCurve,
  type CueReport,
  type FitResult,
  type LabelledCollection,
  type QualityMapping,
  type RejectPoint as QualityRejectPoint,
  DEFAULT_MIN_PRECISION,
} from '../clustering/calibration.ts';
import { attachPenaltyOf, clusterParamsFromManifest, qualityOf } from '../clustering/params.ts';
import { quantile } from '../core/stats.ts';

type CueRecord = Record<QualityCue, number>;

/**
 * `facepipe models list` — the models of a models folder with their contracts.
 * `facepipe models calibrate --model NAME --photos DIR` — a model's magnitude distribution on the
 * user's own photos and, when DIR holds one sub-folder per person, the error-versus-reject curve
 * (verification error as the lowest-magnitude share of faces is dropped), with a suggested
 * magnitude drop threshold for the manifest.
 * (Owner: the PYTHON/MAGFACE engineer, issue 7.)
 */

type Out = (text: string) => void;
const stdout: Out = (text) => process.stdout.write(text);

/** reject shares of the error-versus-reject curve, in percent */
export const DEFAULT_REJECT_STEPS = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50];

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

export interface ModelContract {
  name: string;
  task: 'detector' | 'embedder';
  file: string;
  /** absolute path of the ONNX file */
  path: string;
  present: boolean;
  bytes: number | null;
  sha256: ModelListing['sha256'];
  inputSize: string;
  colorOrder: 'RGB' | 'BGR';
  normalisation: string;
  dim?: number;
  thresholds: Record<string, unknown>;
}

/** "(p*scale - mean)/std" in its simplest readable form, e.g. "p/255" or "(p - 127.5)/128". */
export function describeNormalisation(input: {
  scale: number;
  mean: readonly number[];
  std: readonly number[];
}): string {
  const same = (xs: readonly number[]) => xs.every((x) => x === xs[0]);
  const fmt = (x: number) => String(Number(x.toPrecision(6)));
  const scaled =
    input.scale === 1
      ? 'p'
      : Math.abs(1 / input.scale - Math.round(1 / input.scale)) < 1e-6
        ? `p/${Math.round(1 / input.scale)}`
        : `p*${fmt(input.scale)}`;
  const mean = same(input.mean)
    ? input.mean[0] === 0
      ? ''
      : ` - ${fmt(input.mean[0]!)}`
    : ` - [${input.mean.map(fmt).join(', ')}]`;
  const std = same(input.std)
    ? input.std[0] === 1
      ? ''
      : `/${fmt(input.std[0]!)}`
    : `/[${input.std.map(fmt).join(', ')}]`;
  const core = mean ? `(${scaled}${mean})` : scaled;
  return std ? `${core}${std}` : core;
}

function contractOf(m: DetectorManifest | EmbedderManifest, listing: ModelListing): ModelContract {
  const base = {
    name: m.name,
    task: m.task,
    file: m.file,
    path: listing.path,
    present: listing.present,
    bytes: listing.bytes,
    sha256: listing.sha256,
    colorOrder: m.input.colorOrder,
    normalisation: describeNormalisation(m.input),
  };
  if (m.task === 'detector') {
    return {
      ...base,
      inputSize: `any, padded to a multiple of ${m.input.sizeMultiple}`,
      thresholds: { ...m.thresholds },
    };
  }
  return {
    ...base,
    inputSize: `${m.input.size[0]}x${m.input.size[1]} aligned`,
    dim: m.embeddingDim,
    thresholds: {
      dropBelowMagnitude: m.quality.dropBelowMagnitude,
      magnitudeRange: m.quality.magnitudeRange,
      ...(m.thresholds?.sameIdentityCosine !== undefined
        ? { sameIdentityCosine: m.thresholds.sameIdentityCosine }
        : {}),
    },
  };
}

export function modelContracts(dir: string): ModelContract[] {
  const manifest = loadManifest(dir);
  const files = new Map(listModels(dir).map((l) => [l.name, l]));
  return [...manifest.detectors, ...manifest.embedders].map((m) => contractOf(m, files.get(m.name)!));
}

function formatThresholds(t: Record<string, unknown>): string {
  return Object.entries(t)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(', ')}]` : String(v)}`)
    .join(' ');
}

const ORIGIN_TEXT: Record<ModelsOrigin, string> = {
  '--models': 'from --models',
  FACEPIPE_MODELS: 'from FACEPIPE_MODELS',
  bundled: 'the models bundled with facepipe',
};

function sha256Text(s: ModelListing['sha256']): string {
  if (s.ok === null) return s.actual ? `${s.actual} (the manifest gives none to check)` : 'file missing';
  return s.ok ? `${s.actual} ok` : `MISMATCH: ${s.actual}, manifest ${s.expected}`;
}

/**
 * `facepipe models list`: where the models folder was found, each model's file, its sha256 checked
 * against the manifest, and its contract. A missing file or a sha256 mismatch is listed, then
 * reported as one error (exit 2): a damaged or substituted model must not be used unnoticed.
 */
export function runList(
  opts: { models?: string; json?: boolean; modelsFromEnv?: string },
  out: Out = stdout,
): void {
  const { dir, origin } = locateModelsDir(opts.models, opts.modelsFromEnv);
  const contracts = modelContracts(dir);
  if (opts.json) {
    out(JSON.stringify({ modelsDir: dir, origin, models: contracts }, null, 2) + '\n');
  } else {
    out(`models in ${dir} (${ORIGIN_TEXT[origin]})\n`);
    for (const c of contracts) {
      const state = c.present ? `${c.bytes} bytes` : 'FILE MISSING';
      out(`\n${c.name}  (${c.task}, ${c.file}, ${state})\n`);
      out(`  file:        ${c.path}\n`);
      out(`  sha256:      ${sha256Text(c.sha256)}\n`);
      out(`  input:       ${c.inputSize}, ${c.colorOrder}, NCHW, value = ${c.normalisation}\n`);
      if (c.dim !== undefined) out(`  embedding:   ${c.dim}-d raw feature (magnitude = L2 norm)\n`);
      out(`  thresholds:  ${formatThresholds(c.thresholds)}\n`);
    }
  }
  const bad = contracts.filter((c) => !c.present || c.sha256.ok === false);
  if (bad.length > 0) {
    throw new ModelConfigError(
      bad
        .map((c) =>
          c.present
            ? `${c.name}: ${c.path} does not match the sha256 in its manifest (damaged or another model: restore the file, or fix the manifest's sha256)`
            : `${c.name}: ${c.path} is missing`,
        )
        .join('; '),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// calibrate: pure computations
// ---------------------------------------------------------------------------------------------

export interface MagnitudeStats {
  count: number;
  min: number;
  p05: number;
  median: number;
  p95: number;
  max: number;
  mean: number;
  histogram: { from: number; to: number; count: number }[];
}

export function magnitudeStats(magnitudes: readonly number[], bins = 10): MagnitudeStats {
  const sorted = [...magnitudes].sort((a, b) => a - b);
  const min = sorted[0] ?? Number.NaN;
  const max = sorted[sorted.length - 1] ?? Number.NaN;
  const width = (max - min) / bins || 1;
  const histogram = Array.from({ length: sorted.length ? bins : 0 }, (_, i) => ({
    from: min + i * width,
    to: min + (i + 1) * width,
    count: 0,
  }));
  for (const m of sorted) histogram[Math.min(bins - 1, Math.floor((m - min) / width))]!.count++;
  return {
    count: sorted.length,
    min,
    p05: quantile(sorted, 0.05),
    median: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    max,
    mean: sorted.reduce((s, m) => s + m, 0) / (sorted.length || 1),
    histogram,
  };
}

export interface LabelledFace {
  person: string;
  magnitude: number;
  unit: Float32Array;
}

export interface RejectPoint {
  /** share of faces dropped, lowest magnitudes first, in percent */
  rejectPercent: number;
  /** faces dropped when magnitude < this (the magnitude of the first kept face) */
  dropBelowMagnitude: number;
  faces: number;
  samePairs: number;
  differentPairs: number;
  /** (false non-matches + false matches) / pairs at the fixed threshold */
  errorAtThreshold: number;
  /** the lowest error over all thresholds, and where it is */
  bestError: number;
  bestThreshold: number;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Verification error of all pairs at `threshold` (same person iff cosine >= threshold), and the best threshold. */
export function verificationErrors(faces: readonly LabelledFace[], threshold: number) {
  const pairs: { cos: number; same: boolean }[] = [];
  for (let i = 0; i < faces.length; i++) {
    for (let j = i + 1; j < faces.length; j++)
      pairs.push({ cos: dot(faces[i]!.unit, faces[j]!.unit), same: faces[i]!.person === faces[j]!.person });
  }
  const same = pairs.filter((p) => p.same).length;
  const different = pairs.length - same;
  const errorsAt = (t: number) => pairs.filter((p) => p.cos >= t !== p.same).length;
  // best threshold: sweep the sorted cosines; a threshold just above cosine k rejects pairs 0..k
  const sorted = [...pairs].sort((a, b) => a.cos - b.cos);
  let errors = different; // threshold below every cosine: every different pair is a false match
  let best = errors;
  let bestThreshold = sorted.length ? sorted[0]!.cos : threshold;
  for (let k = 0; k < sorted.length; k++) {
    errors += sorted[k]!.same ? 1 : -1; // pair k moves from accepted to rejected
    if (errors < best) {
      best = errors;
      bestThreshold =
        k + 1 < sorted.length ? (sorted[k]!.cos + sorted[k + 1]!.cos) / 2 : sorted[k]!.cos + 1e-6;
    }
  }
  const n = pairs.length || 1;
  return {
    samePairs: same,
    differentPairs: different,
    errorAtThreshold: errorsAt(threshold) / n,
    bestError: best / n,
    bestThreshold,
  };
}

/** The error-versus-reject curve: drop the lowest-magnitude share, verify the rest. */
export function errorRejectCurve(
  faces: readonly LabelledFace[],
  threshold: number,
  steps = DEFAULT_REJECT_STEPS,
): RejectPoint[] {
  const byMagnitude = [...faces].sort((a, b) => a.magnitude - b.magnitude);
  const points: RejectPoint[] = [];
  for (const percent of steps) {
    const kept = byMagnitude.slice(Math.round((byMagnitude.length * percent) / 100));
    if (kept.length < 2) break;
    points.push({
      rejectPercent: percent,
      dropBelowMagnitude: kept[0]!.magnitude,
      faces: kept.length,
      ...verificationErrors(kept, threshold),
    });
  }
  return points;
}

export interface DropSuggestion {
  dropBelowMagnitude: number;
  basis: string;
}

const fmtPct = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * Labelled photos: the smallest reject share whose error at the fixed threshold is within
 * `tolerance` (absolute) of the curve's lowest error — dropping more buys nothing. Without labels:
 * the 5th percentile (drop the 5 % least recognisable faces), a heuristic.
 */
export function suggestDropThreshold(
  stats: MagnitudeStats,
  curve: readonly RejectPoint[] | null,
  current: number,
  tolerance = 0.002,
): DropSuggestion {
  if (!curve || curve.length === 0) {
    return {
      dropBelowMagnitude: stats.p05,
      basis:
        'no per-person folders: 5th percentile of the magnitudes (drops the 5% least recognisable faces); label photos for an error-based suggestion',
    };
  }
  const lowest = Math.min(...curve.map((p) => p.errorAtThreshold));
  const chosen = curve.find((p) => p.errorAtThreshold <= lowest + tolerance)!;
  if (chosen.rejectPercent === 0) {
    return {
      dropBelowMagnitude: Math.min(current, stats.min),
      basis: `dropping faces does not lower the verification error on these photos (error ${fmtPct(chosen.errorAtThreshold)} with all kept): keep the drop threshold at or below the lowest magnitude`,
    };
  }
  return {
    dropBelowMagnitude: chosen.dropBelowMagnitude,
    basis: `dropping the lowest ${chosen.rejectPercent}% of faces brings the verification error from ${fmtPct(curve[0]!.errorAtThreshold)} to ${fmtPct(chosen.errorAtThreshold)} (within ${fmtPct(tolerance)} of the curve's lowest)`,
  };
}

// ---------------------------------------------------------------------------------------------
// calibrate: running the model over the photos
// ---------------------------------------------------------------------------------------------

function imagesIn(dir: string, recursive: boolean): string[] {
  return walkImages(dir, { recursive });
}

/** One sub-folder per person (with images) and no loose images → labelled photos; else a flat set. */
export function collectPhotos(dir: string): {
  labelled: boolean;
  photos: { file: string; person?: string }[];
} {
  if (!statSync(dir).isDirectory()) throw new InvalidArgumentError(`not a directory: ${dir}`);
  const loose = imagesIn(dir, false);
  const people = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => ({ person: e.name, files: imagesIn(path.join(dir, e.name), true) }))
    .filter((p) => p.files.length > 0)
    .sort((a, b) => a.person.localeCompare(b.person));
  if (loose.length === 0 && people.length >= 2) {
    return {
      labelled: true,
      photos: people.flatMap((p) => p.files.map((file) => ({ file, person: p.person }))),
    };
  }
  return { labelled: false, photos: imagesIn(dir, true).map((file) => ({ file })) };
}

const area = (f: AnalyzedFace) => f.bbox[2] * f.bbox[3];

export interface CalibrateOptions {
  model: string;
  /** one or more folders; with one sub-folder per person each, the clustering is calibrated too */
  photos: string | string[];
  models?: string;
  detector?: string;
  json?: boolean;
  concurrency?: number;
  /** write the fitted quality mapping and clustering operating point into the model's manifest */
  write?: boolean;
  /** BCubed F_β weight of the clustering fit (β < 1: precision above recall) */
  beta?: number;
  /** BCubed precision the fit must reach on every folder (when any setting does) */
  minPrecision?: number;
  provider?: 'cpu' | 'cuda';
  inferenceNice?: number;
}

export interface CalibrationReport {
  model: string;
  modelsDir: string;
  photos: number;
  photosWithoutFace: number;
  failed: { photo: string; code: string }[];
  faces: number;
  labelled: boolean;
  people?: number;
  manifest: { dropBelowMagnitude: number; magnitudeRange: [number, number]; sameIdentityCosine?: number };
  droppedByManifestThreshold: number;
  magnitude: MagnitudeStats;
  curveThreshold?: { value: number; source: 'manifest' | 'best at 0% reject' };
  errorVersusReject?: RejectPoint[];
  suggested: { dropBelowMagnitude: number; magnitudeRange: [number, number]; basis: string };
  /** labelled folders: the fitted quality mapping and clustering operating point */
  clustering?: ClusteringCalibration;
}

export interface ClusteringCalibration {
  folders: string[];
  quality: {
    /** null: too few wrong links on these photos to fit one; quality stays the magnitude mapping */
    mapping: QualityMapping | null;
    cues: CueReport;
    /** rank-1 error as the lowest-quality share is rejected: magnitude mapping, then the fitted one */
    rejectCurveMagnitude: QualityRejectPoint[];
    rejectCurveFitted: QualityRejectPoint[];
  };
  fit: FitResult;
  beta: number;
  minPrecision: number;
  /** the manifest file the values were written into (with --write) */
  written?: string;
}

async function analyzeAll(
  analyzer: Analyzer,
  photos: { file: string; person?: string }[],
  concurrency: number,
) {
  const faces: { face: AnalyzedFace; person?: string }[] = [];
  /** per photo (labelled folders): every face, and which one is the person */
  const analysed: ({ faces: AnalyzedFace[]; largest: number } | null)[] = photos.map(() => null);
  const failed: { photo: string; code: string }[] = [];
  let withoutFace = 0;
  let next = 0;
  const worker = async () => {
    while (next < photos.length) {
      const at = next++;
      const photo = photos[at]!;
      try {
        const result = await analyzer.analyzeFile(photo.file, photo.file);
        if (result.faces.length === 0) withoutFace++;
        // a person's folder may show others too: their photo's largest face is taken as them
        const chosen = photo.person
          ? [...result.faces].sort((a, b) => area(b) - area(a)).slice(0, 1)
          : result.faces;
        for (const face of chosen) faces.push({ face, person: photo.person });
        if (photo.person)
          analysed[at] = { faces: result.faces, largest: chosen[0] ? result.faces.indexOf(chosen[0]) : -1 };
      } catch (err) {
        if (!(err instanceof AnalyzeError)) throw err;
        failed.push({ photo: photo.file, code: err.code });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return { faces, failed, withoutFace, analysed };
}

/**
 * The analysed photos of one labelled folder as calibration sees them: every kept face of every
 * photo (the others in a photo are clustered too), its cues, and the person's face per photo.
 */
function labelledCollection(
  name: string,
  photos: { file: string; person?: string }[],
  analysed: ({ faces: AnalyzedFace[]; largest: number } | null)[],
): LabelledCollection {
  const c: LabelledCollection = {
    name,
    faces: [],
    cues: [],
    largest: new Int32Array(photos.length),
    truth: [],
  };
  photos.forEach((photo, p) => {
    c.truth.push(photo.person!);
    c.largest[p] = -1;
    const a = analysed[p];
    a?.faces.forEach((f, k) => {
      if (!f.kept) return;
      if (k === a.largest) c.largest[p] = c.faces.length;
      c.faces.push({
        id: `${p}:${k}`,
        unit: f.unit,
        magnitude: f.magnitude,
        quality: f.quality,
        photoId: String(p),
      });
      c.cues.push(cueValues(f.magnitude, f.cues));
    });
  });
  return c;
}

/** Fits the quality mapping and the clustering operating point on labelled folders. */
export function calibrateClustering(
  collections: LabelledCollection[],
  embedder: EmbedderManifest,
  opts: { beta: number; minPrecision: number },
): ClusteringCalibration {
  const base = clusterParamsFromManifest(embedder);
  const { mapping, report } = fitQualityMapping(collections, QUALITY_CUES);
  const byMagnitude = (c: LabelledCollection, i: number) =>
    qualityOf(c.faces[i]!.magnitude, base.qualityRange);
  const byMapping = (c: LabelledCollection, i: number) =>
    mapping ? qualityFromScore(mapping, c.cues[i] as CueRecord) : byMagnitude(c, i);
  const rejectCurveMagnitude = qualityRejectCurve(collections, byMagnitude);
  const rejectCurveFitted = qualityRejectCurve(collections, byMapping);
  for (const c of collections) c.faces.forEach((f, i) => (f.quality = byMapping(c, i)));
  const fit = fitClusterParams(collections, base, opts);
  return {
    folders: collections.map((c) => c.name),
    quality: { mapping, cues: report, rejectCurveMagnitude, rejectCurveFitted },
    fit,
    beta: opts.beta,
    minPrecision: opts.minPrecision,
  };
}

/** Writes the fitted mapping and operating point into the model's manifest entry. */
export function writeCalibration(dir: string, model: string, cal: ClusteringCalibration): string {
  return updateModelEntry(dir, model, (entry) => {
    const quality = (entry.quality ?? {}) as Record<string, unknown>;
    const clustering = (entry.clustering ?? {}) as Record<string, unknown>;
    return {
      ...entry,
      quality: cal.quality.mapping ? { ...quality, cues: cal.quality.mapping } : quality,
      clustering: { ...clustering, ...cal.fit.params },
      clusteringCalibration: {
        folders: cal.folders.map((f) => path.basename(f)),
        objective: `mean BCubed F_${cal.beta} on the largest face of each photo, precision >= ${cal.minPrecision} on each folder`,
        perFolder: cal.fit.perCollection.map((f) => ({ ...f, name: path.basename(f.name) })),
        cueAuc: cal.quality.cues.auc,
        combinedCueAuc: cal.quality.cues.combinedAuc,
      },
    };
  });
}

export async function calibrate(opts: CalibrateOptions): Promise<CalibrationReport> {
  const folders = Array.isArray(opts.photos) ? opts.photos : [opts.photos];
  const collected = folders.map((dir) => ({ dir, ...collectPhotos(dir) }));
  const labelled = collected.every((c) => c.labelled);
  const photos = collected.flatMap((c) => c.photos);
  const analyzer = await createAnalyzer({
    modelsDir: opts.models,
    embedder: opts.model,
    detector: opts.detector,
    provider: opts.provider,
    inferenceNice: opts.inferenceNice,
  });
  try {
    const { faces, failed, withoutFace, analysed } = await analyzeAll(
      analyzer,
      photos,
      opts.concurrency ?? 4,
    );
    const m = analyzer.manifest;
    const magnitudes = faces.map((f) => f.face.magnitude);
    const stats = magnitudeStats(magnitudes);
    const report: CalibrationReport = {
      model: analyzer.modelId,
      modelsDir: analyzer.modelsDir,
      photos: photos.length,
      photosWithoutFace: withoutFace,
      failed,
      faces: faces.length,
      labelled,
      manifest: {
        dropBelowMagnitude: m.quality.dropBelowMagnitude,
        magnitudeRange: m.quality.magnitudeRange,
        ...(m.thresholds?.sameIdentityCosine !== undefined
          ? { sameIdentityCosine: m.thresholds.sameIdentityCosine }
          : {}),
      },
      droppedByManifestThreshold: magnitudes.filter((x) => x < m.quality.dropBelowMagnitude).length,
      magnitude: stats,
      suggested: { dropBelowMagnitude: Number.NaN, magnitudeRange: [stats.p05, stats.p95], basis: '' },
    };
    let curve: RejectPoint[] | null = null;
    if (labelled) {
      const labelledFaces = faces.map((f) => ({
        person: f.person!,
        magnitude: f.face.magnitude,
        unit: f.face.unit,
      }));
      report.people = new Set(labelledFaces.map((f) => f.person)).size;
      const fixed = m.thresholds?.sameIdentityCosine;
      const threshold = fixed ?? verificationErrors(labelledFaces, 0).bestThreshold;
      report.curveThreshold = {
        value: threshold,
        source: fixed !== undefined ? 'manifest' : 'best at 0% reject',
      };
      curve = errorRejectCurve(labelledFaces, threshold);
      report.errorVersusReject = curve;
    }
    if (labelled) {
      let offset = 0;
      const collections = collected.map((c) => {
        const part = analysed.slice(offset, offset + c.photos.length);
        offset += c.photos.length;
        return labelledCollection(c.dir, c.photos, part);
      });
      report.clustering = calibrateClustering(collections, m, {
        beta: opts.beta ?? 0.5,
        minPrecision: opts.minPrecision ?? DEFAULT_MIN_PRECISION,
      });
      if (opts.write)
        report.clustering.written = writeCalibration(analyzer.modelsDir, m.name, report.clustering);
    }
    const suggestion = suggestDropThreshold(stats, curve, m.quality.dropBelowMagnitude);
    report.suggested = {
      dropBelowMagnitude: suggestion.dropBelowMagnitude,
      magnitudeRange: [stats.p05, stats.p95],
      basis: suggestion.basis,
    };
    return report;
  } finally {
    await analyzer.close();
  }
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : String(x));

export function formatReport(r: CalibrationReport): string {
  const lines: string[] = [];
  const s = r.magnitude;
  lines.push(`model ${r.model} (${r.modelsDir})`);
  lines.push(
    `photos ${r.photos}, faces ${r.faces}, photos without a face ${r.photosWithoutFace}, unreadable ${r.failed.length}${r.labelled ? `, people ${r.people}` : ''}`,
  );
  lines.push('');
  lines.push(
    `magnitude  min ${f2(s.min)}  p05 ${f2(s.p05)}  median ${f2(s.median)}  p95 ${f2(s.p95)}  max ${f2(s.max)}  mean ${f2(s.mean)}`,
  );
  const peak = Math.max(1, ...s.histogram.map((h) => h.count));
  for (const h of s.histogram) {
    lines.push(
      `  ${f2(h.from).padStart(8)} – ${f2(h.to).padEnd(8)} ${String(h.count).padStart(5)} ${'#'.repeat(Math.round((40 * h.count) / peak))}`,
    );
  }
  lines.push(
    `manifest: drop below ${r.manifest.dropBelowMagnitude} (drops ${r.droppedByManifestThreshold} of ${r.faces} faces), quality range [${r.manifest.magnitudeRange.join(', ')}]`,
  );
  if (r.errorVersusReject && r.curveThreshold) {
    lines.push('');
    lines.push(
      `error versus reject (cosine threshold ${f2(r.curveThreshold.value)}, ${r.curveThreshold.source})`,
    );
    lines.push('  reject%  drop below  faces  pairs(same/diff)  error@thr  best error @ thr');
    for (const p of r.errorVersusReject) {
      lines.push(
        `  ${String(p.rejectPercent).padStart(7)}  ${f2(p.dropBelowMagnitude).padStart(10)}  ${String(p.faces).padStart(5)}  ${`${p.samePairs}/${p.differentPairs}`.padStart(16)}  ${fmtPct(p.errorAtThreshold).padStart(9)}  ${fmtPct(p.bestError).padStart(7)} @ ${f2(p.bestThreshold)}`,
      );
    }
  }
  lines.push('');
  lines.push(
    `suggested: dropBelowMagnitude ${f2(r.suggested.dropBelowMagnitude)}, magnitudeRange [${f2(r.suggested.magnitudeRange[0])}, ${f2(r.suggested.magnitudeRange[1])}] (p05..p95)`,
  );
  lines.push(`  ${r.suggested.basis}`);
  if (r.clustering) lines.push('', ...formatClustering(r.clustering));
  return lines.join('\n') + '\n';
}

function formatClustering(c: ClusteringCalibration): string[] {
  const lines: string[] = [];
  const q = c.quality;
  lines.push(
    `quality cues (AUC for telling faces whose nearest face is someone else; ${q.cues.errors} of ${q.cues.faces} faces): ` +
      Object.entries(q.cues.auc)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') +
      `; combined ${q.cues.combinedAuc}`,
  );
  const m = q.mapping;
  lines.push(
    m
      ? `quality mapping: score = ${Object.entries(m.weights)
          .map(([k, w]) => `${w}·${k}`)
          .join(' + ')}, range [${m.range.join(', ')}] → quality 0..1`
      : `quality mapping: not fitted (${q.cues.errors} wrong links, fewer than ${MIN_ERRORS_TO_FIT}): quality stays the magnitude mapping`,
  );
  lines.push('  reject%  rank-1 error (magnitude → fitted quality)');
  q.rejectCurveMagnitude.forEach((p, i) =>
    lines.push(
      `  ${String(p.rejectPercent).padStart(7)}  ${fmtPct(p.rankOneError)} → ${fmtPct(q.rejectCurveFitted[i]?.rankOneError ?? Number.NaN)}`,
    ),
  );
  const p = c.fit.params;
  lines.push(
    `clustering (BCubed F_${c.beta}, precision ≥ ${c.minPrecision} on each folder${c.fit.meetsPrecisionFloor ? '' : ': NOT reached'}, ${c.fit.settingsTried} settings): ` +
      `linkThreshold ${p.linkThreshold}, mergeThreshold ${p.mergeThreshold}, smallGroupPenalty ${p.smallGroupPenalty}, ` +
      (p.attachFalseRate > 0
        ? `attach bar by the number of identities (attachFalseRate ${p.attachFalseRate})`
        : `attachThreshold ${p.attachThreshold}`) +
      `, attachSmallGroupPenalty ${attachPenaltyOf(p)}, attachMargin ${p.attachMargin}, coreQuality ${p.coreQuality}, lowQualityMargin ${p.lowQualityMargin}`,
  );
  const imp = c.fit.impostor;
  lines.push(
    imp
      ? `  impostor cosine (a face to another person's template), over ${imp.pairs} pairs: the normal fitted to its upper tail, mean ${imp.mean}, sd ${imp.sd} (the whole distribution: mean ${imp.overallMean}, sd ${imp.overallSd})`
      : '  impostor cosine: not measured (fewer than two people with two faces): the attach bar stays fixed',
  );
  for (const f of c.fit.perCollection)
    lines.push(`  ${path.basename(f.name)}: precision ${f.p}, recall ${f.r}, F ${f.f}`);
  lines.push(
    c.written ? `written into ${c.written}` : 'not written (pass --write to store it in the manifest)',
  );
  return lines;
}

export async function runCalibrate(
  opts: CalibrateOptions,
  out: Out = stdout,
): Promise<CalibrationReport | undefined> {
  let report: CalibrationReport;
  try {
    report = await calibrate(opts);
  } catch (err) {
    if (
      !(err instanceof ModelConfigError) &&
      !(err instanceof InvalidArgumentError) &&
      (err as NodeJS.ErrnoException).code !== 'ENOENT'
    )
      throw err;
    process.stderr.write(`facepipe models calibrate: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return undefined;
  }
  if (report.faces === 0) {
    process.stderr.write('facepipe models calibrate: no face found in the photos\n');
    process.exitCode = 1;
  }
  log.info({ model: report.model, photos: report.photos, faces: report.faces }, 'calibration finished');
  out(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
  return report;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

export function register(program: Command, config: FacepipeConfig): void {
  const models = program
    .command('models')
    .description('model folders: list models and their contracts, calibrate an embedder');
  models
    .command('list')
    .description(
      'models found in the models folder, with their contracts (task, input, colour order, normalisation, dim, thresholds)',
    )
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .option('--json', 'machine-readable output')
    .action((opts: { models?: string; json?: boolean }) => {
      try {
        runList({ ...opts, modelsFromEnv: config.modelsDir });
      } catch (err) {
        if (!(err instanceof ModelConfigError)) throw err;
        process.stderr.write(`facepipe models list: ${err.message}\n`);
        process.exitCode = 2;
      }
    });
  models
    .command('calibrate')
    .description(
      'magnitude distribution of a model on your photos; with one sub-folder per person also the error-versus-reject curve; suggests a drop threshold',
    )
    .requiredOption('--model <name>', 'embedder name in the manifest')
    .requiredOption(
      '--photos <dirs...>',
      'photo folders (one sub-folder per person each: error-versus-reject curve, quality mapping and clustering operating point)',
    )
    .option('--write', "write the fitted quality mapping and clustering parameters into the model's manifest")
    .option(
      '--beta <b>',
      'BCubed F_β of the clustering fit (β < 1 weighs precision above recall)',
      positiveNumber,
      0.5,
    )
    .option(
      '--min-precision <p>',
      'BCubed precision the fit must reach on each folder',
      positiveNumber,
      DEFAULT_MIN_PRECISION,
    )
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .option('--detector <name>', 'detector name in the manifest (default: the first)')
    .option('--concurrency <n>', 'photos in flight', positiveInt, 4)
    .option('--json', 'machine-readable output')
    .action(async (opts: CalibrateOptions) => {
      await runCalibrate({
        ...opts,
        models: opts.models ?? config.modelsDir,
        provider: config.provider,
        inferenceNice: config.inferenceNice,
      });
    });
}
