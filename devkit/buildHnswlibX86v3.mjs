#!/usr/bin/env node
// Builds a second copy of hnswlib-node's native addon for x86-64-v3 (AVX2, FMA) into
// node_modules/.facepipe/hnswlib-x86-64-v3/addon.node. The npm build targets baseline x86-64 (no
// AVX), which makes HNSW distance computations markedly slower; the kNN shard workers
// (clustering/knnShardWorker.mjs) load this copy when it exists and the CPU has AVX2 and FMA, and
// the portable build otherwise. Usage: npm run build:hnswlib-x86-64-v3 (needs g++, make, python3).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.arch !== 'x64') {
  console.log(`hnswlib x86-64-v3 build: not an x86-64 machine (${process.arch}): nothing to build`);
  process.exit(0);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'node_modules', 'hnswlib-node');
const target = path.join(root, 'node_modules', '.facepipe', 'hnswlib-x86-64-v3');
const work = path.join(target, 'src-build');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
for (const f of ['binding.gyp', 'src', 'package.json'])
  cpSync(path.join(source, f), path.join(work, f), { recursive: true });
symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'));
const npm = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js', {
  paths: [path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules')],
});
execFileSync(process.execPath, [npm, 'rebuild'], {
  cwd: work,
  stdio: 'inherit',
  env: { ...process.env, CXXFLAGS: `${process.env.CXXFLAGS ?? ''} -O3 -march=x86-64-v3`.trim() },
});
cpSync(path.join(work, 'build', 'Release', 'addon.node'), path.join(target, 'addon.node'));
rmSync(work, { recursive: true, force: true });
console.log(
  `hnswlib x86-64-v3 build: ${path.join(target, 'addon.node')}${existsSync(path.join(target, 'addon.node')) ? '' : ' MISSING'}`,
);
