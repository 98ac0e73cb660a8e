/**
 * The embedded main job (`facepipe run`): photos from a folder, no Kafka. Where a photo's bytes go:
 * read here → pipeline/analyze.ts (decode, detect, align, embed, magnitude gate) → face records
 * with thumbnails → service/ingestStep.ts (store + index, online assignment) → the batch recluster
 * of service/identityService.ts → pipeline/report.ts. Failures are DeadLetter records, in the store
 * and in `<data>/dead-letter.jsonl`.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { walkImages as walkImagesUnder } from '../pipeline/imageFiles.ts';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import PQueue from 'p-queue';
import cliProgress from 'cli-progress';
import {
  createAnalyzer,
  faceRecordsOf,
  AnalyzeError,
  type Analyzer,
  type PhotoAnalysis,
} from '../pipeline/analyze.ts';
import { log } from '../core/log.ts';
import { writeReport } from '../pipeline/report.ts';
import { ingestFailure, ingestPhoto, type IngestTarget } from '../service/ingestStep.ts';
import { photoIdForFile, SCHEMA_VERSION } from '../schemas/face.ts';
import type { DeadLetter, DeadLetterStage } from '../schemas/deadLetter.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import type { FaceRecord } from '../schemas/face.ts';
import { DEFAULT_DATA_DIR, openDataDir } from './dataDir.ts';
import type { ServiceMetrics } from '../api/metrics.ts';

/** Files the walker picks up (sharp decodes these); anything else in the folder is ignored. */
/** Dead-letter records of photos that could not be processed, one JSON object per line. */
export const DEAD_LETTER_FILE = 'dead-letter.jsonl';

export interface RunOptions {
  /** folder to walk for photos (recursively) */
  dir: string;
  /** data folder: store, index, thumbnails, report (default ./facepipe-data) */
  dataDir?: string;
  modelsDir?: string;
  /** also write the assignment as CSV `photo,face,identity,width,height` */
  exportCsv?: string;
  /** photos analysed at once (default 4: the embedder batches faces across them) */
  concurrency?: number;
  /** progress bar on stderr (default: when stderr is a TTY) */
  progress?: boolean;
  /** run the batch recluster after ingest when anything changed (default true) */
  recluster?: boolean;
  /** an analyzer to reuse (tests, serve); otherwise one is created and closed here */
  analyzer?: Analyzer;
  /** Prometheus ingest counters to feed when the run shares a process with the lookup service */
  metrics?: Pick<ServiceMetrics, 'ingestPhotos' | 'ingestFaces'>;
}

export interface RunSummary {
  dir: string;
  dataDir: string;
  modelId: string;
  photos: { found: number; processed: number; skipped: number; changed: number; failed: number };
  faces: { kept: number; dropped: number };
  store: { photos: number; faces: number; kept: number; dropped: number; identities: number };
  identities: number;
  recluster: { ran: boolean; clusters?: number; events?: number };
  report: string;
  export?: string;
  deadLetters?: string;
  /** wall time of the whole command, model loading included */
  seconds: number;
  /** ingest throughput (analysis + indexing, start-up excluded) */
  photosPerSecond: number;
  facesPerSecond: number;
}

/** Image files under `dir`, sorted, as paths joined onto `dir` as given; hidden entries and `skip` are left out. */
export function walkImages(dir: string, skip?: string): string[] {
  return walkImagesUnder(dir, { skip });
}

interface Counters {
  metrics?: RunOptions['metrics'];
  processed: number;
  skipped: number;
  changed: number;
  failed: number;
  kept: number;
  dropped: number;
}

/**
 * `facepipe run`: walk a folder, analyse every new or changed photo, hand it to the ingest step
 * (service/ingestStep.ts, the same one the Kafka indexer calls), recluster, then write the report
 * (and the CSV). Analysis runs `concurrency` photos at a time (their faces share embedding batches);
 * the ingest step runs one photo at a time in walk order, and each analysis slot waits for its
 * photo to be ingested, so memory stays bounded whatever the folder size.
 */
