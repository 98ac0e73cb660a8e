/**
 * The indexing step shared by every transport (the Kafka indexer and the embedded in-process
 * path): store face records, index them, and assign the new kept ones to identities online.
 * It is idempotent — a replayed record is an upsert and is never assigned twice — so any
 * at-least-once transport gives exactly-once results in the store.
 */
import type { FaceRecord } from '../schemas/face.ts';
import type { IdentityEvent } from '../schemas/identityEvent.ts';
import type { PhotoResult } from '../schemas/photoEvent.ts';
import type { FaceDatabase } from '../indexers/types.ts';

/** The online-assignment part of service/identityService.ts's IdentityService. */
export interface OnlineAssigner {
  assignNew(faceIds: string[]): IdentityEvent[];
}

/** Last record wins for a face id repeated within one call (a replay inside one batch). */
function uniqueByFaceId(records: FaceRecord[]): FaceRecord[] {
  const byId = new Map<string, FaceRecord>();
  for (const r of records) byId.set(r.faceId, r);
  return [...byId.values()];
}

/**
 * Step 1: stores and indexes `records` (one store transaction; the HNSW index follows the store
 * when it commits). Returns the ids of the kept faces the store did not have before.
 */
export function storeFaceRecords(db: FaceDatabase, records: FaceRecord[]): string[] {
  if (records.length === 0) return [];
  const unique = uniqueByFaceId(records);
  return db.transaction(() => {
    const fresh = unique.filter((r) => r.kept && db.getFace(r.faceId) === undefined).map((r) => r.faceId);
    db.upsertFaces(unique);
    return fresh;
  });
}

/**
 * Step 2: online assignment of newly stored kept faces. Runs after step 1 committed, so the new
 * faces are in the index and can find each other. Faces already placed are skipped by the
 * identity service, so repeating this step for the same ids changes nothing.
 */
export function assignNewFaces(identities: OnlineAssigner, faceIds: string[]): IdentityEvent[] {
  return faceIds.length > 0 ? identities.assignNew(faceIds) : [];
}

/**
 * Stores `records` and assigns the kept faces the store did not have before; returns the identity
 * events of that assignment (the identity service also appends them to the store's event log).
 * A replayed record is an upsert and is not assigned again. A transport that must survive a crash
 * between the two steps journals the ids of step 1 and repeats step 2 on restart (the Kafka
 * indexer does).
 */
export function indexFaceRecords(
  db: FaceDatabase,
  identities: OnlineAssigner,
  records: FaceRecord[],
): IdentityEvent[] {
  return assignNewFaces(identities, storeFaceRecords(db, records));
}

/** Records an analysed photo (after its faces) in the store. */
export function recordPhoto(db: FaceDatabase, photo: PhotoResult): void {
  db.upsertPhoto({
    photoId: photo.photoId,
    uri: photo.uri,
    library: photo.library ?? null,
    width: photo.width,
    height: photo.height,
    contentHash: photo.contentHash,
    status: 'done',
    error: null,
    processedAt: photo.at,
  });
}
