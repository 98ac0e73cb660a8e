import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';

/** Schema version of every record this project writes; bump on an incompatible change. */
export const SCHEMA_VERSION = 1;

export const BBox = z
  .tuple([z.number(), z.number(), z.number(), z.number()])
  .describe('[x, y, width, height] in pixels of the original (EXIF-oriented) image');
export const Point = z.tuple([z.number(), z.number()]);
export const Landmarks = z
  .array(Point)
  .length(5)
  .describe('5 points: left eye, right eye, nose tip, left mouth corner, right mouth corner (as seen)');

/** Why a detected face was not kept. */
export const DropReason = z.enum(['low_magnitude', 'too_small', 'low_score']);
export type DropReason = z.infer<typeof DropReason>;

/**
 * Why a KEPT face has no identity, stored with the face (null while it has one): the clustering's
 * reasons — `low_quality` (too unsure to place on its own), `ambiguous` (two identities about as
 * close), `no_match` (no identity it may join is close enough) — and `removed_by_user` (a user took
 * it out of the identity it was in, and no other identity took it). A dropped face has a
 * `DropReason` instead, never one of these.
 */
export const UnassignedReason = z.enum(['low_quality', 'ambiguous', 'no_match', 'removed_by_user']);
export type UnassignedReason = z.infer<typeof UnassignedReason>;

/** Each reason in words, as the Review page and the report show it (null: not decided yet). */
export function unassignedReasonText(reason: UnassignedReason | null): string {
  switch (reason) {
    case 'low_quality':
      return 'Low quality: too unsure to place on its own';
    case 'ambiguous':
      return 'Ambiguous: close to more than one person';
    case 'no_match':
      return 'No match: no one is close enough';
    case 'removed_by_user':
      return 'Removed by a user from the person it was in';
    case null:
      return 'Not decided yet: the next recluster records why';
  }
}

/**
 * One detected face with its embedding: the unit of data between ingest and the index.
 * `embedding` is the RAW (un-normalised) feature: its L2 norm is the magnitude.
 */
export const FaceRecord = z.object({
  v: z.literal(SCHEMA_VERSION).default(SCHEMA_VERSION),
  faceId: z.string().min(1),
  photoId: z.string().min(1),
  faceIndex: z.number().int().nonnegative().describe('index of the face within its photo, left to right'),
  bbox: BBox,
  landmarks: Landmarks,
  score: z.number().describe('detector score 0..1'),
  embedding: z.array(z.number()).min(1).describe('raw feature, not normalised'),
  magnitude: z.number().nonnegative(),
  quality: z.number().min(0).max(1),
  kept: z.boolean(),
  reason: DropReason.optional(),
  modelId: z.string().min(1),
  library: z.string().optional(),
  createdAt: z.string().optional(),
  thumbnail: z
    .base64()
    .max(64 * 1024)
    .optional()
    .describe('JPEG of the aligned 112×112 face, base64: the thumbnail the data dir keeps'),
});
export type FaceRecord = z.infer<typeof FaceRecord>;

/**
 * Deterministic photo id of a file: `p_` + 24 hex of the sha256 of its absolute path, the same on
 * every path (`facepipe run`, `facepipe publish`): a library ingested one way can be continued the
 * other way. A producer may prefix it (publish --id-prefix) to keep libraries apart.
 */
export function photoIdForFile(file: string, prefix = ''): string {
  return prefix + 'p_' + createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 24);
}

/**
 * Deterministic face id: the same photo, model and (rounded) box always give the same id,
 * so a replayed face is an upsert, never a duplicate.
 */
export function faceIdFor(photoId: string, modelId: string, bbox: readonly number[]): string {
  const box = bbox.map((v) => Math.round(v)).join(',');
  return (
    'f_' + createHash('sha256').update(`${photoId}\u0000${modelId}\u0000${box}`).digest('hex').slice(0, 24)
  );
}
