// Types of clustering/hnswlibBuild.mjs (plain JavaScript, shared with the kNN shard workers).
export type HnswlibBuild = 'x86-64-v3' | 'portable';
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
