/**
 * The request shapes of the HTTP API, once, in zod: the routes hand fastify their JSON Schema
 * (`jsonSchema`: validation, defaults and the OpenAPI description) and take their TypeScript types
 * from the same definitions (`z.output`), so a handler reads `request.params.identityId` typed,
 * with no cast.
 */
import { z } from 'zod';
import { UnassignedReason } from '../schemas/face.ts';

/** The JSON Schema fastify validates with (OpenAPI 3.0 flavour: `nullable`), as a producer may send it. */
export function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input' }) as Record<string, unknown>;
}

export const IdentityParams = z.object({ identityId: z.string().min(1) });
export const FaceParams = z.object({ faceId: z.string() });
export const PhotoParams = z.object({ photoId: z.string() });

export const ListIdentitiesQuery = z.strictObject({
  limit: z.number().int().min(1).max(1000).default(100),
  offset: z.number().int().min(0).default(0),
});

/** DELETE /identities/{id}?photos=true: also erase (and tombstone) every photo the identity appears in */
export const EraseIdentityQuery = z.strictObject({ photos: z.boolean().default(false) });

export const RenameBody = z.strictObject({ name: z.string().min(1).max(200).nullable() });
export const OtherIdentityBody = z.strictObject({ other: z.string().min(1) });
export const MoveFaceBody = z.strictObject({ identityId: z.string().min(1).nullable() });

export const kQuery = (maxK: number) => z.strictObject({ k: z.number().int().min(1).max(maxK).default(5) });
export const EmbeddingBody = (maxK: number) =>
  z.strictObject({
    embedding: z.array(z.number()).min(1).max(8192),
    k: z.number().int().min(1).max(maxK).default(5),
  });

// ---- the people view's routes (api/routes/people.ts)

/** New person from these faces (a split) */
export const SplitBody = z.strictObject({
  faceIds: z.array(z.string().min(1)).min(1).max(10000),
  name: z.string().min(1).max(200).nullable().optional(),
});
export const PageQuery = (maxLimit: number, defaultLimit: number) =>
  z.strictObject({
    limit: z.number().int().min(1).max(maxLimit).default(defaultLimit),
    offset: z.number().int().min(0).default(0),
  });
export const RejectBody = z.strictObject({ identityId: z.string().min(1) });
export const SimilarQuery = z.strictObject({ k: z.number().int().min(1).max(50).default(5) });
export const CoverBody = z.strictObject({ faceId: z.string().min(1) });
export const HiddenBody = z.strictObject({ hidden: z.boolean() });
export const CorrectionsQuery = z.strictObject({ limit: z.number().int().min(1).max(500).default(50) });
export const ActionParams = z.object({ actionId: z.number().int().min(1) });

/** Route generics from the schemas: what fastify hands the handler after validation. */
export interface Typed<P = unknown, Q = unknown, B = unknown> {
  Params: P;
  Querystring: Q;
  Body: B;
}
export type Out<S extends z.ZodType> = z.output<S>;

/** Response property: why a kept face has no identity, as the step that left it out stored it. */
export const unassignedReasonProperty = {
  type: 'string',
  nullable: true,
  enum: [...UnassignedReason.options, null],
  description:
    'why the kept face has no identity: low_quality, ambiguous, no_match (the clustering) or removed_by_user; null while it has one, for a dropped face, or until a recluster decides it (a store from an older version)',
};
