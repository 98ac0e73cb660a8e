/**
 * The lookups the routes start from: the stored face, identity or photo a path or body names, or
 * the API's 404 (`notFound`) when there is none, so every route answers a missing one alike.
 */
import type { FaceDatabase, StoredFace, StoredIdentity, StoredPhoto } from '../../indexers/types.ts';
import { ApiError, notFound } from '../errors.ts';

export function requireFace(db: FaceDatabase, faceId: string): StoredFace {
  const face = db.getFace(faceId);
  if (!face) throw notFound('face', faceId);
  return face;
}

/** A kept face: a dropped low-quality one is refused (409) where a face is to join an identity. */
export function requireKeptFace(db: FaceDatabase, faceId: string): StoredFace {
  const face = requireFace(db, faceId);
  if (!face.kept)
    throw new ApiError(409, 'FACE_DROPPED', 'a dropped low-quality face cannot belong to an identity');
  return face;
}

export function requireIdentity(db: FaceDatabase, identityId: string): StoredIdentity {
  const identity = db.getIdentity(identityId);
  if (!identity) throw notFound('identity', identityId);
  return identity;
}

export function requirePhoto(db: FaceDatabase, photoId: string): StoredPhoto {
  const photo = db.getPhoto(photoId);
  if (!photo) throw notFound('photo', photoId);
  return photo;
}
