// The programs compiled from the TypeScript sources into dist/ (git-ignored): one ES module for the
// command line and one per worker-thread entry, npm packages left as imports. `npm ci` runs it
// (postinstall), and bin/facepipe.mjs runs it again when a source changed since, so an edited
// checkout never runs stale code and there is still no build step to forget.
//
// Why compile at all: under tsx every module of every thread is resolved and loaded through the
// loader hooks' own thread, and each inference worker registers the loader again. That cost about
// 0.7 CPU s and 50 MB per `facepipe analyze` (measured on the bundled examples: 2.6 → 1.9 CPU s),
// which is most of what a short run spends outside the models.
//
// dist/ sits one level below the repository root like every source room, so the paths the code
// derives from its own location (`..` to the models, node_modules/.facepipe, api/web/assets) are the
// same from the bundle as from the sources.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const distDir = path.join(repoRoot, 'dist');
const STAMP = path.join(distDir, 'sources.sha256');

/** dist file → source entry. The worker files keep the names the code opens them by (`new URL`). */
const ENTRIES = {
  facepipe: 'cli/main.ts',
  inferenceWorker: 'pipeline/inferenceWorker.ts',
  knnShardWorker: 'clustering/knnShardWorker.mjs',
};

/** the source files the last build read (esbuild's metafile), beside its stamp */
const INPUTS = path.join(distDir, 'inputs.json');

/**
 * What a build depends on: each of its `inputs` (the repository files esbuild read for it), the
 * lock file and this script, with its size and modification time. Stat calls only (about 2 ms), so
 * every start can afford it. A source that no program imports is not an input: changing it
 * rebuilds nothing, and a new import changes the file that makes it.
 */
function dependencies(inputs) {
  const files = [...inputs, 'package-lock.json', path.relative(repoRoot, fileURLToPath(import.meta.url))];
  return files.sort().map((file) => {
    const st = statSync(path.join(repoRoot, file), { throwIfNoEntry: false });
    return { file, size: st?.size ?? -1, mtimeMs: st?.mtimeMs ?? -1 };
  });
}

function fingerprintOf(deps) {
  const hash = createHash('sha256');
  for (const d of deps) hash.update(`${d.file}\0${d.size}\0${d.mtimeMs}\n`);
  return hash.digest('hex');
}

/** the fingerprint of a build over `inputs`, from the files as they are now */
export function sourcesFingerprint(inputs) {
  return fingerprintOf(dependencies(inputs));
}

/** a file's text, or undefined where it cannot be read */
function readIfThere(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** the inputs of the build in dist/, or undefined where there is none (or it is not a list) */
export function builtInputs() {
  try {
    const inputs = JSON.parse(readIfThere(INPUTS) ?? 'null');
    return Array.isArray(inputs) ? inputs : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Compiles the entries. Written to a private folder first and moved in file by file (a rename is
 * atomic), the stamp last: processes started at the same time on a stale dist/ may each build, and
 * as they build the same sources, whichever file lands last is the same file.
 */
export async function build() {
  const { build: esbuild } = await import('esbuild');
  const started = Date.now();
  const staging = path.join(distDir, `.staging-${process.pid}-${started}`);
  mkdirSync(staging, { recursive: true });
  try {
    const { metafile } = await esbuild({
      absWorkingDir: repoRoot,
      entryPoints: Object.entries(ENTRIES).map(([out, src]) => ({ in: src, out })),
      outdir: staging,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'linked',
      metafile: true,
      logLevel: 'warning',
    });
    const inputs = Object.keys(metafile.inputs)
      .filter((file) => !file.startsWith('node_modules/'))
      .sort();
    for (const file of readdirSync(staging)) renameSync(path.join(staging, file), path.join(distDir, file));
    writeFileSync(INPUTS, JSON.stringify(inputs, null, 1) + '\n');
    // a source saved while esbuild read them may be in the bundle in its old form: no stamp then,
    // so the next start builds again
    const deps = dependencies(inputs);
    if (deps.some((d) => d.mtimeMs >= started - 1000)) rmSync(STAMP, { force: true });
    else writeFileSync(STAMP, fingerprintOf(deps) + '\n');
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The compiled command line's module URL, built first when the sources changed; undefined when it
 * cannot be built here (esbuild missing, a read-only checkout, a source that does not compile), in
 * which case the caller runs the sources through tsx, which reports a source error in full.
 */
export async function programEntry() {
  try {
    const inputs = builtInputs();
    const missing =
      !inputs ||
      Object.keys(ENTRIES).some(
        (name) => !statSync(path.join(distDir, `${name}.mjs`), { throwIfNoEntry: false }),
      );
    if (missing || readIfThere(STAMP)?.trim() !== sourcesFingerprint(inputs)) await build();
    return pathToFileURL(path.join(distDir, 'facepipe.mjs')).href;
  } catch {
    return undefined;
  }
}

// `node bin/build.mjs [--if-possible]` (npm ci's postinstall): build now;
// `node bin/build.mjs --fingerprint`: print the fingerprint of the last build's inputs as they are now
// (what its stamp holds while they are unchanged)
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--fingerprint')) {
    process.stdout.write(sourcesFingerprint(builtInputs() ?? []) + '\n');
  } else {
    try {
      await build();
      process.stdout.write(`facepipe programs compiled: ${path.relative(repoRoot, distDir)}/\n`);
    } catch (err) {
      if (!process.argv.includes('--if-possible')) throw err;
      process.stdout.write(`facepipe programs not compiled (${err.message}); they run through tsx\n`);
    }
  }
}
