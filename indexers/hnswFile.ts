import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/**
 * Structural check of an hnswlib index file before hnswlib sees it. hnswlib trusts its file: a
 * header count, offset or link that does not fit makes it read or write out of bounds (a
 * segfault, not an exception), so a file whose checksum matches its sidecar but whose content is
 * wrong (written by a bug, crafted, or damaged before the checksum was taken) must be refused
 * here. Layout (hnswalg.h saveIndex): a 96-byte header, `count` level-0 records of
 * [u16 link count, u16 flags][maxM0 × u32 links][dim × f32][u64 label], then per element a u32
 * byte size of its upper-level link lists followed by `level` blocks of [u32 count][maxM × u32].
 */
export interface HnswHeader {
  offsetLevel0: number;
  maxElements: number;
  count: number;
  sizeDataPerElement: number;
  labelOffset: number;
  offsetData: number;
  maxLevel: number;
  enterPoint: number;
  maxM: number;
  maxM0: number;
  M: number;
  mult: number;
  efConstruction: number;
}

const HEADER_BYTES = 96;
/** hnswlib's level draw gives ~ln(n)/ln(M) levels; far beyond this is not a real file */
const MAX_LEVEL = 64;
const EMPTY_ENTRY_POINT = 0xffffffff;

export function readHnswHeader(head: Buffer): HnswHeader {
  const u64 = (at: number): number => Number(head.readBigUInt64LE(at));
  return {
    offsetLevel0: u64(0),
    maxElements: u64(8),
    count: u64(16),
    sizeDataPerElement: u64(24),
    labelOffset: u64(32),
    offsetData: u64(40),
    maxLevel: head.readInt32LE(48),
    enterPoint: head.readUInt32LE(52),
    maxM: u64(56),
    maxM0: u64(64),
    M: u64(72),
    mult: head.readDoubleLE(80),
    efConstruction: u64(88),
  };
}

/** Reads a file front to back in large chunks, handing out fixed-size pieces. */
class SequentialReader {
  private buf = Buffer.alloc(0);
  private at = 0;
  private filePos: number;
  constructor(
    private readonly fd: number,
    start: number,
    private readonly end: number,
  ) {
    this.filePos = start;
  }

  /** The next `n` bytes (a view valid until the next call), or undefined past the end. */
  take(n: number): Buffer | undefined {
    if (this.buf.length - this.at < n) {
      const rest = this.buf.subarray(this.at);
      const want = Math.min(Math.max(n, 1 << 22), this.end - this.filePos + rest.length);
      if (want < n) return undefined;
      const next = Buffer.allocUnsafe(want);
      rest.copy(next, 0);
      let filled = rest.length;
      while (filled < want) {
        const got = readSync(this.fd, next, filled, want - filled, this.filePos);
        if (got <= 0) return undefined;
        filled += got;
        this.filePos += got;
      }
      this.buf = next;
      this.at = 0;
    }
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

/**
 * Returns why `file` is not a well-formed hnswlib inner-product index of dimension `dim` and
 * degree `M`, or null when it is: every header field agrees with the others and with the file
 * size, and every link points at an element that exists on that level.
 */
export function hnswFileProblem(file: string, expect: { dim: number; M: number }): string | null {
  return inspect(file, expect, true);
}

/**
 * The cheap part of `hnswFileProblem`: the header, and the file size against the sizes it
 * records (reads the header and the small upper-link section, not the vectors). hnswlib writes
 * through a C++ stream that reports no error, so this is how a checkpoint cut short by a full
 * disk is caught before it is named in the sidecar.
 */
export function hnswLayoutProblem(file: string, expect: { dim: number; M: number }): string | null {
  return inspect(file, expect, false);
}

function inspect(file: string, expect: { dim: number; M: number }, links: boolean): string | null {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < HEADER_BYTES) return `index file has ${size} bytes, less than its header`;
    const head = Buffer.alloc(HEADER_BYTES);
    if (readSync(fd, head, 0, HEADER_BYTES, 0) !== HEADER_BYTES) return 'index file header unreadable';
    const h = readHnswHeader(head);
    const headerProblem = checkHeader(h, expect, size);
    if (headerProblem) return `index file header: ${headerProblem}`;
    const levels = readLevels(fd, h, size);
    if (typeof levels === 'string') return levels;
    return links ? checkLinks(fd, h, size, levels) : null;
  } finally {
    closeSync(fd);
  }
}

