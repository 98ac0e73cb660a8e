import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { walkImageTree, type SkippedPath } from '../pipeline/imageFiles.ts';
import { appendLine, diskFullAt, isDiskFull } from '../core/files.ts';
import path from 'node:path';
import PQueue from 'p-queue';
import cliProgress from 'cli-progress';
import {
  createAnalyzer,
  toFaceRecord,
  readPhotoFile,
  AnalyzeError,
  type Analyzer,
  type PhotoAnalysis,
} from '../pipeline/analyze.ts';
import { log } from '../core/log.ts';
import { removeThumbnails, writeReport, writeThumbnail } from '../pipeline/report.ts';
import { indexFaceRecords } from '../service/ingestStep.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import type { EmbeddedFaceDatabase } from '../indexers/database.ts';
import { STORE_FILE } from '../indexers/store.ts';
import type { IdentityService } from '../service/identityService.ts';
import { DEFAULT_DATA_DIR, openDataDir } from './dataDir.ts';
import type { ServiceMetrics } from '../api/metrics.ts';

/** Files the walker picks up (sharp decodes these); anything else in the folder is ignored. */
/** Dead-letter records of photos that could not be processed, one JSON object per line. */
export const DEAD_LETTER_FILE = 'dead-letter.jsonl';

/**
 * Store note set before a run's first change and cleared once its recluster is done: a run killed
 * in between leaves it, and the next run reclusters even when it finds nothing new.
 */
export const RECLUSTER_OWED = 'recluster_owed';

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

/** Deterministic photo id from the absolute path: the same file is the same photo on every run. */
export function photoIdForPath(file: string): string {
  return 'p_' + createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 24);
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
  kept: number;
  dropped: number;
}

/**
 * `facepipe run`: walk a folder, analyse every new or changed photo, index and assign its faces,
 * recluster, then write the report (and the CSV). The same stages as the Kafka path in one process:
 * analysis runs `concurrency` photos at a time (their faces share embedding batches), the index
 * stage is a single writer behind a queue of one, and each analysis slot waits for its photo to be
 * indexed, so memory stays bounded whatever the folder size.
 */
