// Piscina worker bootstrap when the programs run from source (vitest, benchmarks, a checkout that
// could not be compiled): registers tsx's loader in this worker thread, then loads the TypeScript
// worker module and re-exports its task functions (selected by piscina's `name`). The compiled
// programs open dist/inferenceWorker.mjs instead, the same module without the loader.
import { register } from 'tsx/esm/api';

register();
const worker = await import('./inferenceWorker.ts');

export const describe = worker.describe;
export const detect = worker.detect;
export const embed = worker.embed;
export const detectionCopy = worker.detectionCopy;
