// node-gyp, as the native builds of `npm ci`'s postinstall run it (devkit/buildHnswlibX86v3.mjs,
// devkit/buildNative.mjs): npm's own node-gyp, the headers of the running node where they are
// installed beside it (node-gyp would otherwise download them, and only the package registries are
// reachable), quiet under the postinstall.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(repoRoot, 'package.json'));

/** node-gyp rebuild in `dir` with `cxxflags`; the compiler's output only when `quiet` is false */
export function gypRebuild(dir, { cxxflags, quiet }) {
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', {
    paths: [path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules')],
  });
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const localHeaders = existsSync(path.join(prefix, 'include', 'node', 'common.gypi'));
  const nodedir = process.env.npm_config_nodedir ?? (localHeaders ? prefix : undefined);
  execFileSync(process.execPath, [nodeGyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], {
    cwd: dir,
    stdio: quiet ? ['ignore', 'ignore', 'pipe'] : 'inherit',
    env: { ...process.env, CXXFLAGS: cxxflags },
  });
}

/** node-addon-api's include folder */
const napiInclude = path.join(repoRoot, require('node-addon-api').include_dir);

/**
 * One N-API addon from one C++ file of the repository: a small gyp project in `work/<name>` over
 * `source` (node-addon-api, C++ exceptions on, plus `includeDirs`), built and copied to
 * `target/<name>.node`.
 */
export function buildNapiAddon({ name, source, includeDirs = [], work, target, cxxflags, quiet }) {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(repoRoot, source), path.join(dir, path.basename(source)));
  const gyp = {
    targets: [
      {
        target_name: name,
        sources: [path.basename(source)],
        include_dirs: [napiInclude, ...includeDirs],
        defines: ['NAPI_DISABLE_CPP_EXCEPTIONS'],
        'cflags!': ['-fno-exceptions'],
        'cflags_cc!': ['-fno-exceptions'],
      },
    ],
  };
  writeFileSync(path.join(dir, 'binding.gyp'), JSON.stringify(gyp, null, 2));
  gypRebuild(dir, { cxxflags, quiet });
  cpSync(path.join(dir, 'build', 'Release', `${name}.node`), path.join(target, `${name}.node`));
}