export async function runEmbedded(opts: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  if (!existsSync(opts.dir) || !statSync(opts.dir).isDirectory())
    throw new Error(`not a folder: ${opts.dir}`);
  const dataDir = path.resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const files = walkImages(opts.dir, dataDir);
  const analyzer = opts.analyzer ?? (await createAnalyzer({ modelsDir: opts.modelsDir }));
  const opened = await openDataDir(dataDir, {
    modelsDir: opts.modelsDir,
    create: true,
    embedder: analyzer.modelId,
  }).catch(async (err: unknown) => {
    if (!opts.analyzer) await analyzer.close();
    throw err;
  });
  const { db, identities } = opened;
  try {
    // rates count from here: model loading and index recovery are start-up, not throughput
    const ingestStarted = Date.now();
    const counters: Counters = {
      metrics: opts.metrics,
      processed: 0,
      skipped: 0,
      changed: 0,
      failed: 0,
      kept: 0,
      dropped: 0,
    };
    const bar = startProgress(files.length, opts.progress ?? process.stderr.isTTY === true);
    const concurrency = Math.max(1, opts.concurrency ?? 4);
    const analysis = new PQueue({ concurrency });
    const deadLetters = path.join(dataDir, DEAD_LETTER_FILE);
    const target: IngestTarget = {
      db,
      identities,
      dataDir,
      deadLetters: {
        record: (d) => {
          appendFileSync(deadLetters, JSON.stringify(d) + '\n');
          return true;
        },
      },
    };
    const ctx: PhotoContext = { analyzer, db, target, counters };
    // A photo that fails for an unexpected reason is recorded like a bad one (code INTERNAL); only
    // a failure to record it (the store itself is broken) stops the run, after the work in flight.
    // Photos are analysed `concurrency` at a time but ingested one by one in walk order (each waits
    // for the one before it), so online assignment sees the same sequence on every run.
    let fatal: unknown;
    let previous: Promise<void> = Promise.resolve();
    for (const file of files) {
      if (fatal) break;
      await analysis.onSizeLessThan(concurrency);
      const turn = previous;
      let done!: () => void;
      previous = new Promise<void>((resolve) => (done = resolve));
      void analysis.add(async () => {
        try {
          const ingest = await analysePhoto(file, ctx);
          await turn;
          if (!fatal) ingest();
        } catch (err) {
          fatal ??= err;
        } finally {
          done();
        }
        bar?.increment(1, rates(counters, ingestStarted));
      });
    }
    await analysis.onIdle();
    if (fatal) {
      bar?.stop();
      throw fatal;
    }
    const ingestDone = Date.now();
    bar?.stop();

    const changedStore = counters.processed > 0;
    let recluster: RunSummary['recluster'] = { ran: false };
    if (changedStore && opts.recluster !== false) {
      const result = identities.recluster();
      recluster = { ran: true, clusters: result.clusters, events: result.events.length };
    }
    db.checkpoint();
    const store = db.counts();
    const report = writeReport(db, dataDir, { subtitle: `facepipe run ${opts.dir}` });
    const exportFile = opts.exportCsv ? exportAssignments(db, files, opts.exportCsv) : undefined;
    const seconds = (Date.now() - started) / 1000;
    const ingestSeconds = Math.max((ingestDone - ingestStarted) / 1000, 1e-3);
    const summary: RunSummary = {
      dir: opts.dir,
      dataDir,
      modelId: analyzer.modelId,
      photos: {
        found: files.length,
        processed: counters.processed,
        skipped: counters.skipped,
        changed: counters.changed,
        failed: counters.failed,
      },
      faces: { kept: counters.kept, dropped: counters.dropped },
      store,
      identities: store.identities,
      recluster,
      report,
      ...(exportFile ? { export: exportFile } : {}),
      ...(counters.failed > 0 ? { deadLetters } : {}),
      seconds,
      photosPerSecond: round2(counters.processed / ingestSeconds),
      facesPerSecond: round2((counters.kept + counters.dropped) / ingestSeconds),
    };
    log.info(
      { ...summary.photos, faces: summary.faces, identities: summary.identities, seconds },
      'run finished',
    );
    return summary;
  } finally {
    await opened.close();
    if (!opts.analyzer) await analyzer.close();
  }
}

interface PhotoContext {
  analyzer: Analyzer;
  db: FaceDatabase;
  target: IngestTarget;
  counters: Counters;
}

/**
 * Reads and analyses one photo; returns what ingests it (the ingest step, service/ingestStep.ts),
 * to be run in walk order. An unchanged photo is skipped; one that cannot be read or analysed
 * becomes a dead letter. Only a failure of the store itself escapes (and stops the run).
 */
