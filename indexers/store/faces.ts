/**
 * Faces (one row per detected face, raw float32 embedding, the 32-bit HNSW label) and the append-only
 * change log the index checkpoints and replays against. A face's identity membership is set here;
 * its share of the identity's template is kept by IdentityTable.addToIdentity in the same
 * transaction.
 */
import type { FaceRecord, UnassignedReason } from '../../schemas/face.ts';
import type { StoredFace } from '../types.ts';
import type { IdentityTable } from './identities.ts';
import { bufferToFloat32, float32ToBuffer, now, type Statements } from './statements.ts';

interface FaceRow {
  label: number;
  face_id: string;
  photo_id: string;
  face_index: number;
  bbox: string;
  landmarks: string;
  score: number;
  embedding: Buffer;
  magnitude: number;
  quality: number;
  kept: number;
  reason: string | null;
  model_id: string;
  library: string | null;
  identity_id: string | null;
  unassigned_reason: UnassignedReason | null;
  seq: number;
}

/** A kept face as the index needs it. */
export interface IndexableFace {
  label: number;
  faceId: string;
  embedding: Float32Array;
}

/** The current state of a face touched by a change, for index replay. */
export interface ChangedLabel {
  label: number;
  faceId: string;
  /** null when the face no longer exists or is not kept: its vector must not be searchable */
  embedding: Float32Array | null;
}

export class FaceTable {
  constructor(
    private readonly s: Statements,
    private readonly identities: IdentityTable,
  ) {}

  seq(): number {
    const row = this.s.sql('SELECT max(seq) AS s FROM changes').get() as { s: number | null };
    return row.s ?? 0;
  }

  /** Insert or update faces by faceId; a replay of identical data writes nothing and logs no change. */
  upsertFaces(
    records: FaceRecord[],
    expect: { modelId: string; dim: number },
  ): { inserted: number; updated: number } {
    let inserted = 0;
    let updated = 0;
    const select = this.s.sql('SELECT * FROM faces WHERE face_id = ?');
    const insert = this.s.sql(
      `INSERT INTO faces (face_id, photo_id, face_index, bbox, landmarks, score, embedding, magnitude, quality, kept,
         reason, model_id, library, identity_id, seq, created_at)
       VALUES (@faceId, @photoId, @faceIndex, @bbox, @landmarks, @score, @embedding, @magnitude, @quality, @kept,
         @reason, @modelId, @library, NULL, 0, @createdAt)`,
    );
    const update = this.s.sql(
      `UPDATE faces SET photo_id = @photoId, face_index = @faceIndex, bbox = @bbox, landmarks = @landmarks,
         score = @score, embedding = @embedding, magnitude = @magnitude, quality = @quality, kept = @kept,
         reason = @reason, library = @library,
         unassigned_reason = CASE WHEN @kept = 1 THEN unassigned_reason END WHERE label = @label`,
    );
    for (const r of records) {
      checkRecord(r, expect);
      const embedding = float32ToBuffer(Float32Array.from(r.embedding));
      const params = {
        faceId: r.faceId,
        photoId: r.photoId,
        faceIndex: r.faceIndex,
        bbox: JSON.stringify(r.bbox),
        landmarks: JSON.stringify(r.landmarks),
        score: r.score,
        embedding,
        magnitude: r.magnitude,
        quality: r.quality,
        kept: r.kept ? 1 : 0,
        reason: r.reason ?? null,
        modelId: r.modelId,
        library: r.library ?? null,
        createdAt: r.createdAt ?? now(),
      };
      const old = select.get(r.faceId) as FaceRow | undefined;
      if (!old) {
        const { lastInsertRowid } = insert.run(params);
        this.logChange(Number(lastInsertRowid), r.faceId, 'upsert');
        inserted++;
        continue;
      }
      updated++;
      if (sameFace(old, params)) continue;
      if (old.identity_id)
        this.identities.addToIdentity(
          old.identity_id,
          old.kept ? bufferToFloat32(old.embedding) : null,
          0,
          -1,
        );
      update.run({ ...params, label: old.label });
      if (old.identity_id)
        this.identities.addToIdentity(old.identity_id, r.kept ? bufferToFloat32(embedding) : null, 0, +1);
      this.logChange(old.label, r.faceId, 'upsert');
    }
    return { inserted, updated };
  }

