// Which hnswlib-node addon the kNN shard workers load (clustering/knnShardWorker.mjs): the copy
// built for x86-64-v3 (AVX2 + FMA; devkit/buildHnswlibX86v3.mjs, run by `npm ci`'s postinstall)
// when it was built, this CPU runs it and it loads, else the portable npm build. Same library and
// parameters, so the same neighbours up to float rounding; only the distance kernels differ in
// speed. Plain JavaScript: the workers start without the TypeScript loader.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TUNED_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../node_modules/.facepipe/hnswlib-x86-64-v3',
);
export const TUNED_ADDON = path.join(TUNED_DIR, 'addon.node');
/** clustering/native/knnGraph.cc, built beside the tuned addon */
export const KNN_KERNEL = path.join(TUNED_DIR, 'knngraph.node');

/** the x86-64-v3 instructions the tuned build uses (-march=x86-64-v3) that a CPU may lack */
export const TUNED_CPU_FLAGS = ['avx2', 'fma', 'bmi2'];

/** The choice alone, from the facts it depends on (a pure function, so tests can force each branch). */
export function chooseHnswlibBuild({ arch, cpuFlags, tunedExists, portable }) {
  if (portable) return { build: 'portable', reason: 'portable build asked for' };
  if (arch !== 'x64') return { build: 'portable', reason: `not an x86-64 CPU (${arch})` };
  if (!tunedExists) return { build: 'portable', reason: 'x86-64-v3 build missing' };
  const missing = TUNED_CPU_FLAGS.filter((f) => !cpuFlags.includes(f));
  if (missing.length > 0) return { build: 'portable', reason: `CPU lacks ${missing.join(', ')}` };
  return { build: 'x86-64-v3', reason: 'CPU runs x86-64-v3' };
}

/** This CPU's feature flags ([] where /proc/cpuinfo cannot be read: the portable build). */
export function cpuFlags() {
  try {
    return (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
  } catch {
    return [];
  }
}

/** The build this process would load, without loading it. */
export function hnswlibBuildHere({ portable = false, tunedPath = TUNED_ADDON } = {}) {
  return chooseHnswlibBuild({
    arch: process.arch,
    cpuFlags: process.arch === 'x64' ? cpuFlags() : [],
    tunedExists: existsSync(tunedPath),
    portable,
  });
}

/**
 * The native kNN kernel (build and search of one index on every core in one call), where the
 * x86-64-v3 build is taken and the kernel was built beside it and loads; else `kernel: null` and
 * the reason (the workers then shard the search over hnswlib-node's portable or tuned addon).
 */
export function loadKnnKernel({ portable = false, kernelPath = KNN_KERNEL } = {}) {
  const choice = hnswlibBuildHere({ portable, tunedPath: kernelPath });
  if (choice.build !== 'x86-64-v3')
    return { kernel: null, reason: choice.reason.replace('x86-64-v3 build missing', 'kNN kernel missing') };
  try {
    return { kernel: createRequire(import.meta.url)(kernelPath), reason: choice.reason };
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return { kernel: null, reason: `kNN kernel does not load: ${why}` };
  }
}

/** The chosen addon, loaded; a tuned binary that does not load (another Node ABI, a broken file) falls back. */
export function loadHnswlib({ portable = false, tunedPath = TUNED_ADDON } = {}) {
  const require = createRequire(import.meta.url);
  const choice = hnswlibBuildHere({ portable, tunedPath });
  if (choice.build === 'x86-64-v3') {
    try {
      return { lib: require(tunedPath), ...choice };
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      return {
        lib: require('hnswlib-node'),
        build: 'portable',
        reason: `x86-64-v3 build does not load: ${why}`,
      };
    }
  }
  return { lib: require('hnswlib-node'), ...choice };
}
