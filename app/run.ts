/**
 * The embedded main job (`facepipe run`): photos from a folder, no Kafka. Where a photo's bytes go:
 * read here → pipeline/analyze.ts (decode, detect, align, embed, magnitude gate) → face records
 * with thumbnails → service/ingestStep.ts (store + index, online assignment) → the batch recluster
 * of service/identityService.ts → pipeline/report.ts. Failures are DeadLetter records, in the store
 * and in `<data>/dead-letter.jsonl`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { walkImageTree, type SkippedPath } from '../pipeline/imageFiles.ts';
import { appendLine, diskFullAt, isDiskFull } from '../core/files.ts';
import path from 'node:path';
import PQueue from 'p-queue';
import {
  batchInferenceWorkers,
  createAnalyzer,
  faceRecordsOf,
  readPhotoFile,
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
import type { EmbeddedFaceDatabase } from '../indexers/database.ts';
import { STORE_FILE } from '../indexers/store.ts';
import { RECLUSTER_OWED_NOTE } from '../indexers/store/migrations.ts';
import type { FaceRecord } from '../schemas/face.ts';
import { DEFAULT_DATA_DIR, openDataDir } from './dataDir.ts';
import type { ServiceMetrics } from '../api/metrics.ts';

/** Files the walker picks up (sharp decodes these); anything else in the folder is ignored. */
/** Dead-letter records of photos that could not be processed, one JSON object per line. */
export const DEAD_LETTER_FILE = 'dead-letter.jsonl';

/**
 * Store note set before a run's first change and cleared once its recluster is done: a run killed
 * in between leaves it, and the next run reclusters even when it finds nothing new.
 */
export const RECLUSTER_OWED = RECLUSTER_OWED_NOTE;

export interface RunOptions {
  /** folder to walk for photos (recursively) */
  dir: string;
  /** data folder: store, index, thumbnails, report (default ./facepipe-data) */
  dataDir?: string;
  modelsDir?: string;
  /** also write the assignment as CSV `photo,face,identity,width,height,reason` */
  exportCsv?: string;
  /** photos analysed at once (default 4: the embedder batches faces across them) */
  concurrency?: number;
  /** told after each photo: photos done of the folder's, photos/s and faces/s so far (the CLI draws the bar) */
  onProgress?: (p: RunProgress) => void;
  /** run the batch recluster after ingest when anything changed (default true) */
  recluster?: boolean;
  /** analyse photos a user erased too (their tombstones go); by default they are skipped */
  includeErased?: boolean;
  /** how far a rebuild of the index is, when opening needs one (the CLI draws the bar) */
  onRebuildProgress?: (done: number, total: number) => void;
  /** execution provider and inference-thread niceness of the analyzer created here (app/config.ts) */
  provider?: 'cpu' | 'cuda';
  inferenceNice?: number;
  /** inference worker threads of the analyzer created here (default batchInferenceWorkers: one per core for a large folder) */
  inferenceWorkers?: number;
  /** crash tests (FACEPIPE_PAUSE_AT): stop the process (SIGSTOP) at this point, to be SIGKILLed there */
  pauseAt?: 'before-recluster';
  /** an analyzer to reuse (tests, serve); otherwise one is created and closed here */
  analyzer?: Analyzer;
  /** Prometheus ingest counters to feed when the run shares a process with the lookup service */
  metrics?: Pick<ServiceMetrics, 'ingestPhotos' | 'ingestFaces'>;
}

export interface RunProgress {
  done: number;
  total: number;
  photosPerSecond: number;
  facesPerSecond: number;
}

export interface RunSummary {
  dir: string;
  dataDir: string;
  modelId: string;
  photos: {
    found: number;
    processed: number;
    skipped: number;
    changed: number;
    failed: number;
    /** photos a user erased, left alone (see --include-erased) */
    erased: number;
  };
  /** folders and links the walk did not take (also in the dead-letter file) */
  skippedPaths: SkippedPath[];
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
  return walkImageTree(dir, { skip }).files;
}