  private logChange(label: number, faceId: string, op: 'upsert' | 'delete'): void {
    const { lastInsertRowid } = this.s
      .sql('INSERT INTO changes (label, face_id, op) VALUES (?, ?, ?)')
      .run(label, faceId, op);
    if (op === 'upsert')
      this.s.sql('UPDATE faces SET seq = ? WHERE label = ?').run(Number(lastInsertRowid), label);
  }

  getFace(faceId: string): StoredFace | undefined {
    const row = this.s.sql('SELECT * FROM faces WHERE face_id = ?').get(faceId) as FaceRow | undefined;
    return row && toFace(row);
  }

  faceIdOfLabel(label: number): string | undefined {
    const row = this.s.sql('SELECT face_id FROM faces WHERE label = ?').get(label) as
      { face_id: string } | undefined;
    return row?.face_id;
  }

  facesOfPhoto(photoId: string): StoredFace[] {
    return (
      this.s
        .sql('SELECT * FROM faces WHERE photo_id = ? ORDER BY face_index, label')
        .all(photoId) as FaceRow[]
    ).map(toFace);
  }

  listFaces(filter: { kept?: boolean; identityId?: string | null } = {}): StoredFace[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.kept !== undefined) {
      where.push('kept = ?');
      params.push(filter.kept ? 1 : 0);
    }
    if (filter.identityId === null) where.push('identity_id IS NULL');
    else if (filter.identityId !== undefined) {
      where.push('identity_id = ?');
      params.push(filter.identityId);
    }
    const sql = `SELECT * FROM faces ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY label`;
    return (this.s.sql(sql).all(...params) as FaceRow[]).map(toFace);
  }

  /** Kept faces in label order, streamed (a rebuild must not hold every row twice). */
  *iterateKept(): IterableIterator<IndexableFace> {
    const stmt = this.s.sql('SELECT label, face_id, embedding FROM faces WHERE kept = 1 ORDER BY label');
    for (const row of stmt.iterate() as IterableIterator<{
      label: number;
      face_id: string;
      embedding: Buffer;
    }>) {
      yield { label: row.label, faceId: row.face_id, embedding: bufferToFloat32(row.embedding) };
    }
  }

  /** label → faceId of every kept face. */
  keptLabels(): Map<number, string> {
    const rows = this.s.sql('SELECT label, face_id FROM faces WHERE kept = 1').raw().all() as [
      number,
      string,
    ][];
    return new Map(rows);
  }

  keptCount(): number {
    return (this.s.sql('SELECT count(*) AS n FROM faces WHERE kept = 1').get() as { n: number }).n;
  }

  /** Current state of every face changed after `seq` (one entry per label), for index replay. */
  changedSince(seq: number): ChangedLabel[] {
    const rows = this.s.db
      .prepare(
        `SELECT c.label AS label, c.face_id AS face_id, f.kept AS kept, f.embedding AS embedding
         FROM (SELECT label, max(face_id) AS face_id FROM changes WHERE seq > ? GROUP BY label) c
         LEFT JOIN faces f ON f.label = c.label ORDER BY c.label`,
      )
      .all(seq) as { label: number; face_id: string; kept: number | null; embedding: Buffer | null }[];
    return rows.map((r) => ({
      label: r.label,
      faceId: r.face_id,
      embedding: r.kept === 1 && r.embedding ? bufferToFloat32(r.embedding) : null,
    }));
  }

  embeddingsOf(labels: number[]): IndexableFace[] {
    const stmt = this.s.sql('SELECT label, face_id, embedding FROM faces WHERE label = ? AND kept = 1');
    const out: IndexableFace[] = [];
    for (const label of labels) {
      const row = stmt.get(label) as { label: number; face_id: string; embedding: Buffer } | undefined;
      if (row) out.push({ label: row.label, faceId: row.face_id, embedding: bufferToFloat32(row.embedding) });
    }
    return out;
  }

  /** Remove a face row (biometric erasure); its identity's template and count are updated. */
  deleteFace(faceId: string): boolean {
    const row = this.s.sql('SELECT * FROM faces WHERE face_id = ?').get(faceId) as FaceRow | undefined;
    if (!row) return false;
    if (row.identity_id)
      this.identities.addToIdentity(
        row.identity_id,
        row.kept ? bufferToFloat32(row.embedding) : null,
        -1,
        -1,
      );
    this.s.sql('DELETE FROM faces WHERE label = ?').run(row.label);
    this.logChange(row.label, faceId, 'delete');
    return true;
  }

  faceIdsOfPhoto(photoId: string): string[] {
    return (this.s.sql('SELECT face_id FROM faces WHERE photo_id = ?').raw().all(photoId) as [string][]).map(
      (r) => r[0],
    );
  }

  faceIdsOfIdentity(identityId: string): string[] {
    return (
      this.s.sql('SELECT face_id FROM faces WHERE identity_id = ?').raw().all(identityId) as [string][]
    ).map((r) => r[0]);
  }

  setFaceIdentity(faceId: string, identityId: string | null, reason: UnassignedReason | null = null): void {
    const row = this.s.sql('SELECT * FROM faces WHERE face_id = ?').get(faceId) as FaceRow | undefined;
    if (!row) throw new Error(`no face ${faceId}`);
    if (row.identity_id === identityId) {
      if (identityId === null) this.setUnassignedReason(faceId, reason);
      return;
    }
    if (identityId !== null && !this.identities.getIdentity(identityId))
      throw new Error(`no identity ${identityId}`);
    const embedding = row.kept ? bufferToFloat32(row.embedding) : null;
    if (row.identity_id) this.identities.addToIdentity(row.identity_id, embedding, -1, -1);
    this.s
      .sql('UPDATE faces SET identity_id = ?, unassigned_reason = ? WHERE label = ?')
      .run(identityId, identityId === null && row.kept ? reason : null, row.label);
    if (identityId) this.identities.addToIdentity(identityId, embedding, +1, +1);
  }

  /** The reason of a face without an identity (a dropped face or one in an identity keeps none). */
  setUnassignedReason(faceId: string, reason: UnassignedReason | null): void {
    this.s
      .sql('UPDATE faces SET unassigned_reason = ? WHERE face_id = ? AND kept = 1 AND identity_id IS NULL')
      .run(reason, faceId);
  }
}

