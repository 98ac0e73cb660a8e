// Types of clustering/hnswlibBuild.mjs (plain JavaScript, shared with the kNN shard workers).
export type HnswlibBuild = 'x86-64-v3' | 'portable';
/** how the kNN search ran: the native kernel on every core, or hnswlib-node shards in worker threads */
export type KnnEngine = 'kernel' | 'shards';
export interface HnswlibChoice {
  build: HnswlibBuild;
  reason: string;
}
export const TUNED_ADDON: string;
export const TUNED_CPU_FLAGS: readonly string[];
export function chooseHnswlibBuild(facts: {
  arch: string;
  cpuFlags: readonly string[];
  tunedExists: boolean;
  portable: boolean;
}): HnswlibChoice;
export function cpuFlags(): string[];
export function hnswlibBuildHere(opts?: { portable?: boolean; tunedPath?: string }): HnswlibChoice;
export function loadHnswlib(opts?: {
  portable?: boolean;
  tunedPath?: string;
}): HnswlibChoice & { lib: typeof import('hnswlib-node') };
export const KNN_KERNEL: string;
export interface KnnKernel {
  knnGraph(o: {
    vectors: Float32Array;
    dim: number;
    indexed: Int32Array;
    queries: Int32Array;
    k: number;
    M: number;
    efConstruction: number;
    ef: number;
    seed: number;
    threads: number;
    outLabels: Int32Array;
    outCos: Float32Array;
  }): void;
}
export function loadKnnKernel(opts?: { portable?: boolean; kernelPath?: string }): {
  kernel: KnnKernel | null;
  reason: string;
};
