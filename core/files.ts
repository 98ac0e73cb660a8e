import {
  closeSync,
  fstatSync,
  ftruncateSync,
  openSync,
  renameSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';

/**
 * Writing files so that a full disk is one clear error and leaves nothing half-written behind.
 * Node's file errors carry `code` ENOSPC and the `path`; SQLite says SQLITE_FULL without a path.
 * Both become one error with code ENOSPC and the path, which the CLI prints as "disk full at PATH".
 */

export interface DiskFullError extends Error {
  code: 'ENOSPC';
  path: string;
}

/** True for "no space left": ENOSPC or a quota (EDQUOT) from Node, SQLITE_FULL from SQLite. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/** The disk-full error to report: the path the failing write named, else `where`. */
export function diskFullAt(err: unknown, where: string): DiskFullError {
  const at = (err as { path?: unknown })?.path;
  const file = typeof at === 'string' && at !== '' ? at : where;
  const e = new Error(`disk full at ${file}`, { cause: err }) as DiskFullError;
  e.code = 'ENOSPC';
  e.path = file;
  return e;
}

/** Removes a file if it is there; a cleanup never hides the error that made it necessary. */
export function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

/** Writes `file` through a temp file and a rename: readers see the old file or the new, whole one. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
}

/**
 * Appends one line (a JSON record) to `file`, whole or not at all: a write cut short (disk full)
 * is cut back off, so the file never holds a torn line that the next append would run into.
 * Returns a function that takes the line back out (when what it records did not commit).
 */
export function appendLine(file: string, line: string): () => void {
  const fd = openSync(file, 'a');
  try {
    const before = fstatSync(fd).size;
    try {
      const bytes = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
    } catch (err) {
      try {
        ftruncateSync(fd, before);
        // a file this append created is not left behind empty
        if (before === 0) unlinkSync(file);
      } catch {
        // the original error is the one to report
      }
      // a write on a descriptor names no file: say which one
      const e = err as NodeJS.ErrnoException;
      if (e && typeof e === 'object' && !e.path) e.path = file;
      throw err;
    }
    return () => truncateQuietly(file, before);
  } finally {
    closeSync(fd);
  }
}

function truncateQuietly(file: string, size: number): void {
  try {
    truncateSync(file, size);
  } catch {
    // the line stays; readers skip records whose photo is not failed in the store
  }
}