function checkHeader(h: HnswHeader, expect: { dim: number; M: number }, size: number): string | null {
  const linksLevel0 = h.maxM0 * 4 + 4;
  if (h.offsetLevel0 !== 0) return `level-0 offset ${h.offsetLevel0} ≠ 0`;
  if (h.M !== expect.M || h.maxM !== expect.M || h.maxM0 !== 2 * expect.M)
    return `degree M=${h.M} maxM=${h.maxM} maxM0=${h.maxM0}, expected M=${expect.M}`;
  if (h.offsetData !== linksLevel0) return `data offset ${h.offsetData} ≠ ${linksLevel0}`;
  if (h.labelOffset !== h.offsetData + expect.dim * 4)
    return `label offset ${h.labelOffset} does not fit dimension ${expect.dim}`;
  if (h.sizeDataPerElement !== h.labelOffset + 8)
    return `element size ${h.sizeDataPerElement} ≠ ${h.labelOffset + 8}`;
  if (h.count > h.maxElements) return `${h.count} elements exceed the capacity ${h.maxElements}`;
  // capacity grows by doubling (or 1.1× on a rebuild) from 1024: far more is not our file, and
  // hnswlib would allocate it all
  if (h.maxElements > 2 * h.count + 2048) return `capacity ${h.maxElements} for ${h.count} elements`;
  if (!(h.mult > 0) || !Number.isFinite(h.mult)) return `level multiplier ${h.mult}`;
  if (h.efConstruction < 1 || h.efConstruction > 1 << 20) return `efConstruction ${h.efConstruction}`;
  if (HEADER_BYTES + h.count * h.sizeDataPerElement + h.count * 4 > size)
    return `${h.count} elements do not fit in ${size} bytes`;
  if (h.count === 0) {
    if (h.enterPoint !== EMPTY_ENTRY_POINT && h.enterPoint !== 0)
      return `entry point ${h.enterPoint} in an empty index`;
  } else {
    if (h.enterPoint >= h.count) return `entry point ${h.enterPoint} outside ${h.count} elements`;
    if (h.maxLevel < 0 || h.maxLevel > MAX_LEVEL) return `top level ${h.maxLevel}`;
  }
  return null;
}

/** Every element's level, from the upper-link section, which must end exactly at the file's end. */
function readLevels(fd: number, h: HnswHeader, size: number): Uint8Array | string {
  const linksUpper = h.maxM * 4 + 4;
  const upperStart = HEADER_BYTES + h.count * h.sizeDataPerElement;
  const levels = new Uint8Array(h.count);
  const reader = new SequentialReader(fd, upperStart, size);
  let end = upperStart;
  for (let i = 0; i < h.count; i++) {
    const sizeField = reader.take(4);
    if (!sizeField) return `upper links of element ${i} missing (file ends)`;
    const bytes = sizeField.readUInt32LE(0);
    if (bytes % linksUpper !== 0) return `upper links of element ${i}: ${bytes} bytes`;
    const level = bytes / linksUpper;
    if (level > h.maxLevel) return `element ${i} has level ${level} above the top ${h.maxLevel}`;
    levels[i] = level;
    if (bytes > 0 && !reader.take(bytes)) return `upper links of element ${i} cut short`;
    end += 4 + bytes;
  }
  if (end !== size) return `index file is ${size} bytes, its contents ${end}`;
  if (h.count > 0 && levels[h.enterPoint] !== h.maxLevel)
    return `entry point ${h.enterPoint} has level ${levels[h.enterPoint]}, the top is ${h.maxLevel}`;
  return levels;
}

/** Every link of every element and level points at an element that has that level. */
function checkLinks(fd: number, h: HnswHeader, size: number, levels: Uint8Array): string | null {
  const linksUpper = h.maxM * 4 + 4;
  const upperStart = HEADER_BYTES + h.count * h.sizeDataPerElement;
  let reader: SequentialReader;
  // level 0: every element's link count and links
  reader = new SequentialReader(fd, HEADER_BYTES, upperStart);
  for (let i = 0; i < h.count; i++) {
    const rec = reader.take(h.sizeDataPerElement);
    if (!rec) return `level-0 record ${i} cut short`;
    const problem = checkLinkBlock(rec, h.maxM0, h.count, levels, 0);
    if (problem) return `element ${i} level 0: ${problem}`;
  }
  // upper levels: links only to elements that reach that level
  reader = new SequentialReader(fd, upperStart, size);
  for (let i = 0; i < h.count; i++) {
    reader.take(4);
    for (let level = 1; level <= levels[i]!; level++) {
      const block = reader.take(linksUpper)!;
      const problem = checkLinkBlock(block, h.maxM, h.count, levels, level);
      if (problem) return `element ${i} level ${level}: ${problem}`;
    }
  }
  return null;
}

function checkLinkBlock(
  block: Buffer,
  maxLinks: number,
  count: number,
  levels: Uint8Array,
  level: number,
): string | null {
  const n = block.readUInt16LE(0);
  if (n > maxLinks) return `${n} links, at most ${maxLinks}`;
  for (let k = 0; k < n; k++) {
    const to = block.readUInt32LE(4 + 4 * k);
    if (to >= count) return `link to element ${to} of ${count}`;
    if (levels[to]! < level) return `link to element ${to}, which has no level ${level}`;
  }
  return null;
}
