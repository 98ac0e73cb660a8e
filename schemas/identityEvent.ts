import { z } from 'zod';
import { SCHEMA_VERSION } from './face.ts';

/** What happened to an identity; published on the identity-events topic (or recorded, embedded). */
export const IdentityEventType = z.enum([
  'created',
  'face_assigned',
  'face_unassigned',
  'merged',
  'renamed',
  'deleted',
]);
export type IdentityEventType = z.infer<typeof IdentityEventType>;

export const IdentityEvent = z.object({
  v: z.literal(SCHEMA_VERSION).default(SCHEMA_VERSION),
  type: IdentityEventType,
  identityId: z.string().min(1),
  /** created / face_assigned / face_unassigned: the face concerned */
  faceId: z.string().optional(),
  /** merged: the identities absorbed into `identityId` */
  mergedFrom: z.array(z.string()).optional(),
  /** renamed: the new name (null clears it) */
  name: z.string().nullable().optional(),
  /** what caused it: online assignment, a recluster, or a user correction */
  cause: z.enum(['online', 'recluster', 'user']),
  at: z.string().describe('ISO-8601 time'),
});
export type IdentityEvent = z.infer<typeof IdentityEvent>;
