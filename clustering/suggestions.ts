import type { FaceDatabase } from '../indexers/types.ts';
import { CorrectionState } from './corrections.ts';
import { dot, toUnit } from './vec.ts';

export interface Suggestion {
  identityId: string;
  name: string | null;
  /** cosine between the face's direction and the identity's template direction */
  score: number;
}

/**
 * Identities a face may belong to, best first: the identities of its nearest faces in the index,
 * scored by template cosine. Identities it was moved out of (or rejected for) and identities that
 * already hold a face of its photo (two faces of one photo are two people) are left out.
 */
export function suggestionsFor(db: FaceDatabase, faceId: string, k = 3): Suggestion[] {
  const face = db.getFace(faceId);
  if (!face) return [];
  const corrections = new CorrectionState(db.listCorrections().map((c) => c.correction));
  const barred = new Set(
    db
      .facesOfPhoto(face.photoId)
      .filter((f) => f.faceId !== faceId && f.identityId !== null)
      .map((f) => f.identityId!),
  );
  const candidates = new Set<string>();
  for (const n of db.search(face.embedding, 50)) {
    const id = db.getFace(n.faceId)?.identityId;
    if (id && id !== face.identityId && !barred.has(id) && !corrections.excluded(faceId, id))
      candidates.add(id);
  }
  return rankByTemplate(db, toUnit(face.embedding).unit, candidates).slice(0, k);
}

/** "Looks similar": the identities nearest to this one by template cosine. */
export function similarIdentities(db: FaceDatabase, identityId: string, k = 5): Suggestion[] {
  const identity = db.getIdentity(identityId);
  if (!identity || identity.faceCount === 0) return [];
  const { unit } = toUnit(identity.template);
  const candidates = new Set<string>();
  for (const n of db.search(unit, 100)) {
    const id = db.getFace(n.faceId)?.identityId;
    if (id && id !== identityId) candidates.add(id);
  }
  return rankByTemplate(db, unit, candidates).slice(0, k);
}

function rankByTemplate(db: FaceDatabase, unit: Float32Array, ids: Set<string>): Suggestion[] {
  const out: Suggestion[] = [];
  for (const id of ids) {
    const i = db.getIdentity(id);
    if (!i) continue;
    out.push({ identityId: id, name: i.name, score: dot(unit, toUnit(i.template).unit) });
  }
  return out.sort((a, b) => b.score - a.score || (a.identityId < b.identityId ? -1 : 1));
}
