import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Minimal .npy reader/writer for 2-D C-order float matrices ([N, D] embeddings).
 * Format (numpy NEP 1): magic "\x93NUMPY", version (1.0 / 2.0 / 3.0), header length (uint16 LE
 * for 1.0, uint32 LE otherwise), then a Python dict literal with descr, fortran_order and shape.
 */
export interface Matrix {
  rows: number;
  cols: number;
  /** row-major */
  data: Float32Array;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

export function parseNpy(buf: Buffer, source = '.npy'): Matrix {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC))
    throw new Error(`${source}: not a .npy file (bad magic)`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new Error(`${source}: unreadable .npy header: ${header.trim()}`);
  if (fortran === 'True')
    throw new Error(`${source}: Fortran-order arrays are not supported (save with C order)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (shape.length !== 2 || shape.some((x) => !Number.isInteger(x) || x < 0))
    throw new Error(`${source}: expected a 2-D array [N, D], got shape (${shapeText})`);
  const [rows, cols] = shape;
  const body = buf.subarray(start + headerLen);
  const count = rows * cols;
  let data: Float32Array;
  if (descr === '<f4') {
    if (body.length < count * 4)
      throw new Error(`${source}: truncated: ${body.length} bytes for ${rows}×${cols} float32`);
    data = new Float32Array(count);
    Buffer.from(data.buffer).set(body.subarray(0, count * 4));
  } else if (descr === '<f8') {
    if (body.length < count * 8)
      throw new Error(`${source}: truncated: ${body.length} bytes for ${rows}×${cols} float64`);
    data = Float32Array.from({ length: count }, (_, i) => body.readDoubleLE(i * 8));
  } else throw new Error(`${source}: dtype ${descr} not supported (expected float32 '<f4')`);
  return { rows, cols, data };
}

export function readNpy(file: string): Matrix {
  return parseNpy(readFileSync(file), file);
}

export function encodeNpy(m: Matrix): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${m.rows}, ${m.cols}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = header + ' '.repeat(pad % 64) + '\n';
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    prefix,
    Buffer.from(header, 'latin1'),
    Buffer.from(m.data.buffer, m.data.byteOffset, m.rows * m.cols * 4),
  ]);
}

export function writeNpy(file: string, m: Matrix): void {
  writeFileSync(file, encodeNpy(m));
}
