import type { FaceDatabase, StoredFace } from '../indexers/types.ts';
import { qualityOf } from '../clustering/params.ts';

export interface FaceHit {
  faceId: string;
  photoId: string;
  photo: string | null;
  faceIndex: number;
  identityId: string | null;
  similarity: number;
  quality: number;
}

export interface IdentityHit {
  identityId: string;
  name: string | null;
  faceCount: number;
  /** cosine between the query and the identity's template (sum of its raw features) */
  score: number;
  /** best cosine between the query and one of the identity's faces among the neighbours */
  bestFaceSimilarity: number;
}

export interface SearchResult {
  magnitude: number;
  quality: number;
  identities: IdentityHit[];
  faces: FaceHit[];
}

const seenSeq = new WeakMap<FaceDatabase, number>();

/**
 * Brings this process's HNSW index up to date with faces another process (a concurrent
 * `facepipe run` or Kafka indexer) committed to the shared store: the database applies the store's
 * change log to its index at the end of every transaction, so an empty one is enough.
 */
export function followOtherWriters(db: FaceDatabase): void {
  const seq = db.seq();
  if (seenSeq.get(db) === seq) return;
  db.transaction(() => undefined);
  seenSeq.set(db, seq);
}

/** Neighbour faces looked at per identity wanted: identities are found through their faces. */
const CANDIDATES_PER_RESULT = 2;
const MIN_CANDIDATES = 20;

/**
 * Who is this face? The k nearest kept faces, and the k best identities among those faces'
 * identities, ranked by cosine to the identity template (the MagFace template: magnitude-weighted
 * mean direction). Synchronous: an HNSW search blocks the event loop for well under a millisecond
 * at k ≤ 100, which is why k is capped.
 */
export function searchByVector(
  db: FaceDatabase,
  raw: Float32Array,
  k: number,
  qualityRange: readonly [number, number],
  exclude?: string,
): SearchResult {
  followOtherWriters(db);
  const magnitude = norm(raw);
  const unit = scale(raw, magnitude > 0 ? 1 / magnitude : 0);
  const want = Math.max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT);
  const neighbours = db.search(unit, want + (exclude ? 1 : 0), exclude ? (id) => id !== exclude : undefined);
  const photos = new Map<string, string | null>();
  const photoUri = (photoId: string) => {
    if (!photos.has(photoId)) photos.set(photoId, db.getPhoto(photoId)?.uri ?? null);
    return photos.get(photoId)!;
  };
  const faces: { face: StoredFace; similarity: number }[] = [];
  for (const n of neighbours) {
    if (n.faceId === exclude) continue;
    const face = db.getFace(n.faceId);
    if (face) faces.push({ face, similarity: n.similarity });
  }
  const best = new Map<string, number>();
  for (const { face, similarity } of faces) {
    if (face.identityId && !best.has(face.identityId)) best.set(face.identityId, similarity);
  }
  const identities: IdentityHit[] = [];
  for (const [identityId, bestFaceSimilarity] of best) {
    const identity = db.getIdentity(identityId);
    if (!identity) continue;
    identities.push({
      identityId,
      name: identity.name,
      faceCount: identity.faceCount,
      score: round(cosine(unit, identity.template)),
      bestFaceSimilarity: round(bestFaceSimilarity),
    });
  }
  identities.sort((a, b) => b.score - a.score);
  return {
    magnitude: round(magnitude),
    quality: round(qualityOf(magnitude, qualityRange)),
    identities: identities.slice(0, k),
    faces: faces.slice(0, k).map(({ face, similarity }) => ({
      faceId: face.faceId,
      photoId: face.photoId,
      photo: photoUri(face.photoId),
      faceIndex: face.faceIndex,
      identityId: face.identityId,
      similarity: round(similarity),
      quality: round(face.quality),
    })),
  };
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function scale(v: Float32Array, f: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! * f;
  return out;
}

/** cosine of a unit vector and any vector */
function cosine(unit: Float32Array, v: Float32Array): number {
  const n = norm(v);
  if (n === 0) return 0;
  let dot = 0;
  for (let i = 0; i < unit.length; i++) dot += unit[i]! * v[i]!;
  return dot / n;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
