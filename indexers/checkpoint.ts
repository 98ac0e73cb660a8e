import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  statSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { removeQuietly } from '../core/files.ts';
import { hnswFileProblem, hnswLayoutProblem } from './hnswFile.ts';
import { HnswIndex, type HnswParams } from './hnswIndex.ts';

/**
 * Index checkpoints. Each checkpoint is a new file `index-<seq>-<stamp>.hnsw` (written to a temp
 * name, fsynced, renamed), then the sidecar `index.json` naming it is replaced atomically. A crash
 * at any point leaves the previous (sidecar, file) pair intact, or the new one; never a mix.
 */
export const SIDECAR_FILE = 'index.json';
const INDEX_FILE = /^index-\d+-[0-9a-z]+\.hnsw(\.tmp)?$/;

export interface Sidecar {
  format: 1;
  /** index file name, relative to the data dir */
  file: string;
  /** store change sequence the index contains: every change ≤ seq, none after */
  seq: number;
  modelId: string;
  dim: number;
  /** searchable vectors */
  count: number;
  tombstones: number;
  bytes: number;
  /** sha256 of the index file */
  checksum: string;
  M: number;
  efConstruction: number;
  writtenAt: string;
}

export type LoadResult = { ok: true; index: HnswIndex; sidecar: Sidecar } | { ok: false; reason: string };

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function fileChecksum(file: string): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 22);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export function readSidecar(dataDir: string): Sidecar | undefined {
  const p = path.join(dataDir, SIDECAR_FILE);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as Sidecar;
}

/** The index file path the current sidecar names (whether or not it is valid). */
export function currentIndexPath(dataDir: string): string | null {
  try {
    const s = readSidecar(dataDir);
    return s ? path.join(dataDir, s.file) : null;
  } catch {
    return null;
  }
}

/** Writes `index` as the checkpoint of store sequence `seq`; returns the sidecar written. */
export function writeCheckpoint(
  dataDir: string,
  index: HnswIndex,
  meta: { seq: number; modelId: string },
): Sidecar {
  // the checkpoint being replaced: once the new sidecar is in place nothing refers to it
  const previous = currentIndexPath(dataDir);
  const file = `index-${meta.seq}-${Date.now().toString(36)}.hnsw`;
  const final = path.join(dataDir, file);
  const tmp = final + '.tmp';
  const sidecarPath = path.join(dataDir, SIDECAR_FILE);
  let sidecar: Sidecar;
  try {
    index.write(tmp);
    // hnswlib's C++ stream reports no write error: a file cut short (disk full) is found here
    const short = hnswLayoutProblem(tmp, { dim: index.dim, M: index.params.M });
    if (short) throw incompleteWrite(tmp, short);
    fsyncPath(tmp);
    renameSync(tmp, final);
    fsyncPath(dataDir);
    sidecar = {
      format: 1,
      file,
      seq: meta.seq,
      modelId: meta.modelId,
      dim: index.dim,
      count: index.size(),
      tombstones: index.tombstoneCount(),
      bytes: statSync(final).size,
      checksum: fileChecksum(final),
      M: index.params.M,
      efConstruction: index.params.efConstruction,
      writtenAt: new Date().toISOString(),
    };
    writeFileSync(sidecarPath + '.tmp', JSON.stringify(sidecar, null, 2) + '\n');
    fsyncPath(sidecarPath + '.tmp');
    renameSync(sidecarPath + '.tmp', sidecarPath);
    fsyncPath(dataDir);
  } catch (err) {
    // the previous (sidecar, file) pair stays the checkpoint; nothing of this attempt is left
    removeQuietly(tmp);
    removeQuietly(sidecarPath + '.tmp');
    if (readSidecarQuietly(dataDir)?.file !== file) removeQuietly(final);
    throw err;
  }
  if (previous && path.basename(previous) !== file) removeQuietly(previous);
  removeStaleIndexFiles(dataDir, file);
  return sidecar;
}

