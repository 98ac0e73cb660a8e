import type { FaceRecord, UnassignedReason } from '../schemas/face.ts';
import type { PeopleStore } from './store/people.ts';

/** A neighbour returned by a vector search: cosine similarity of the unit vectors. */
export interface Neighbour {
  faceId: string;
  similarity: number;
}

/**
 * The narrow contract of a vector index over kept faces. The embedded implementation is
 * hnswlib-node + SQLite; a server-based or sharded vector database can be added behind it.
 */
export interface Indexer {
  /** Store and index face records in one step; idempotent by faceId (a replay is an upsert). */
  upsertFaces(records: FaceRecord[]): { inserted: number; updated: number };
  /** k nearest kept faces to `vector` (raw or unit; normalised inside), best first. */
  search(vector: Float32Array | number[], k: number, filter?: (faceId: string) => boolean): Neighbour[];
  forgetFace(faceId: string): boolean;
  forgetPhoto(photoId: string): number;
  /** Number of vectors currently searchable. */
  size(): number;
  close(): void;
}

export interface StoredFace {
  faceId: string;
  photoId: string;
  faceIndex: number;
  bbox: [number, number, number, number];
  landmarks: [number, number][];
  score: number;
  /** raw feature (float32), its norm is `magnitude` */
  embedding: Float32Array;
  magnitude: number;
  quality: number;
  kept: boolean;
  /** why a dropped face was not kept (low_magnitude, too_small, …); null for a kept face */
  reason: string | null;
  modelId: string;
  library: string | null;
  identityId: string | null;
  /**
   * why a kept face has no identity, as the last step that placed it decided; null while it has
   * one, for a dropped face, and for a face no clustering step has seen yet (a store from before
   * reasons were kept, until its next recluster)
   */
  unassignedReason: UnassignedReason | null;
  seq: number;
}

export interface StoredPhoto {
  photoId: string;
  uri: string;
  library: string | null;
  width: number | null;
  height: number | null;
  /** sha256 of the bytes, used to skip unchanged photos on a re-run */
  contentHash: string | null;
  status: 'done' | 'failed';
  error: string | null;
  processedAt: string;
}

export interface StoredIdentity {
  identityId: string;
  name: string | null;
  faceCount: number;
  /** sum of the raw features of its kept faces (magnitude-weighted mean direction) */
  template: Float32Array;
  createdAt: string;
  updatedAt: string;
  /** hidden by a user from the people view (its faces still take part in clustering) */
  hidden: boolean;
  /** the face a user chose as its cover; null: the best-quality face */
  coverFaceId: string | null;
}

/** User corrections, honoured by every later online step and recluster. */
export type Correction =
  | { kind: 'cannot_link'; a: string; b: string } // identities a and b are different people
  | { kind: 'face_excluded'; faceId: string; identityId: string } // face moved out of identity
  | { kind: 'face_pinned'; faceId: string; identityId: string } // face moved into identity by a user
  // the inverses an undo appends (the log itself is never rewritten)
  | { kind: 'cannot_link_removed'; a: string; b: string }
  | { kind: 'face_included'; faceId: string; identityId: string } // an exclusion withdrawn
  | { kind: 'face_unpinned'; faceId: string }; // a pin withdrawn

export interface StoredCorrection {
  id: number;
  correction: Correction;
  createdAt: string;
}

export interface StoredIdentityEvent {
  seq: number;
  event: Record<string, unknown>;
}

export interface VerifyReport {
  store: number;
  indexed: number;
  missing: number;
  extra: number;
  indexPath: string;
  ok: boolean;
}

/** The embedded database: SQLite store (source of truth) + HNSW index of kept faces. */
export interface FaceDatabase extends Indexer {
  readonly dataDir: string;
  readonly modelId: string;
  readonly dim: number;
  /** the people view's tables: grid query, hidden/cover, user-action log, tombstones */
  readonly people: PeopleStore;

  transaction<T>(fn: () => T): T;
  /** Latest store change sequence number. */
  seq(): number;

  upsertPhoto(photo: Omit<StoredPhoto, 'processedAt'> & { processedAt?: string }): void;
  getPhoto(photoId: string): StoredPhoto | undefined;
  listPhotos(): StoredPhoto[];

  getFace(faceId: string): StoredFace | undefined;
  facesOfPhoto(photoId: string): StoredFace[];
  /** All faces (optionally only kept or only dropped) in insertion order. */
  listFaces(filter?: { kept?: boolean; identityId?: string | null }): StoredFace[];
  counts(): { photos: number; faces: number; kept: number; dropped: number; identities: number };

  createIdentity(identityId: string, name?: string | null): StoredIdentity;
  getIdentity(identityId: string): StoredIdentity | undefined;
  listIdentities(): StoredIdentity[];
  /** How many identities there are (the online attach bar follows it). */
  identityCount(): number;
  /**
   * Assign (or with null, unassign) a face; keeps both identities' templates and counts current.
   * Assigning clears the face's unassigned reason; unassigning stores `reason` (why it has none).
   */
  setFaceIdentity(faceId: string, identityId: string | null, reason?: UnassignedReason | null): void;
  /** Why a face that stays without an identity has none (a clustering step decided it again). */
  setUnassignedReason(faceId: string, reason: UnassignedReason | null): void;
  renameIdentity(identityId: string, name: string | null): void;
  /** Removes the identity row only; its faces become unassigned. */
  deleteIdentityRow(identityId: string): void;
  /** Forget an identity: its faces (rows and vectors) are removed too (biometric erasure). */
  forgetIdentity(identityId: string): number;

  addCorrection(c: Correction): number;
  listCorrections(): StoredCorrection[];

  appendIdentityEvents(events: Record<string, unknown>[]): void;
  listIdentityEvents(afterSeq?: number): StoredIdentityEvent[];

  /** Persist the HNSW index atomically with the store sequence it contains. */
  checkpoint(): void;
  verify(): VerifyReport;
}
