#!/usr/bin/env node
// Builds a second copy of hnswlib-node's native addon for x86-64-v3 (AVX2, FMA) into
// node_modules/.facepipe/hnswlib-x86-64-v3/addon.node, and beside it knngraph.node: the kNN search
// of batch clustering in one native call on every core (clustering/native/knnGraph.cc, over the
// same hnswlib sources). The npm build targets baseline x86-64 (no AVX), which makes HNSW distance
// computations markedly slower; the kNN workers (clustering/knnShardWorker.mjs) load these when
// they exist and the CPU has AVX2 and FMA, and the portable build otherwise
// (clustering/hnswlibBuild.mjs). Usage: npm run build:hnswlib-x86-64-v3 (needs g++, make,
// python3). `--if-possible` (the postinstall of `npm ci`): a failed build prints one line and exits
// 0, leaving the portable build in use.
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { buildNapiAddon, gypRebuild as nodeGypRebuild, repoRoot as root } from './nodeGyp.mjs';

const ifPossible = process.argv.includes('--if-possible');
if (process.arch !== 'x64') {
  console.log(`hnswlib x86-64-v3 build: not an x86-64 machine (${process.arch}): nothing to build`);
  process.exit(0);
}
const source = path.join(root, 'node_modules', 'hnswlib-node');
const target = path.join(root, 'node_modules', '.facepipe', 'hnswlib-x86-64-v3');
const work = path.join(target, 'src-build');
const CXXFLAGS = `${process.env.CXXFLAGS ?? ''} -O3 -march=x86-64-v3`.trim();

/** node-gyp rebuild in `dir` with the x86-64-v3 flags */
function gypRebuild(dir) {
  nodeGypRebuild(dir, { cxxflags: CXXFLAGS, quiet: ifPossible });
}

/** hnswlib-node's own addon, from its sources */
function buildAddon() {
  const dir = path.join(work, 'addon');
  mkdirSync(dir, { recursive: true });
  for (const f of ['binding.gyp', 'src', 'package.json'])
    cpSync(path.join(source, f), path.join(dir, f), { recursive: true });
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  gypRebuild(dir);
  cpSync(path.join(dir, 'build', 'Release', 'addon.node'), path.join(target, 'addon.node'));
}

/** the kNN kernel: clustering/native/knnGraph.cc over hnswlib-node's headers */
function buildKernel() {
  buildNapiAddon({
    name: 'knngraph',
    source: 'clustering/native/knnGraph.cc',
    includeDirs: [path.join(source, 'src')],
    work,
    target,
    cxxflags: CXXFLAGS,
    quiet: ifPossible,
  });
}

try {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  buildAddon();
  buildKernel();
} catch (err) {
  if (!ifPossible) throw err;
  const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
  console.log(`hnswlib x86-64-v3 build failed, the portable build stays in use: ${why}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
for (const built of ['addon.node', 'knngraph.node'].map((f) => path.join(target, f)))
  console.log(`hnswlib x86-64-v3 build: ${built}${existsSync(built) ? '' : ' MISSING'}`);
