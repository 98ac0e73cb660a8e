import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { faceIdFor, FaceRecord, SCHEMA_VERSION, type DropReason } from '../schemas/face.ts';
import {
  alignFaceInRegion,
  alignmentSourceRect,
  estimateSimilarity,
  similarityMatrix,
  type AlignedFace,
  type Point,
} from './align.ts';
import {
  decodePhoto,
  DEFAULT_DECODE,
  type DecodedPhoto,
  type DetectionCopier,
  type DecodeOptions,
  type RgbImage,
} from './decode.ts';
import { suppressContained, toOriginal, type Detection, type FaceGeometry } from './detect.ts';
import { DEFAULT_BATCH_DELAY_MS, DEFAULT_BATCH_SIZE, Embedder, type FaceEmbedding } from './embed.ts';
import { ByteBudget } from './byteBudget.ts';
import { AnalyzeError } from './errors.ts';
import { faceCues, type FaceCues } from './faceCues.ts';
import { qualityFromCues } from './qualityGate.ts';
import type { DetectionCopyFailure, DetectTask, SessionInfo } from './inferenceWorker.ts';
import { log } from '../core/log.ts';
import {
  loadManifest,
  ModelConfigError,
  modelPath,
  resolveModelsDir,
  selectModels,
  type DetectorManifest,
  type EmbedderManifest,
} from './models.ts';
import type { SessionSpec } from './session.ts';

export { AnalyzeError, type AnalyzeErrorCode } from './errors.ts';
export type { EmbedderManifest, DetectorManifest } from './models.ts';
export type { FaceEmbedding } from './embed.ts';

/**
 * Default in-flight pixel budget: four 14 MP phone photos (each about 52 MB: its full-resolution
 * face region at worst and two detection copies) or any number of small ones.
 */
export const DEFAULT_IN_FLIGHT_BYTES = 224 * 2 ** 20;

/**
 * Photos a further inference worker must have to pay for its start-up: a V8 isolate, the loader
 * and its own sessions cost about 0.5 s of CPU (6 photos: +85 ms CPU per photo), against about
 * 5 ms less CPU per photo once there is one worker per core (bench throughput, development photos).
 */
export const PHOTOS_PER_INFERENCE_WORKER = 100;

/**
 * Inference workers for a job that analyses `photos` photos (`facepipe run`): one per core (up to
 * 4) once there are enough photos to pay for them, each session then on one intra-op thread.
 * onnxruntime's run() holds its worker thread, so with a single worker one photo's detector
 * tensor, output decoding and message passing leave the other core idle, and a 2-thread pool wakes
 * its second thread for every operator: on the 2-core machine 2 workers × 1 thread cost 5–11% less
 * CPU per photo than 1 × 2 on the development photos, for one more set of sessions (about
 * +270 MiB peak there).
 */
export function batchInferenceWorkers(photos: number): number {
  const cores = os.availableParallelism();
  return Math.max(1, Math.min(4, cores, Math.ceil(photos / PHOTOS_PER_INFERENCE_WORKER)));
}

export interface AnalyzerOptions {
  /** models folder (default: resolveModelsDir()) */
  modelsDir?: string;
  /** detector / embedder by manifest name (default: the first of each task) */
  detector?: string;
  embedder?: string;
  /** execution provider: 'cuda' falls back to CPU with one log line when unavailable (default cpu) */
  provider?: 'cpu' | 'cuda';
  /** niceness of the inference threads on Linux (default 10; 0 = off): keeps the event loop responsive */
  inferenceNice?: number;
  /** onnxruntime intra-op threads per session (default: min(4, CPUs / workers)) */
  threads?: number;
  /** inference worker threads (default 1) */
  workers?: number;
  /** faces per embedding batch (default DEFAULT_BATCH_SIZE) */
  batchSize?: number;
  /** partial-batch deadline in ms (default DEFAULT_BATCH_DELAY_MS) */
  batchDelayMs?: number;
  /** pixel limit against decompression bombs (default 100 MP) */
  maxPixels?: number;
  /** encoded-size limit in bytes (default 64 MiB) */
  maxBytes?: number;
  /**
   * pixel bytes that photos being analysed at once may hold (decode to alignment), whatever the
   * caller's concurrency (default DEFAULT_IN_FLIGHT_BYTES); a larger photo runs alone
   */
  maxInFlightBytes?: number;
  /** long side of the detection copy (default 1600) */
  detectMaxSide?: number;
  /** detector score threshold (default: detector manifest thresholds.score) */
  scoreThreshold?: number;
  /** detector NMS IoU (default: detector manifest thresholds.nmsIou) */
  nmsIou?: number;
  /** one box per face: containment share (default: detector manifest thresholds.nmsContainment) */
  nmsContainment?: number;
  /** faces whose box is smaller than this (short side, original pixels) are kept=false 'too_small' (default: manifest minFaceSize) */
  minFaceSize?: number;
}

