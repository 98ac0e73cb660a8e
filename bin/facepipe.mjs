#!/usr/bin/env node
// The `facepipe` command: the compiled programs in dist/ (bin/build.mjs, rebuilt here when a source
// changed), else the TypeScript sources through tsx's loader. Either way `npm ci` is the only set-up
// step. FACEPIPE_FROM_SOURCE=1 skips the compiled programs (what the tests compare them with).
import { programEntry } from './build.mjs';

const compiled = process.env.FACEPIPE_FROM_SOURCE === '1' ? null : await programEntry();
let main;
if (compiled) {
  ({ main } = await import(compiled));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../cli/main.ts'));
}
await main(process.argv);
