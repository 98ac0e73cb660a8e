import type { FaceDatabase } from './types.ts';

export interface Erased {
  photos: string[];
  /** faces whose records and vectors are gone (their thumbnails must go too) */
  faceIds: string[];
}

/**
 * Erases photos for good: a tombstone (id, path and content hash) is written with the erasure, in
 * one transaction, so `run`, `worker` and `publish` never analyse the photo again — not from the
 * same path, and not a copy of the same bytes elsewhere — unless the user asks (`--include-erased`).
 */
export function erasePhotos(db: FaceDatabase, photoIds: string[], cause: string): Erased {
  const faceIds: string[] = [];
  const photos: string[] = [];
  db.transaction(() => {
    for (const photoId of photoIds) {
      const photo = db.getPhoto(photoId);
      if (!photo) continue;
      faceIds.push(...db.facesOfPhoto(photoId).map((f) => f.faceId));
      db.people.addTombstone({ photoId, uri: photo.uri, contentHash: photo.contentHash, cause });
      db.forgetPhoto(photoId);
      photos.push(photoId);
    }
  });
  db.checkpoint();
  return { photos, faceIds };
}

/** Erases an identity: its faces, or with `photos`, every photo it appears in (tombstoned). */
export function eraseIdentity(db: FaceDatabase, identityId: string, opts: { photos: boolean }): Erased {
  const faces = db.listFaces({ identityId });
  if (opts.photos) {
    const erased = erasePhotos(db, [...new Set(faces.map((f) => f.photoId))], `identity ${identityId}`);
    db.transaction(() => {
      if (db.getIdentity(identityId)) db.forgetIdentity(identityId);
      db.appendIdentityEvents([deletedEvent(identityId)]);
    });
    return erased;
  }
  db.transaction(() => {
    db.forgetIdentity(identityId);
    db.appendIdentityEvents([deletedEvent(identityId)]);
  });
  db.checkpoint();
  return { photos: [], faceIds: faces.map((f) => f.faceId) };
}

function deletedEvent(identityId: string): Record<string, unknown> {
  return { v: 1, type: 'deleted', identityId, cause: 'user', at: new Date().toISOString() };
}