export interface AnalyzedFace {
  /** index within the photo, left to right by box x */
  faceIndex: number;
  /** [x, y, w, h] in original (EXIF-oriented) pixels */
  bbox: [number, number, number, number];
  landmarks: [number, number][];
  score: number;
  /** raw feature (not normalised) */
  embedding: Float32Array;
  /** embedding / magnitude */
  unit: Float32Array;
  magnitude: number;
  /** 0..1 per the manifest's quality mapping (magnitude, or its calibrated combination of cues) */
  quality: number;
  /** the reliability cues the quality is made of (face size, detector score, sharpness, pose) */
  cues: FaceCues;
  kept: boolean;
  reason?: DropReason;
  /** aligned face, width×height×3 RGB (112×112 for ArcFace-template models), for thumbnails */
  alignedRgb: Buffer;
  /** alignment matrix [a, −b, tx, b, a, ty] (original pixels → aligned pixels) */
  alignMatrix: number[];
  /** per-landmark distance to the template after alignment, aligned pixels */
  landmarkResiduals: number[];
}

export interface PhotoAnalysis {
  photoId: string;
  width: number;
  height: number;
  faces: AnalyzedFace[];
}

export interface Analyzer {
  modelId: string;
  dim: number;
  manifest: EmbedderManifest;
  detectorManifest: DetectorManifest;
  modelsDir: string;
  /** execution provider actually used by the embedder */
  provider: 'cpu' | 'cuda';
  /** largest photo file accepted, bytes (larger ones are FILE_TOO_LARGE without being read) */
  maxBytes: number;
  analyzeBytes(bytes: Buffer, photoId: string): Promise<PhotoAnalysis>;
  analyzeFile(file: string, photoId?: string): Promise<PhotoAnalysis>;
  /** detections on a detection copy (detector-input pixels), through the same workers as analyze's */
  detectFaces(image: RgbImage): Promise<Detection[]>;
  /** embeds already-aligned faces (embedder input size, RGB uint8), batched like analyze's faces */
  embedAligned(faces: readonly Uint8Array[]): Promise<FaceEmbedding[]>;
  close(): Promise<void>;
}

/**
 * A photo file's bytes, size checked from its stat before anything is read: a 2 GB file named
 * `.jpg` is FILE_TOO_LARGE without costing 2 GB of memory. Anything but a regular file (a FIFO
 * would block the read) is READ_FAILED.
 */
