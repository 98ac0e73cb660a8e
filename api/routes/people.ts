import type { FastifyInstance } from 'fastify';
import type { FaceDatabase } from '../../indexers/types.ts';
import { similarIdentities, suggestionsFor } from '../../clustering/suggestions.ts';
import type { UserActions } from '../../service/userActions.ts';
import { errorResponses } from '../context.ts';
import { requireIdentity, requireKeptFace } from './lookups.ts';
import { arrayOf, objectOf } from './responses.ts';
import {
  ActionParams,
  CorrectionsQuery,
  CoverBody,
  FaceParams,
  HiddenBody,
  IdentityParams,
  PageQuery,
  RejectBody,
  SimilarQuery,
  SplitBody,
  jsonSchema,
  unassignedReasonProperty,
  type Out,
  type Typed,
} from '../schemas.ts';

/** What the people routes need (kept narrow: no import of the server module). */
export interface PeopleRouteContext {
  db: FaceDatabase;
  actions: UserActions;
}

const suggestion = objectOf({
  identityId: { type: 'string' },
  name: { type: 'string', nullable: true },
  score: { type: 'number', description: 'cosine to the identity template' },
});
const action = objectOf({
  id: { type: 'integer' },
  kind: { type: 'string' },
  summary: { type: 'string' },
  undoes: { type: 'integer', nullable: true },
  undoneBy: { type: 'integer', nullable: true },
  createdAt: { type: 'string' },
});
/** what every correction answers: the id of its entry in the user-action log */
const actionIdResponse = objectOf({ actionId: { type: 'integer' } });

/**
 * The people view's API: new person from faces (split), suggestions for a face, the review queue,
 * "looks similar", hide and cover, and the correction log with undo. Every correction is recorded
 * in the user-action log (see clustering/userActions.ts).
 */
