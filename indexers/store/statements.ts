/**
 * What the store's tables share: one better-sqlite3 connection (so every table writes inside the
 * same transaction), its prepared-statement cache, and the codecs of the stored vectors.
 */
import type Database from 'better-sqlite3';

export class Statements {
  private readonly prepared = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  /** A prepared statement, prepared once per store. */
  sql(source: string): Database.Statement {
    let stmt = this.prepared.get(source);
    if (!stmt) {
      stmt = this.db.prepare(source);
      this.prepared.set(source, stmt);
    }
    return stmt;
  }
}

export function bufferToFloat32(buf: Buffer): Float32Array {
  // copy: a Buffer from SQLite need not be 4-byte aligned
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

export function float32ToBuffer(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export function float64ToBuffer(v: Float64Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export function bufferToFloat64(buf: Buffer): Float64Array {
  const out = new Float64Array(buf.byteLength / 8);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

export const now = (): string => new Date().toISOString();