export async function readPhotoFile(file: string, maxBytes: number): Promise<Buffer> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new AnalyzeError('READ_FAILED', `not a regular file: ${file}`);
    if (st.size > maxBytes)
      throw new AnalyzeError('FILE_TOO_LARGE', `file is ${st.size} bytes, limit ${maxBytes}`);
    return await readFile(file);
  } catch (err) {
    if (err instanceof AnalyzeError) throw err;
    throw new AnalyzeError('READ_FAILED', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

interface Settings {
  decode: DecodeOptions;
  scoreThreshold: number;
  nmsIou: number;
  nmsContainment: number;
  minFaceSize: number;
}

function settingsFrom(opts: AnalyzerOptions, detector: DetectorManifest): Settings {
  return {
    decode: {
      maxPixels: opts.maxPixels ?? DEFAULT_DECODE.maxPixels,
      maxBytes: opts.maxBytes ?? DEFAULT_DECODE.maxBytes,
      detectMaxSide: opts.detectMaxSide ?? DEFAULT_DECODE.detectMaxSide,
    },
    scoreThreshold: opts.scoreThreshold ?? detector.thresholds.score,
    nmsIou: opts.nmsIou ?? detector.thresholds.nmsIou,
    nmsContainment: opts.nmsContainment ?? detector.thresholds.nmsContainment,
    minFaceSize: opts.minFaceSize ?? detector.thresholds.minFaceSize,
  };
}

function sessionSpecs(
  opts: AnalyzerOptions,
  dir: string,
  detector: DetectorManifest,
  embedder: EmbedderManifest,
  workers: number,
) {
  const threads = opts.threads ?? Math.max(1, Math.min(4, Math.floor(os.availableParallelism() / workers)));
  const common = {
    provider: opts.provider ?? 'cpu',
    intraOpThreads: threads,
    interOpThreads: 1,
  } as const;
  return {
    detector: { ...common, path: modelPath(dir, detector), memPattern: false } satisfies SessionSpec,
    embedder: { ...common, path: modelPath(dir, embedder) } satisfies SessionSpec,
  };
}

/** Opens a session in the pool and checks the manifest's input/output names against the model. */
async function checkModel(
  pool: Piscina,
  spec: SessionSpec,
  name: string,
  input: string,
  outputs: string[],
  outputField: string,
): Promise<SessionInfo> {
  let info: SessionInfo;
  try {
    info = (await pool.run(spec, { name: 'describe' })) as SessionInfo;
  } catch (err) {
    throw new ModelConfigError(
      `cannot load model "${name}" from ${spec.path}: ${(err as Error).message}`,
      spec.path,
    );
  }
  if (!info.inputNames.includes(input)) {
    throw new ModelConfigError(
      `model "${name}" (${spec.path}) has no input "${input}" (field input.name; inputs: ${info.inputNames.join(', ')})`,
      spec.path,
      'input.name',
    );
  }
  for (const o of outputs) {
    if (!info.outputNames.includes(o)) {
      throw new ModelConfigError(
        `model "${name}" (${spec.path}) has no output "${o}" (field ${outputField}; outputs: ${info.outputNames.join(', ')})`,
        spec.path,
        outputField,
      );
    }
  }
  return info;
}

/**
 * The detection copy of a large photo made in the worker pool (inferenceWorker.ts
 * `detectionCopy`): its full-resolution decode and area filter never run on the main event loop.
 */
function detectionCopyInPool(pool: Piscina): DetectionCopier {
  return async (task) => {
    let result: Uint8Array | DetectionCopyFailure;
    try {
      result = (await pool.run(task, { name: 'detectionCopy' })) as Uint8Array | DetectionCopyFailure;
    } catch (err) {
      throw new AnalyzeError(
        'INFERENCE_FAILED',
        `worker failed making the detection copy: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (!(result instanceof Uint8Array)) throw new AnalyzeError(result.code, result.message);
    return { data: Buffer.from(result.buffer, result.byteOffset, result.byteLength), ...task.small };
  };
}

export async function createAnalyzer(opts: AnalyzerOptions = {}): Promise<Analyzer> {
  const dir = opts.modelsDir ? resolveModelsDir(opts.modelsDir) : resolveModelsDir();
  const manifest = loadManifest(dir);
  const { detector, embedder } = selectModels(manifest, { detector: opts.detector, embedder: opts.embedder });
  const workers = Math.max(1, opts.workers ?? 1);
  const specs = sessionSpecs(opts, dir, detector, embedder, workers);
  const settings = settingsFrom(opts, detector);
  const pool = new Piscina({
    filename: new URL('./inferenceWorker.mjs', import.meta.url).href,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: 60_000,
    workerData: { nice: opts.inferenceNice ?? 10 },
  });
  let embedderInfo: SessionInfo;
  try {
    const strideOutputs = detector.outputs.strides.flatMap((s) => [
      `cls_${s}`,
      `obj_${s}`,
      `bbox_${s}`,
      `kps_${s}`,
    ]);
    await checkModel(
      pool,
      specs.detector,
      detector.name,
      detector.input.name,
      strideOutputs,
      'outputs.strides',
    );
    embedderInfo = await checkModel(
      pool,
      specs.embedder,
      embedder.name,
      embedder.input.name,
      [embedder.rawOutput],
      'rawOutput',
    );
  } catch (err) {
    await pool.destroy();
    throw err;
  }
  const embedStage = new Embedder(pool, specs.embedder, embedder, {
    batchSize: opts.batchSize ?? DEFAULT_BATCH_SIZE,
    batchDelayMs: opts.batchDelayMs ?? DEFAULT_BATCH_DELAY_MS,
    // one batch more than workers: the next batch waits in the pool's queue while a worker runs,
    // so workers do not idle for a round trip through the main thread between batches
    concurrency: workers + 1,
  });
  log.debug(
    {
      modelsDir: dir,
      detector: detector.name,
      embedder: embedder.name,
      provider: embedderInfo.provider,
      workers,
      threads: specs.embedder.intraOpThreads,
    },
    'analyzer ready',
  );

  async function detectFaces(image: RgbImage): Promise<Detection[]> {
    const task: DetectTask = {
      spec: specs.detector,
      inputName: detector.input.name,
      transform: {
        colorOrder: detector.input.colorOrder,
        scale: detector.input.scale,
        mean: detector.input.mean,
        std: detector.input.std,
      },
      sizeMultiple: detector.input.sizeMultiple,
      strides: detector.outputs.strides,
      scoreThreshold: settings.scoreThreshold,
      nmsIou: settings.nmsIou,
      pixels: image.data,
      width: image.width,
      height: image.height,
    };
    try {
      const found = (await pool.run(task, { name: 'detect' })) as Detection[];
      return suppressContained(found, settings.nmsContainment);
    } catch (err) {
      throw new AnalyzeError('INFERENCE_FAILED', `detector failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  const inFlight = new ByteBudget(opts.maxInFlightBytes ?? DEFAULT_IN_FLIGHT_BYTES);
  const copier = detectionCopyInPool(pool);
  const template = embedder.alignment.templatePoints as Point[];
  const alignedSize = embedder.alignment.size;

  // analyses under way: close() lets them finish, since terminating a worker thread in the middle
  // of an inference aborts the whole process
  const underWay = new Set<Promise<unknown>>();
  let closing = false;

  function analyzeBytes(bytes: Buffer, photoId: string): Promise<PhotoAnalysis> {
    if (closing) return Promise.reject(new AnalyzeError('INFERENCE_FAILED', 'the analyzer is closing'));
    const work = analyzeNow(bytes, photoId);
    underWay.add(work);
    void work.then(
      () => underWay.delete(work),
      () => underWay.delete(work),
    );
    return work;
  }

  async function analyzeNow(bytes: Buffer, photoId: string): Promise<PhotoAnalysis> {
    // pixels are held from decode to alignment only: the budget is given back before embedding
    const photo = await decodePhoto(bytes, settings.decode, (n) => inFlight.acquire(n), copier);
    const { width, height } = photo;
    let geometry: FaceGeometry[];
    let aligned: AlignedFace[];
    try {
      const { detect } = photo;
      const detections = await detectFaces(detect);
      geometry = detections
        .map((d) => toOriginal(d, detect.width / width, detect.height / height, width, height))
        .sort((p, q) => p.bbox[0] - q.bbox[0]);
      aligned = await alignPhotoFaces(photo, geometry, template, alignedSize);
    } finally {
      photo.release();
    }
    const embeddings = await embedStage.embedMany(aligned.map((a) => a.rgb)).catch((err: unknown) => {
      throw new AnalyzeError('INFERENCE_FAILED', `embedder failed: ${(err as Error).message}`, {
        cause: err,
      });
    });
    const faces = geometry.map((g, i): AnalyzedFace => {
      const e = embeddings[i]!;
      const tooSmall = Math.min(g.bbox[2], g.bbox[3]) < settings.minFaceSize;
      const cues = faceCues({
        bbox: g.bbox,
        score: g.score,
        alignedRgb: aligned[i]!.rgb,
        alignedSize: embedder.alignment.size,
        landmarkResiduals: aligned[i]!.residuals,
        templatePoints: template,
      });
      return {
        faceIndex: i,
        bbox: g.bbox,
        landmarks: g.landmarks,
        score: g.score,
        embedding: e.embedding,
        unit: e.unit,
        magnitude: e.magnitude,
        quality: qualityFromCues(embedder.quality, e.magnitude, cues),
        cues,
        kept: e.kept && !tooSmall,
        ...(tooSmall ? { reason: 'too_small' as const } : e.reason ? { reason: e.reason } : {}),
        alignedRgb: aligned[i]!.rgb,
        alignMatrix: similarityMatrix(aligned[i]!.transform),
        landmarkResiduals: aligned[i]!.residuals,
      };
    });
    return { photoId, width, height, faces };
  }

  async function analyzeFile(file: string, photoId = file): Promise<PhotoAnalysis> {
    return analyzeBytes(await readPhotoFile(file, settings.decode.maxBytes), photoId);
  }

  return {
    modelId: embedder.name,
    dim: embedder.embeddingDim,
    manifest: embedder,
    detectorManifest: detector,
    modelsDir: dir,
    provider: embedderInfo.provider,
    maxBytes: settings.decode.maxBytes,
    analyzeBytes,
    analyzeFile,
    detectFaces,
    embedAligned: (faces) => embedStage.embedMany(faces),
    close: async () => {
      closing = true;
      await Promise.allSettled([...underWay]);
      await embedStage.onIdle();
      await pool.destroy();
    },
  };
}

/** A face's aligned RGB crop (112×112×3) as the JPEG the data dir keeps as its thumbnail. */
export function thumbnailJpeg(alignedRgb: Buffer, size = 112): Promise<Buffer> {
  return sharp(alignedRgb, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/**
 * The records of an analysed photo's faces, each with its thumbnail (a JPEG of the aligned crop):
 * what both ingest paths hand to the ingest step (service/ingestStep.ts).
 */
export async function faceRecordsOf(
  photoId: string,
  modelId: string,
  analysis: Pick<PhotoAnalysis, 'faces'>,
  library?: string,
): Promise<FaceRecord[]> {
  return Promise.all(
    analysis.faces.map(async (f) => ({
      ...toFaceRecord(photoId, modelId, f, library),
      thumbnail: (await thumbnailJpeg(f.alignedRgb)).toString('base64'),
    })),
  );
}

/** The record a face becomes downstream (faces topic, store): raw embedding as a plain array. */
export function toFaceRecord(
  photoId: string,
  modelId: string,
  face: AnalyzedFace,
  library?: string,
): FaceRecord {
  return FaceRecord.parse({
    v: SCHEMA_VERSION,
    faceId: faceIdFor(photoId, modelId, face.bbox),
    photoId,
    faceIndex: face.faceIndex,
    bbox: face.bbox,
    landmarks: face.landmarks,
    score: face.score,
    embedding: Array.from(face.embedding),
    magnitude: face.magnitude,
    quality: face.quality,
    kept: face.kept,
    ...(face.reason ? { reason: face.reason } : {}),
    modelId,
    ...(library !== undefined ? { library } : {}),
  });
}

/**
 * Aligns every face of a photo from one full-resolution read of the region their warps sample (the
 * union of `alignmentSourceRect`s): for a photo larger than the detection copy, whose
 * full-resolution pixels were let go once the detection copy was made, a decode of that region only.
 */
export async function alignPhotoFaces(
  photo: DecodedPhoto,
  geometry: readonly FaceGeometry[],
  template: readonly Point[],
  size: readonly [number, number],
): Promise<AlignedFace[]> {
  if (geometry.length === 0) return [];
  const rects = geometry.map((g) =>
    alignmentSourceRect(estimateSimilarity(g.landmarks, template), size[0], size[1]),
  );
  const left = Math.min(...rects.map((r) => r.left));
  const top = Math.min(...rects.map((r) => r.top));
  const right = Math.max(...rects.map((r) => r.left + r.width));
  const bottom = Math.max(...rects.map((r) => r.top + r.height));
  const region = await photo.readRegion({ left, top, width: right - left, height: bottom - top });
  return geometry.map((g) => alignFaceInRegion(region, g.landmarks, template, size));
}
