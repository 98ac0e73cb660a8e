import os from 'node:os';
import process from 'node:process';
import * as ort from 'onnxruntime-node';
import { Piscina, workerData } from 'piscina';
import { detectionCopyPixels, type DetectionCopyTask } from './decode.ts';
import { AnalyzeError, type AnalyzeErrorCode } from './errors.ts';
import { decodeYunet, padTo, type Detection } from './detect.ts';
import { batchToNchw, writeNchw, type PixelTransform } from './preprocess.ts';
import { openSession, type OpenedSession, type SessionSpec } from './session.ts';

/**
 * Runs inside piscina worker threads (compiled to dist/inferenceWorker.mjs, or from source through
 * the tsx bootstrap inferenceWorker.mjs): onnxruntime's run() blocks its thread, so detection and
 * embedding never run on the main event loop; nor does the full-resolution decode and area filter
 * of a large photo's detection copy. Each worker keeps its own sessions, opened on first use.
 */

// Linux nice values are per thread: lowering this worker's priority before onnxruntime creates its
// thread pools (at the first session; threads inherit it) keeps the main event loop responsive
// while inference saturates the CPUs. The value comes from the analyzer (FACEPIPE_INFERENCE_NICE, 0
// turns it off). (Elsewhere the value is per process: left alone.)
if (process.platform === 'linux') {
  try {
    os.setPriority(0, Number((workerData as { nice?: number } | undefined)?.nice ?? 10));
  } catch {
    // not permitted here: run at normal priority
  }
}

const sessions = new Map<string, Promise<OpenedSession>>();

function sessionFor(spec: SessionSpec): Promise<OpenedSession> {
  const key = JSON.stringify(spec);
  let s = sessions.get(key);
  if (!s) {
    s = openSession(spec);
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

export interface SessionInfo {
  provider: 'cpu' | 'cuda';
  inputNames: readonly string[];
  outputNames: readonly string[];
}

export async function describe(spec: SessionSpec): Promise<SessionInfo> {
  const { session, provider } = await sessionFor(spec);
  return { provider, inputNames: session.inputNames, outputNames: session.outputNames };
}

export interface DetectTask {
  spec: SessionSpec;
  inputName: string;
  transform: PixelTransform;
  sizeMultiple: number;
  strides: number[];
  scoreThreshold: number;
  nmsIou: number;
  pixels: Uint8Array;
  width: number;
  height: number;
}

/**
 * The detector input of this worker, reused from photo to photo: a fresh 20 MB Float32Array per
 * photo costs more in page faults and zeroing (system time) than filling it does.
 */
let detectorInput = new Float32Array(0);

/** The padded NCHW detector input for one photo, in this worker's reusable buffer. */
function detectorTensorData(task: DetectTask, w: number, h: number): Float32Array {
  const length = 3 * w * h;
  if (detectorInput.length < length) detectorInput = new Float32Array(length);
  const data = detectorInput.subarray(0, length);
  writeNchw(task.pixels, task.width, task.height, task.transform, data, 0, w, h);
  // the padding (right columns, bottom rows of each plane) must be zero: the buffer held another photo
  const plane = w * h;
  for (let c = 0; c < 3; c++) {
    const base = c * plane;
    if (w > task.width)
      for (let y = 0; y < task.height; y++) data.fill(0, base + y * w + task.width, base + (y + 1) * w);
    data.fill(0, base + task.height * w, base + plane);
  }
  return data;
}

export async function detect(task: DetectTask): Promise<Detection[]> {
  const { session } = await sessionFor(task.spec);
  const w = padTo(task.width, task.sizeMultiple);
  const h = padTo(task.height, task.sizeMultiple);
  const data = detectorTensorData(task, w, h);
  const outputs = await session.run({ [task.inputName]: new ort.Tensor('float32', data, [1, 3, h, w]) });
  return decodeYunet(outputs as unknown as Record<string, { data: Float32Array }>, w, h, task.strides, {
    scoreThreshold: task.scoreThreshold,
    nmsIou: task.nmsIou,
  });
}

export interface EmbedTask {
  spec: SessionSpec;
  inputName: string;
  outputName: string;
  transform: PixelTransform;
  width: number;
  height: number;
  /** `count` aligned RGB faces, concatenated (count×height×width×3) */
  faces: Uint8Array;
  count: number;
}

/** Raw features of a batch of aligned faces, concatenated (count × dim). */
export async function embed(task: EmbedTask): Promise<Float32Array> {
  const { session } = await sessionFor(task.spec);
  const faceBytes = task.width * task.height * 3;
  const images = Array.from({ length: task.count }, (_, i) =>
    task.faces.subarray(i * faceBytes, (i + 1) * faceBytes),
  );
  const input = batchToNchw(images, task.width, task.height, task.transform);
  const outputs = await session.run(
    { [task.inputName]: new ort.Tensor('float32', input, [task.count, 3, task.height, task.width]) },
    [task.outputName],
  );
  return Float32Array.from(outputs[task.outputName]!.data as Float32Array);
}

/** Why a detection copy could not be made: an AnalyzeError's stable code, carried across threads. */
export interface DetectionCopyFailure {
  code: AnalyzeErrorCode;
  message: string;
}

/**
 * A large photo's detection copy (decode.ts `detectionCopyPixels`), made in this worker: its
 * full-resolution pixels live and die here. The copy's bytes are moved to the caller, not cloned.
 */
export async function detectionCopy(task: DetectionCopyTask): Promise<Uint8Array | DetectionCopyFailure> {
  let data: Uint8Array;
  try {
    data = (await detectionCopyPixels(task)).data;
  } catch (err) {
    if (err instanceof AnalyzeError) return { code: err.code, message: err.message };
    throw err;
  }
  // a small Buffer may sit in Node's shared pool, which must not be moved away
  const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
  return Piscina.move(own) as Uint8Array;
}