async function analysePhoto(file: string, ctx: PhotoContext): Promise<() => void> {
  const { db, counters } = ctx;
  const photoId = photoIdForFile(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    return () => recordFailure(ctx, file, photoId, null, 'fetch', err);
  }
  const contentHash = createHash('sha256').update(bytes).digest('hex');
  const previous = db.getPhoto(photoId);
  // the same bytes give the same result: a failed photo that did not change fails again
  if (previous && previous.contentHash === contentHash) {
    counters.skipped++;
    counters.metrics?.ingestPhotos.inc({ status: 'skipped' });
    return () => {};
  }
  let analysis: PhotoAnalysis;
  let faces: FaceRecord[];
  try {
    analysis = await ctx.analyzer.analyzeBytes(bytes, photoId);
    faces = await faceRecordsOf(photoId, ctx.analyzer.modelId, analysis);
  } catch (err) {
    return () => recordFailure(ctx, file, photoId, contentHash, 'analyze', err);
  }
  return () => {
    const outcome = ingestPhoto(ctx.target, {
      photo: {
        v: SCHEMA_VERSION,
        photoId,
        uri: file,
        width: analysis.width,
        height: analysis.height,
        contentHash,
        modelId: ctx.analyzer.modelId,
        faceIds: faces.map((f) => f.faceId),
        at: new Date().toISOString(),
      },
      faces,
    });
    if (previous) counters.changed++;
    counters.processed++;
    counters.kept += outcome.kept;
    counters.dropped += outcome.dropped;
    counters.metrics?.ingestFaces.inc({ kept: 'true' }, outcome.kept);
    counters.metrics?.ingestFaces.inc({ kept: 'false' }, outcome.dropped);
    counters.metrics?.ingestPhotos.inc({ status: 'done' });
  };
}

/** A photo that cannot be processed becomes a dead letter (store + dead-letter file); the run carries on. */
function recordFailure(
  ctx: PhotoContext,
  file: string,
  photoId: string,
  contentHash: string | null,
  stage: DeadLetterStage,
  err: unknown,
): void {
  const code = err instanceof AnalyzeError ? err.code : stage === 'fetch' ? 'READ_FAILED' : 'INTERNAL';
  const reason = (err as Error).message ?? String(err);
  if (code === 'INTERNAL') log.error({ err, file }, 'photo failed');
  else log.warn({ file, code, reason }, 'photo skipped: cannot be analysed');
  const deadLetter: DeadLetter = {
    v: SCHEMA_VERSION,
    id: `file:${photoId}`,
    photoId,
    uri: file,
    stage,
    code,
    reason,
    attempts: 1,
    at: new Date().toISOString(),
  };
  ingestFailure(ctx.target, deadLetter, { uri: file, contentHash });
  ctx.counters.failed++;
  ctx.counters.metrics?.ingestPhotos.inc({ status: 'failed' });
}

/**
 * CSV `photo,face,identity,width,height` for the photos of this run, in walk order; identity empty
 * when dropped/unassigned; width and height of the face box in pixels (`facepipe eval` scores a
 * photo by its largest face).
 */
export function exportAssignments(db: FaceDatabase, files: string[], out: string): string {
  const lines = ['photo,face,identity,width,height'];
  for (const file of files) {
    const faces = db.facesOfPhoto(photoIdForFile(file)).sort((a, b) => a.faceIndex - b.faceIndex);
    for (const f of faces)
      lines.push(
        [
          csvField(file),
          String(f.faceIndex),
          csvField(f.kept ? (f.identityId ?? '') : ''),
          String(Math.round(f.bbox[2] - f.bbox[0])),
          String(Math.round(f.bbox[3] - f.bbox[1])),
        ].join(','),
      );
  }
  const target = path.resolve(out);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, lines.join('\n') + '\n');
  return target;
}

export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function startProgress(total: number, enabled: boolean): cliProgress.SingleBar | undefined {
  if (!enabled) return undefined;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'photos {bar} {value}/{total} | {pps} photos/s | {fps} faces/s | eta {eta_formatted}',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { pps: '0.0', fps: '0.0' });
  return bar;
}

function rates(c: Counters, started: number): { pps: string; fps: string } {
  const s = Math.max((Date.now() - started) / 1000, 1e-3);
  return { pps: (c.processed / s).toFixed(1), fps: ((c.kept + c.dropped) / s).toFixed(1) };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
