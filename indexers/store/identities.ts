/**
 * Identities (name, face count, template = the sum of their kept faces' raw features, in float64)
 * with the user's corrections and the identity-event log: everything that says who is who.
 */
import type { Correction, StoredCorrection, StoredIdentity, StoredIdentityEvent } from '../types.ts';
import { bufferToFloat64, float64ToBuffer, now, type Statements } from './statements.ts';

interface IdentityRow {
  identity_id: string;
  name: string | null;
  face_count: number;
  template: Buffer;
  created_at: string;
  updated_at: string;
  hidden: number;
  cover_face_id: string | null;
}

export class IdentityTable {
  constructor(private readonly s: Statements) {}

  createIdentity(identityId: string, name: string | null, dim: number): StoredIdentity {
    const t = now();
    this.s.db
      .prepare(
        `INSERT INTO identities (identity_id, name, face_count, template, created_at, updated_at) VALUES (?, ?, 0, ?, ?, ?)`,
      )
      .run(identityId, name, float64ToBuffer(new Float64Array(dim)), t, t);
    return this.getIdentity(identityId)!;
  }

  getIdentity(identityId: string): StoredIdentity | undefined {
    const row = this.s.sql('SELECT * FROM identities WHERE identity_id = ?').get(identityId) as
      IdentityRow | undefined;
    return row && toIdentity(row);
  }

  countIdentities(): number {
    return (this.s.sql('SELECT count(*) AS n FROM identities').get() as { n: number }).n;
  }

  listIdentities(): StoredIdentity[] {
    return (this.s.sql('SELECT * FROM identities ORDER BY rowid').all() as IdentityRow[]).map(toIdentity);
  }

  /**
   * Add (sign +1) or subtract (-1) a face's contribution to an identity: its count by `countDelta`
   * and, when the face is kept, its raw feature to the template (kept in float64 so that many
   * additions and subtractions do not drift).
   */
  addToIdentity(identityId: string, embedding: Float32Array | null, countDelta: number, sign: number): void {
    const row = this.s.sql('SELECT template FROM identities WHERE identity_id = ?').get(identityId) as
      { template: Buffer } | undefined;
    if (!row) return;
    const template = bufferToFloat64(row.template);
    if (embedding) for (let i = 0; i < template.length; i++) template[i] += sign * embedding[i];
    this.s.db
      .prepare(
        'UPDATE identities SET face_count = face_count + ?, template = ?, updated_at = ? WHERE identity_id = ?',
      )
      .run(countDelta, float64ToBuffer(template), now(), identityId);
  }

  renameIdentity(identityId: string, name: string | null): void {
    const r = this.s
      .sql('UPDATE identities SET name = ?, updated_at = ? WHERE identity_id = ?')
      .run(name, now(), identityId);
    if (r.changes === 0) throw new Error(`no identity ${identityId}`);
  }

  deleteIdentityRow(identityId: string): void {
    this.s.sql('UPDATE faces SET identity_id = NULL WHERE identity_id = ?').run(identityId);
    this.s.sql('DELETE FROM identities WHERE identity_id = ?').run(identityId);
  }

  // ---- corrections and identity events ---------------------------------------------------------

  addCorrection(c: Correction): number {
    return Number(
      this.s.sql('INSERT INTO corrections (body, created_at) VALUES (?, ?)').run(JSON.stringify(c), now())
        .lastInsertRowid,
    );
  }

  listCorrections(): StoredCorrection[] {
    const rows = this.s.sql('SELECT id, body, created_at FROM corrections ORDER BY id').all() as {
      id: number;
      body: string;
      created_at: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      correction: JSON.parse(r.body) as Correction,
      createdAt: r.created_at,
    }));
  }

  appendIdentityEvents(events: Record<string, unknown>[]): void {
    const stmt = this.s.sql('INSERT INTO identity_events (body, created_at) VALUES (?, ?)');
    const t = now();
    for (const e of events) stmt.run(JSON.stringify(e), t);
  }

  listIdentityEvents(afterSeq = 0): StoredIdentityEvent[] {
    const rows = this.s
      .sql('SELECT seq, body FROM identity_events WHERE seq > ? ORDER BY seq')
      .all(afterSeq) as {
      seq: number;
      body: string;
    }[];
    return rows.map((r) => ({ seq: r.seq, event: JSON.parse(r.body) as Record<string, unknown> }));
  }
}

function toIdentity(r: IdentityRow): StoredIdentity {
  return {
    identityId: r.identity_id,
    name: r.name,
    faceCount: r.face_count,
    template: Float32Array.from(bufferToFloat64(r.template)),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    hidden: r.hidden === 1,
    coverFaceId: r.cover_face_id,
  };
}