interface Counters {
  metrics?: RunOptions['metrics'];
  processed: number;
  skipped: number;
  changed: number;
  failed: number;
  erased: number;
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
  const walk = walkImageTree(opts.dir, { skip: dataDir });
  const files = walk.files;
  const analyzer =
    opts.analyzer ??
    (await createAnalyzer({
      modelsDir: opts.modelsDir,
      provider: opts.provider,
      inferenceNice: opts.inferenceNice,
      workers: opts.inferenceWorkers ?? batchInferenceWorkers(files.length),
    }));
  const opened = await openDataDir(dataDir, {
    modelsDir: opts.modelsDir,
    create: true,
    embedder: analyzer.modelId,
    onRebuildProgress: opts.onRebuildProgress,
  }).catch(async (err: unknown) => {
    if (!opts.analyzer) await analyzer.close();
    throw isDiskFull(err) ? diskFullIn(err, dataDir) : err;
  });
  const { db, identities } = opened;
  // the first failure is the one reported: closing (a checkpoint on a full disk) may fail too
  let failure: unknown;
  try {
    // rates count from here: model loading and index recovery are start-up, not throughput
    const ingestStarted = Date.now();
    const counters: Counters = {
      metrics: opts.metrics,
      processed: 0,
      skipped: 0,
      changed: 0,
      failed: 0,
      erased: 0,
      kept: 0,
      dropped: 0,
    };
    let photosDone = 0;
    const concurrency = Math.max(1, opts.concurrency ?? 4);
    const analysis = new PQueue({ concurrency });
    const deadLetters = path.join(dataDir, DEAD_LETTER_FILE);
    const target: IngestTarget = {
      db,
      identities,
      dataDir,
      deadLetters: {
        // whole lines only (a write cut short by a full disk is taken back); the ingest step
        // calls this inside the store transaction of the photo's failed row
        record: (d) => {
          appendLine(deadLetters, JSON.stringify(d));
          return true;
        },
      },
    };
    const ctx: PhotoContext = {
      analyzer,
      db,
      target,
      counters,
      includeErased: opts.includeErased === true,
      owesRecluster: false,
    };
    for (const skipped of walk.skipped) recordSkippedPath(deadLetters, skipped);
    // A photo that fails for an unexpected reason is recorded like a bad one (code INTERNAL); only
    // a failure to record it (the store itself is broken) stops the run, after the work in flight.
    // A full disk is not the photo's fault: the photo stays unrecorded (the next run takes it).
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
          fatal ??= isDiskFull(err) ? diskFullIn(err, dataDir) : err;
        } finally {
          done();
        }
        opts.onProgress?.({ done: ++photosDone, total: files.length, ...rates(counters, ingestStarted) });
      });
    }
    await analysis.onIdle();
    if (fatal) {
      throw fatal;
    }
    const ingestDone = Date.now();

    // owed by this run's changes, or by an earlier run that stopped before its recluster
    const owed = ctx.owesRecluster || db.getNote(RECLUSTER_OWED) !== undefined;
    let recluster: RunSummary['recluster'] = { ran: false };
    if (owed && opts.recluster !== false) {
      if (!ctx.owesRecluster) log.info('reclustering: the previous run stopped before its recluster');
      if (opts.pauseAt === 'before-recluster') pause('before-recluster');
      const result = identities.recluster();
      db.setNote(RECLUSTER_OWED, null);
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
        erased: counters.erased,
      },
      skippedPaths: walk.skipped,
      faces: { kept: counters.kept, dropped: counters.dropped },
      store,
      identities: store.identities,
      recluster,
      report,
      ...(exportFile ? { export: exportFile } : {}),
      ...(counters.failed > 0 || walk.skipped.length > 0 ? { deadLetters } : {}),
      seconds,
      photosPerSecond: round2(counters.processed / ingestSeconds),
      facesPerSecond: round2((counters.kept + counters.dropped) / ingestSeconds),
    };
    log.info(
      { ...summary.photos, faces: summary.faces, identities: summary.identities, seconds },
      'run finished',
    );
    return summary;
  } catch (err) {
    failure = isDiskFull(err) ? diskFullIn(err, dataDir) : err;
    throw failure;
  } finally {
    await closeKeepingFirstError(opened.close, failure, dataDir);
    if (!opts.analyzer) await analyzer.close();
  }
}

/**
 * Closes the data dir (which checkpoints the index). When the run already failed, a failure to
 * close is only logged: the first error is the one the user must see (a full disk, not the
 * checkpoint that could not be written because of it). The store needs no checkpoint to be whole;
 * the next open replays the change log.
 */
async function closeKeepingFirstError(
  close: () => Promise<void>,
  failure: unknown,
  dataDir: string,
): Promise<void> {
  try {
    await close();
  } catch (err) {
    if (failure !== undefined) {
      log.warn({ err: (err as Error).message }, 'closing the data dir after the failure also failed');
      return;
    }
    throw isDiskFull(err) ? diskFullIn(err, dataDir) : err;
  }
}

