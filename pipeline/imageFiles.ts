import { readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * File extensions treated as photos when a folder is walked. Formats sharp cannot decode here
 * (HEIC, BMP) are still picked up on purpose: such a photo gets a clear error and a dead-letter
 * record instead of being skipped without a word.
 */
export const IMAGE_EXTENSIONS = new Set([
  '.jpg',
  '.jpeg',
  '.png',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.avif',
  '.heic',
  '.heif',
  '.bmp',
]);

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/**
 * Image files under `dir`, in code-point order of their names (the same order on every machine
 * and locale, so runs are reproducible). Hidden entries are ignored; `skip` names a folder not to
 * enter (e.g. a data dir inside the photo folder).
 */
export function walkImages(dir: string, opts: { recursive?: boolean; skip?: string } = {}): string[] {
  const recursive = opts.recursive ?? true;
  const skip = opts.skip ? path.resolve(opts.skip) : undefined;
  const out: string[] = [];
  const visit = (d: string): void => {
    const entries = readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (recursive && path.resolve(p) !== skip) visit(p);
      } else if (e.isFile() && isImageFile(e.name)) out.push(p);
    }
  };
  visit(dir);
  return out;
}