export function registerPeopleRoutes(app: FastifyInstance, ctx: PeopleRouteContext): void {
  const { db, actions } = ctx;

  app.post<Typed<unknown, unknown, Out<typeof SplitBody>>>(
    '/identities',
    {
      schema: {
        tags: ['identities'],
        summary: 'New person from these faces (split): they leave their identities and stay together',
        body: jsonSchema(SplitBody),
        response: {
          201: objectOf({ identityId: { type: 'string' }, actionId: { type: 'integer' } }),
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const { faceIds, name } = request.body;
      for (const f of faceIds) requireKeptFace(db, f);
      const { identityId, actionId } = actions.split([...new Set(faceIds)], name ?? null);
      return reply.status(201).send({ identityId, actionId });
    },
  );

  app.get<Typed<Out<typeof FaceParams>>>(
    '/faces/:faceId/suggestions',
    {
      schema: {
        tags: ['faces'],
        summary: 'Identities this face may belong to, best first, and why it is unassigned',
        params: jsonSchema(FaceParams),
        response: {
          200: objectOf({
            faceId: { type: 'string' },
            identityId: { type: 'string', nullable: true },
            reason: unassignedReasonProperty,
            suggestions: arrayOf(suggestion),
          }),
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const { faceId } = request.params;
      const face = requireKeptFace(db, faceId);
      return {
        faceId,
        identityId: face.identityId,
        reason: face.unassignedReason,
        suggestions: suggestionsFor(db, faceId),
      };
    },
  );

  app.get<Typed<unknown, Out<ReturnType<typeof PageQuery>>>>(
    '/faces/unassigned',
    {
      schema: {
        tags: ['faces'],
        summary: 'Kept faces no identity holds (best quality first), with reason and suggestion',
        querystring: jsonSchema(PageQuery(500, 50)),
        response: {
          200: objectOf({
            total: { type: 'integer' },
            faces: arrayOf(
              objectOf({
                faceId: { type: 'string' },
                photoId: { type: 'string' },
                quality: { type: 'number' },
                reason: unassignedReasonProperty,
                suggestion: { ...suggestion, nullable: true },
              }),
            ),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const { limit, offset } = request.query;
      return reviewQueue(db, limit, offset);
    },
  );

  app.post<Typed<Out<typeof FaceParams>, unknown, Out<typeof RejectBody>>>(
    '/faces/:faceId/reject',
    {
      schema: {
        tags: ['faces'],
        summary: 'This face is not that identity: never put there by a later step',
        params: jsonSchema(FaceParams),
        body: jsonSchema(RejectBody),
        response: {
          200: actionIdResponse,
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request) => {
      const { faceId } = request.params;
      const { identityId } = request.body;
      requireKeptFace(db, faceId);
      requireIdentity(db, identityId);
      return { actionId: actions.reject(faceId, identityId) };
    },
  );

  app.get<Typed<Out<typeof IdentityParams>, Out<typeof SimilarQuery>>>(
    '/identities/:identityId/similar',
    {
      schema: {
        tags: ['identities'],
        summary: 'Looks similar: the nearest identities by template cosine',
        params: jsonSchema(IdentityParams),
        querystring: jsonSchema(SimilarQuery),
        response: {
          200: objectOf({ similar: arrayOf(suggestion) }),
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const { identityId } = request.params;
      const { k } = request.query;
      requireIdentity(db, identityId);
      return { similar: similarIdentities(db, identityId, k) };
    },
  );

  app.put<Typed<Out<typeof IdentityParams>, unknown, Out<typeof CoverBody>>>(
    '/identities/:identityId/cover',
    {
      schema: {
        tags: ['identities'],
        summary: "Choose the identity's cover face (one of its faces)",
        params: jsonSchema(IdentityParams),
        body: jsonSchema(CoverBody),
        response: {
          200: actionIdResponse,
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request) => {
      const { identityId } = request.params;
      const { faceId } = request.body;
      requireIdentity(db, identityId);
      requireKeptFace(db, faceId);
      return { actionId: actions.setCover(identityId, faceId) };
    },
  );

  app.put<Typed<Out<typeof IdentityParams>, unknown, Out<typeof HiddenBody>>>(
    '/identities/:identityId/hidden',
    {
      schema: {
        tags: ['identities'],
        summary: 'Hide an identity from the people view (or show it again)',
        params: jsonSchema(IdentityParams),
        body: jsonSchema(HiddenBody),
        response: {
          200: actionIdResponse,
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request) => {
      const { identityId } = request.params;
      const { hidden } = request.body;
      requireIdentity(db, identityId);
      return { actionId: actions.hide(identityId, hidden) };
    },
  );

  app.get<Typed<unknown, Out<typeof CorrectionsQuery>>>(
    '/corrections',
    {
      schema: {
        tags: ['corrections'],
        summary: 'The latest user corrections, newest first',
        querystring: jsonSchema(CorrectionsQuery),
        response: {
          200: objectOf({ corrections: arrayOf(action) }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const { limit } = request.query;
      return { corrections: actions.list(limit) };
    },
  );

  app.post<Typed<Out<typeof ActionParams>>>(
    '/corrections/:actionId/undo',
    {
      schema: {
        tags: ['corrections'],
        summary: 'Undo a correction: its inverse is appended (the log is never rewritten)',
        params: jsonSchema(ActionParams),
        response: {
          200: actionIdResponse,
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request) => {
      const { actionId } = request.params;
      return { actionId: actions.undo(actionId) };
    },
  );
}

/**
 * The review queue: unassigned kept faces, each with its stored reason (why the step that left it
 * out did) and the best suggestion.
 */
export function reviewQueue(db: FaceDatabase, limit: number, offset: number) {
  const { total, faceIds } = db.people.unassignedFaceIds(limit, offset);
  const faces = faceIds.map((faceId) => {
    const f = db.getFace(faceId)!;
    return {
      faceId,
      photoId: f.photoId,
      quality: f.quality,
      reason: f.unassignedReason,
      suggestion: suggestionsFor(db, faceId)[0] ?? null,
    };
  });
  return { total, faces };
}