function checkRecord(r: FaceRecord, expect: { modelId: string; dim: number }): void {
  if (r.modelId !== expect.modelId) {
    throw new Error(
      `face ${r.faceId} is from model ${r.modelId}; this store holds ${expect.modelId} embeddings`,
    );
  }
  if (r.embedding.length !== expect.dim) {
    throw new Error(
      `face ${r.faceId} has a ${r.embedding.length}-d embedding; this store holds ${expect.dim}-d`,
    );
  }
  if (r.kept && !r.embedding.some((v) => v !== 0))
    throw new Error(`face ${r.faceId} is kept but its embedding is zero`);
  if (!r.embedding.every(Number.isFinite))
    throw new Error(`face ${r.faceId} has a non-finite embedding value`);
}

function sameFace(
  old: FaceRow,
  p: {
    embedding: Buffer;
    kept: number;
    magnitude: number;
    quality: number;
    bbox: string;
    score: number;
    reason: string | null;
    photoId: string;
    faceIndex: number;
    landmarks: string;
    library: string | null;
  },
): boolean {
  return (
    old.kept === p.kept &&
    old.magnitude === p.magnitude &&
    old.quality === p.quality &&
    old.score === p.score &&
    old.bbox === p.bbox &&
    old.landmarks === p.landmarks &&
    old.reason === p.reason &&
    old.photo_id === p.photoId &&
    old.face_index === p.faceIndex &&
    old.library === p.library &&
    old.embedding.equals(p.embedding)
  );
}

function toFace(r: FaceRow): StoredFace {
  return {
    faceId: r.face_id,
    photoId: r.photo_id,
    faceIndex: r.face_index,
    bbox: JSON.parse(r.bbox) as [number, number, number, number],
    landmarks: JSON.parse(r.landmarks) as [number, number][],
    score: r.score,
    embedding: bufferToFloat32(r.embedding),
    magnitude: r.magnitude,
    quality: r.quality,
    kept: r.kept === 1,
    reason: r.reason,
    modelId: r.model_id,
    library: r.library,
    identityId: r.identity_id,
    // a store opened read-only before its migration to version 3 has no such column
    unassignedReason: r.unassigned_reason ?? null,
    seq: r.seq,
  };
}
