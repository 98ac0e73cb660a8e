import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The facepipe checkout (or installed package) this code runs from. Every source room, and dist/
 * where the programs are compiled to (bin/build.mjs), is one folder below it, so the same `..`
 * holds whether this module runs from source or from the bundle. Files the code ships beside
 * itself (models, web assets) are found from here, never from a module's own location, which the
 * bundle does not keep.
 */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A file or folder of the package, from its path in the repository. */
export function packagePath(...segments: string[]): string {
  return path.join(packageRoot, ...segments);
}
