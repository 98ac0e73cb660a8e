#!/usr/bin/env node
// Builds facepipe's own small native addons into node_modules/.facepipe/native/ with portable flags
// (-O3, no CPU-specific instructions):
// - pixels.node, the per-pixel loops of a large photo (pipeline/native/pixels.cc: the contract's
//   downscaling filters and the model input tensor; pipeline/resample.ts and preprocess.ts fall
//   back to their JavaScript versions without it);
// - malloc.node, the allocator tuning of the programs (app/native/malloc.cc; without it glibc's
//   defaults stay).
// Usage: node devkit/buildNative.mjs (needs g++, make, python3).
// `--if-possible` (the postinstall of `npm ci`): a failed build prints one line and exits 0.
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildNapiAddon, repoRoot } from './nodeGyp.mjs';

const ifPossible = process.argv.includes('--if-possible');
const target = path.join(repoRoot, 'node_modules', '.facepipe', 'native');
const work = path.join(target, 'src-build');
const CXXFLAGS = `${process.env.CXXFLAGS ?? ''} -O3`.trim();

/** addon name → its source in the repository */
const ADDONS = { pixels: 'pipeline/native/pixels.cc', malloc: 'app/native/malloc.cc' };

let failed = false;
for (const [name, source] of Object.entries(ADDONS)) {
  try {
    rmSync(work, { recursive: true, force: true });
    buildNapiAddon({ name, source, work, target, cxxflags: CXXFLAGS, quiet: ifPossible });
  } catch (err) {
    if (!ifPossible) throw err;
    failed = true;
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    console.log(`native ${name} build failed, the JavaScript path stays in use: ${why}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
for (const name of Object.keys(ADDONS)) {
  const built = path.join(target, `${name}.node`);
  console.log(`native build: ${built}${existsSync(built) ? '' : ' MISSING'}`);
}
if (failed && !ifPossible) process.exit(1);
