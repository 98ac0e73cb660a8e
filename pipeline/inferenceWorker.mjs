// Piscina worker bootstrap: registers tsx's loader in this worker thread, then loads the
// TypeScript worker module and re-exports its task functions (selected by piscina's `name`).
import os from 'node:os';
import process from 'node:process';
import { workerData } from 'piscina';
import { register } from 'tsx/esm/api';

// Linux nice values are per thread: lowering this worker's priority before onnxruntime creates its
// thread pool (threads inherit it) keeps the main event loop responsive while inference saturates
// the CPUs. The value comes from the analyzer (FACEPIPE_INFERENCE_NICE, 0 turns it off). (Elsewhere
// the value is per process: left alone.)
if (process.platform === 'linux') {
  try {
    os.setPriority(0, Number(workerData?.nice ?? 10));
  } catch {
    // not permitted here: run at normal priority
  }
}

register();
const worker = await import('./inferenceWorker.ts');

export const describe = worker.describe;
export const detect = worker.detect;
export const embed = worker.embed;
export const detectionCopy = worker.detectionCopy;
export default worker.embed;