export async function runEmbedded(opts: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  if (!existsSync(opts.dir) || !statSync(opts.dir).isDirectory())
    throw new Error(`not a folder: ${opts.dir}`);
  const dataDir = path.resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const walk = walkImageTree(opts.dir, { skip: dataDir });
  const files = walk.files;
  const analyzer = opts.analyzer ?? (await createAnalyzer({ modelsDir: opts.modelsDir }));
  const opened = await openDataDir(dataDir, {
    modelsDir: opts.modelsDir,
    create: true,
    embedder: analyzer.modelId,
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
      kept: 0,
      dropped: 0,
    };
    const bar = startProgress(files.length, opts.progress ?? process.stderr.isTTY === true);
    const concurrency = Math.max(1, opts.concurrency ?? 4);
    const analysis = new PQueue({ concurrency });
    const indexing = new PQueue({ concurrency: 1 });
    const deadLetters = path.join(dataDir, DEAD_LETTER_FILE);

    const ctx: PhotoContext = {
      analyzer,
      db,
      identities,
      dataDir,
      indexing,
      counters,
      deadLetters,
      owesRecluster: false,
    };
    for (const skipped of walk.skipped) recordSkippedPath(ctx, skipped);
    // A photo that fails for an unexpected reason is recorded like a bad one (code INTERNAL). A full
    // disk is not the photo's fault: the photo stays unrecorded (the next run takes it) and the run
    // stops, after the work in flight, as does a failure to record (the store itself is broken).
    let fatal: unknown;
    for (const file of files) {
      if (fatal) break;
      await analysis.onSizeLessThan(concurrency);
      void analysis.add(async () => {
        if (fatal) return;
        try {
          await processPhoto(file, ctx);
        } catch (err) {
          if (isDiskFull(err)) fatal ??= diskFullIn(err, dataDir);
          else
            await indexing
              .add(() => recordFailure(ctx, file, photoIdForPath(file), null, err))
              .catch((e: unknown) => (fatal ??= isDiskFull(e) ? diskFullIn(e, dataDir) : e));
        }
        bar?.increment(1, rates(counters, ingestStarted));
      });
    }
    await analysis.onIdle();
    await indexing.onIdle();
    if (fatal) {
      bar?.stop();
      throw fatal;
    }
    const ingestDone = Date.now();
    bar?.stop();

    // owed by this run's changes, or by an earlier run that stopped before its recluster
    const owed = ctx.owesRecluster || db.getNote(RECLUSTER_OWED) !== undefined;
    let recluster: RunSummary['recluster'] = { ran: false };
    if (owed && opts.recluster !== false) {
      if (!ctx.owesRecluster) log.info('reclustering: the previous run stopped before its recluster');
      pauseAt('before-recluster');
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

/**
 * FACEPIPE_PAUSE_AT=<point> stops the process (SIGSTOP) at that point after saying so on stderr,
 * for the crash tests: they SIGKILL it there, exactly between two steps.
 */
function pauseAt(point: string): void {
  if (process.env.FACEPIPE_PAUSE_AT !== point) return;
  process.stderr.write(`facepipe: paused at ${point} (FACEPIPE_PAUSE_AT)\n`);
  process.kill(process.pid, 'SIGSTOP');
}

interface PhotoContext {
  analyzer: Analyzer;
  db: EmbeddedFaceDatabase;
  identities: IdentityService;
  dataDir: string;
  indexing: PQueue;
  counters: Counters;
  deadLetters: string;
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

async function processPhoto(file: string, ctx: PhotoContext): Promise<void> {
  const { db, counters } = ctx;
  const photoId = photoIdForPath(file);
  const previous = db.getPhoto(photoId);
  let bytes: Buffer;
  let contentHash: string;
  try {
    // an unchanged photo is recognised by a streamed hash, without holding its bytes
    if (previous?.contentHash && (await hashFile(file)) === previous.contentHash) {
      counters.skipped++;
      counters.metrics?.ingestPhotos.inc({ status: 'skipped' });
      return;
    }
    // the size is checked from the stat before anything is read
    bytes = await readPhotoFile(file, ctx.analyzer.maxBytes);
    contentHash = createHash('sha256').update(bytes).digest('hex');
  } catch (err) {
    const e = err instanceof AnalyzeError ? err : new AnalyzeError('READ_FAILED', (err as Error).message);
    return ctx.indexing.add(() => recordFailure(ctx, file, photoId, null, e));
  }
  let analysis: PhotoAnalysis;
  try {
    analysis = await ctx.analyzer.analyzeBytes(bytes, photoId);
  } catch (err) {
    return ctx.indexing.add(() => recordFailure(ctx, file, photoId, contentHash, err));
  }
  const records = analysis.faces.map((f) => toFaceRecord(photoId, ctx.analyzer.modelId, f));
  await Promise.all(
    analysis.faces.map((f, i) => writeThumbnail(ctx.dataDir, records[i]!.faceId, f.alignedRgb)),
  );
  await ctx.indexing.add(() => {
    owesRecluster(ctx);
    // Changed content: the old faces are forgotten first (their ids may differ from the new ones).
    if (previous) {
      const stale = db
        .facesOfPhoto(photoId)
        .map((f) => f.faceId)
        .filter((id) => !records.some((r) => r.faceId === id));
      db.forgetPhoto(photoId);
      removeThumbnails(ctx.dataDir, stale);
      counters.changed++;
    }
    indexFaceRecords(db, ctx.identities, records);
    // The photo row goes last: it is the "done" marker a re-run trusts.
    db.upsertPhoto({
      photoId,
      uri: file,
      library: null,
      width: analysis.width,
      height: analysis.height,
      contentHash,
      status: 'done',
      error: null,
    });
    counters.processed++;
    for (const r of records) {
      if (r.kept) counters.kept++;
      else counters.dropped++;
      counters.metrics?.ingestFaces.inc({ kept: String(r.kept) });
    }
    counters.metrics?.ingestPhotos.inc({ status: 'done' });
  });
}

/** A photo that cannot be processed is recorded (store + dead-letter file) and the run carries on. */
function recordFailure(
  ctx: PhotoContext,
  file: string,
  photoId: string,
  contentHash: string | null,
  err: unknown,
): void {
  const code = err instanceof AnalyzeError ? err.code : 'INTERNAL';
  const reason = (err as Error).message ?? String(err);
  if (code === 'INTERNAL') log.error({ err, file }, 'photo failed');
  else log.warn({ file, code, reason }, 'photo skipped: cannot be analysed');
  if (ctx.db.getPhoto(photoId)) {
    const faces = ctx.db.facesOfPhoto(photoId).map((f) => f.faceId);
    if (faces.length > 0) owesRecluster(ctx);
    removeThumbnails(ctx.dataDir, faces);
    ctx.db.forgetPhoto(photoId);
  }
  const record = { v: 1, photoId, uri: file, stage: 'analyze', code, reason, at: new Date().toISOString() };
  // the store row and the dead-letter line together or neither: the line is appended inside the
  // transaction (a failed append, disk full, rolls the row back) and taken out again when the
  // commit fails
  let takeBack: (() => void) | undefined;
  try {
    ctx.db.transaction(() => {
      ctx.db.upsertPhoto({
        photoId,
        uri: file,
        library: null,
        width: null,
        height: null,
        contentHash,
        status: 'failed',
        error: `${code}: ${reason}`,
      });
      takeBack = appendLine(ctx.deadLetters, JSON.stringify(record));
    });
  } catch (e) {
    takeBack?.();
    throw e;
  }
  ctx.counters.failed++;
  ctx.counters.metrics?.ingestPhotos.inc({ status: 'failed' });
}

/** A folder or link the walk could not take: said on stderr and in the dead-letter file. */
function recordSkippedPath(ctx: PhotoContext, s: SkippedPath): void {
  log.warn({ path: s.path, code: s.code, reason: s.reason }, 'skipped while walking the photo folder');
  const record = {
    v: 1,
    photoId: null,
    uri: s.path,
    stage: 'walk',
    code: s.code,
    reason: s.reason,
    at: new Date().toISOString(),
  };
  appendLine(ctx.deadLetters, JSON.stringify(record));
}

/**
 * CSV `photo,face,identity,width,height` for the photos of this run, in walk order; identity empty
 * when dropped/unassigned; width and height of the face box in pixels (`facepipe eval` scores a
 * photo by its largest face).
 */
export function exportAssignments(db: FaceDatabase, files: string[], out: string): string {
  const lines = ['photo,face,identity,width,height'];
  for (const file of files) {
    const faces = db.facesOfPhoto(photoIdForPath(file)).sort((a, b) => a.faceIndex - b.faceIndex);
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