function readSidecarQuietly(dataDir: string): Sidecar | undefined {
  try {
    return readSidecar(dataDir);
  } catch {
    return undefined;
  }
}

/** A checkpoint file shorter than its own header says: ENOSPC when the disk is (nearly) full. */
function incompleteWrite(file: string, problem: string): Error {
  let free = Infinity;
  try {
    const st = statfsSync(path.dirname(file));
    free = st.bavail * st.bsize;
  } catch {
    // unknown: reported as an I/O error below
  }
  const full = free < 1024 * 1024;
  const err = new Error(
    full ? `disk full at ${file}` : `index checkpoint ${file} written incompletely (${problem})`,
  ) as Error & { code: string; path: string };
  err.code = full ? 'ENOSPC' : 'EIO';
  err.path = file;
  return err;
}

/**
 * Deletes index files (and temp files) other than `keep`: leftovers of earlier checkpoints or
 * crashes. Files touched in the last minute are spared: another process opening the same data
 * dir may be between writing its checkpoint and naming it in the sidecar.
 */
export function removeStaleIndexFiles(dataDir: string, keep: string | null, graceMs = 60_000): void {
  const cutoff = Date.now() - graceMs;
  for (const name of readdirSync(dataDir)) {
    if (name === keep || !INDEX_FILE.test(name)) continue;
    const file = path.join(dataDir, name);
    try {
      if (graceMs === 0 || statSync(file).mtimeMs < cutoff) removeQuietly(file);
    } catch {
      // removed meanwhile by another process
    }
  }
}

/**
 * Loads the checkpoint if it is whole and matches the store; otherwise says why not. hnswlib
 * trusts its file, so nothing reaches it before the checksum and the whole structure (header
 * fields, sizes, links) are confirmed.
 */
export function loadCheckpoint(
  dataDir: string,
  expect: { modelId: string; dim: number; storeSeq: number; params: HnswParams },
): LoadResult {
  let sidecar: Sidecar | undefined;
  try {
    sidecar = readSidecar(dataDir);
  } catch (err) {
    return { ok: false, reason: `checkpoint sidecar unreadable (${(err as Error).message})` };
  }
  if (!sidecar) return { ok: false, reason: 'no index checkpoint' };
  if (sidecar.format !== 1 || typeof sidecar.file !== 'string' || typeof sidecar.checksum !== 'string') {
    return { ok: false, reason: 'checkpoint sidecar malformed' };
  }
  if (sidecar.modelId !== expect.modelId) {
    return { ok: false, reason: `index is for model ${sidecar.modelId}, the store holds ${expect.modelId}` };
  }
  if (sidecar.dim !== expect.dim)
    return { ok: false, reason: `index dimension ${sidecar.dim} ≠ store dimension ${expect.dim}` };
  if (sidecar.seq > expect.storeSeq) {
    return { ok: false, reason: `index (seq ${sidecar.seq}) is ahead of the store (seq ${expect.storeSeq})` };
  }
  const file = path.join(dataDir, path.basename(sidecar.file));
  if (!existsSync(file)) return { ok: false, reason: `index file ${sidecar.file} missing` };
  const size = statSync(file).size;
  if (size !== sidecar.bytes)
    return {
      ok: false,
      reason: `index file truncated or altered (${size} bytes, expected ${sidecar.bytes})`,
    };
  if (fileChecksum(file) !== sidecar.checksum)
    return { ok: false, reason: 'index file checksum mismatch (corrupt)' };
  // a matching checksum only says the file is the one written: not that hnswlib can load it safely
  const problem = hnswFileProblem(file, { dim: expect.dim, M: sidecar.M });
  if (problem) return { ok: false, reason: problem };
  try {
    const params = { ...expect.params, M: sidecar.M, efConstruction: sidecar.efConstruction };
    return { ok: true, index: HnswIndex.load(file, expect.dim, params), sidecar };
  } catch (err) {
    return { ok: false, reason: `hnswlib could not read the index file (${(err as Error).message})` };
  }
}