/** "disk full at PATH": the file a write named, the store for SQLite (which names none), else the data dir. */
function diskFullIn(err: unknown, dataDir: string): Error {
  const sqlite = (err as { code?: string }).code === 'SQLITE_FULL';
  return diskFullAt(err, sqlite ? path.join(dataDir, STORE_FILE) : dataDir);
}

/** Stops the process where a crash test SIGKILLs it, after saying so on stderr. */
function pause(point: string): void {
  process.stderr.write(`facepipe: paused at ${point} (FACEPIPE_PAUSE_AT)\n`);
  process.kill(process.pid, 'SIGSTOP');
}

/** A folder or link the walk could not take: said in the log and in the dead-letter file. */
function recordSkippedPath(deadLetters: string, s: SkippedPath): void {
  log.warn({ path: s.path, code: s.code, reason: s.reason }, 'skipped while walking the photo folder');
  const record = {
    v: SCHEMA_VERSION,
    id: `walk:${s.path}`,
    uri: s.path,
    stage: 'walk',
    code: s.code,
    reason: s.reason,
    attempts: 1,
    at: new Date().toISOString(),
  };
  appendLine(deadLetters, JSON.stringify(record));
}

interface PhotoContext {
  analyzer: Analyzer;
  db: EmbeddedFaceDatabase;
  target: IngestTarget;
  includeErased: boolean;
  counters: Counters;
  /** this run changed the store: the note that a recluster is owed is written */
  owesRecluster: boolean;
}

/** Before the first change of a run: a crash from here on leaves the recluster owed. */
function owesRecluster(ctx: PhotoContext): void {
  if (ctx.owesRecluster) return;
  ctx.db.setNote(RECLUSTER_OWED, new Date().toISOString());
  ctx.owesRecluster = true;
}

/** The SHA-256 of a file, read in chunks (a re-run decides "unchanged" without holding the file). */
function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * Reads and analyses one photo; returns what ingests it (the ingest step, service/ingestStep.ts),
 * to be run in walk order. An unchanged photo is skipped; one that cannot be read or analysed
 * becomes a dead letter. Only a failure of the store itself escapes (and stops the run).
 */
async function analysePhoto(file: string, ctx: PhotoContext): Promise<() => void> {
  const { db, counters } = ctx;
  const photoId = photoIdForFile(file);
  const previous = db.getPhoto(photoId);
  let bytes: Buffer;
  let contentHash: string;
  try {
    // the same bytes give the same result: a failed photo that did not change fails again. An
    // unchanged photo is recognised by a streamed hash, without holding its bytes.
    if (previous?.contentHash && (await hashFile(file)) === previous.contentHash) {
      counters.skipped++;
      counters.metrics?.ingestPhotos.inc({ status: 'skipped' });
      return () => {};
    }
    // the size is checked from the stat before anything is read
    bytes = await readPhotoFile(file, ctx.analyzer.maxBytes);
    contentHash = createHash('sha256').update(bytes).digest('hex');
  } catch (err) {
    return () => recordFailure(ctx, file, photoId, null, 'fetch', err);
  }
  // an erased photo stays erased (same path, or a copy of the same bytes) unless the user asks
  const erased = db.people.erased({ photoId, uri: file, contentHash }) !== undefined;
  if (erased && !ctx.includeErased) {
    counters.erased++;
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
    owesRecluster(ctx);
    if (erased) db.people.removeTombstones({ photoId, uri: file, contentHash });
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
  // forgetting the photo's earlier faces changes the grouping too
  if (ctx.db.facesOfPhoto(photoId).length > 0) owesRecluster(ctx);
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
 * CSV `photo,face,identity,width,height,reason` for the photos of this run, in walk order; identity
 * empty when dropped/unassigned; width and height of the face box in pixels (`facepipe eval` scores
 * a photo by its largest face); reason empty when the face has an identity, else the stored reason:
 * why a dropped face was not kept (low_magnitude, too_small, …) or why a kept one has no identity
 * (low_quality, ambiguous, no_match, removed_by_user).
 */
export function exportAssignments(db: FaceDatabase, files: string[], out: string): string {
  const lines = ['photo,face,identity,width,height,reason'];
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
          (f.kept ? f.unassignedReason : f.reason) ?? '',
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

function rates(c: Counters, started: number): { photosPerSecond: number; facesPerSecond: number } {
  const s = Math.max((Date.now() - started) / 1000, 1e-3);
  return { photosPerSecond: c.processed / s, facesPerSecond: (c.kept + c.dropped) / s };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
