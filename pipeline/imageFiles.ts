import { readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
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

/** A path the walk did not take, and why (said to the user, recorded by `run`). */
export interface SkippedPath {
  path: string;
  /** UNREADABLE_FOLDER: cannot be listed; BROKEN_LINK: a symlink to nothing; LINK_LOOP: a symlinked
   * folder already walked (a loop, or a second way to the same folder); DUPLICATE_LINK: a symlinked
   * photo whose file is already in the walk */
  code: 'UNREADABLE_FOLDER' | 'BROKEN_LINK' | 'LINK_LOOP' | 'DUPLICATE_LINK';
  reason: string;
}

export interface WalkResult {
  files: string[];
  skipped: SkippedPath[];
}

export interface WalkOptions {
  recursive?: boolean;
  /** a folder not to enter (e.g. a data dir inside the photo folder) */
  skip?: string;
}

/**
 * Image files under `dir`, in code-point order of their names (the same order on every machine
 * and locale, so runs are reproducible). Hidden entries are ignored. Symlinks are followed, to
 * photos and to folders, each real folder and file taken once (no loops). A sub-folder that cannot
 * be listed, or a link to nothing, is skipped and reported in `skipped`; only `dir` itself not
 * being readable is an error.
 */
export function walkImageTree(dir: string, opts: WalkOptions = {}): WalkResult {
  const recursive = opts.recursive ?? true;
  const skip = opts.skip ? realOr(path.resolve(opts.skip)) : undefined;
  const files: string[] = [];
  const skipped: SkippedPath[] = [];
  const seenFolders = new Set<string>();
  const seenFiles = new Set<string>();
  const visit = (d: string, real: string, top: boolean): void => {
    seenFolders.add(real);
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      if (top) throw err;
      skipped.push({ path: d, code: 'UNREADABLE_FOLDER', reason: errText(err) });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      let target = path.join(real, e.name);
      if (e.isSymbolicLink()) {
        try {
          const st = statSync(p);
          isDir = st.isDirectory();
          isFile = st.isFile();
          target = realpathSync(p);
        } catch (err) {
          skipped.push({ path: p, code: 'BROKEN_LINK', reason: errText(err) });
          continue;
        }
      }
      if (isDir) {
        if (!recursive || target === skip) continue;
        if (seenFolders.has(target)) {
          skipped.push({ path: p, code: 'LINK_LOOP', reason: `links to ${target}, already walked` });
          continue;
        }
        visit(p, target, false);
      } else if (isFile && isImageFile(e.name)) {
        if (seenFiles.has(target)) {
          skipped.push({ path: p, code: 'DUPLICATE_LINK', reason: `links to ${target}, already taken` });
          continue;
        }
        seenFiles.add(target);
        files.push(p);
      }
    }
  };
  visit(dir, realOr(path.resolve(dir)), true);
  return { files, skipped };
}

/** The image files of `walkImageTree`; what was skipped goes to `onSkip` (default: a warning on stderr). */
export function walkImages(
  dir: string,
  opts: WalkOptions & { onSkip?: (s: SkippedPath) => void } = {},
): string[] {
  const { files, skipped } = walkImageTree(dir, opts);
  const onSkip = opts.onSkip ?? ((s: SkippedPath) => process.stderr.write(skippedLine(s)));
  for (const s of skipped) onSkip(s);
  return files;
}

/** The one line a command prints for a skipped path. */
export function skippedLine(s: SkippedPath): string {
  return `facepipe: skipped ${s.path} (${s.code}: ${s.reason})\n`;
}

function realOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return String(e?.message ?? err);
}
