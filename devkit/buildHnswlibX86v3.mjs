#!/usr/bin/env node
// Builds a second copy of hnswlib-node's native addon for x86-64-v3 (AVX2, FMA) into
// node_modules/.facepipe/hnswlib-x86-64-v3/addon.node. The npm build targets baseline x86-64 (no
// AVX), which makes HNSW distance computations markedly slower; the kNN shard workers
// (clustering/knnShardWorker.mjs) load this copy when it exists and the CPU has AVX2 and FMA, and
// the portable build otherwise (clustering/hnswlibBuild.mjs). Usage: npm run build:hnswlib-x86-64-v3
// (needs g++, make, python3). `--if-possible` (the postinstall of `npm ci`): a failed build prints
// one line and exits 0, leaving the portable build in use.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ifPossible = process.argv.includes('--if-possible');
if (process.arch !== 'x64') {
  console.log(`hnswlib x86-64-v3 build: not an x86-64 machine (${process.arch}): nothing to build`);
  process.exit(0);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'node_modules', 'hnswlib-node');
const target = path.join(root, 'node_modules', '.facepipe', 'hnswlib-x86-64-v3');
const work = path.join(target, 'src-build');

function build() {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  for (const f of ['binding.gyp', 'src', 'package.json'])
    cpSync(path.join(source, f), path.join(work, f), { recursive: true });
  symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'));
  const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js', {
    paths: [path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules')],
  });
  execFileSync(process.execPath, [nodeGyp, 'rebuild'], {
    cwd: work,
    // quiet under the postinstall: the compiler's output only when run by name
    stdio: ifPossible ? ['ignore', 'ignore', 'pipe'] : 'inherit',
    env: { ...process.env, CXXFLAGS: `${process.env.CXXFLAGS ?? ''} -O3 -march=x86-64-v3`.trim() },
  });
  cpSync(path.join(work, 'build', 'Release', 'addon.node'), path.join(target, 'addon.node'));
}

try {
  build();
} catch (err) {
  if (!ifPossible) throw err;
  const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
  console.log(`hnswlib x86-64-v3 build failed, the portable build stays in use: ${why}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
const built = path.join(target, 'addon.node');
console.log(`hnswlib x86-64-v3 build: ${built}${existsSync(built) ? '' : ' MISSING'}`);
