import type { FastifyInstance } from 'fastify';
import type { StoredFace } from '../../indexers/types.ts';
import { errorResponses, type RouteContext } from '../context.ts';
import { requireFace, requirePhoto } from './lookups.ts';
import { arrayOf, objectOf } from './responses.ts';
import {
  FaceParams,
  jsonSchema,
  MoveFaceBody,
  PhotoParams,
  unassignedReasonProperty,
  type Out,
  type Typed,
} from '../schemas.ts';
import { refreshReport, removeThumbnails } from '../../pipeline/report.ts';
import { erasePhotos } from '../../indexers/erasure.ts';

const face = objectOf({
  faceId: { type: 'string' },
  photoId: { type: 'string' },
  faceIndex: { type: 'integer' },
  bbox: arrayOf({ type: 'number' }),
  score: { type: 'number' },
  magnitude: { type: 'number' },
  quality: { type: 'number' },
  kept: { type: 'boolean' },
  reason: { type: 'string', nullable: true, description: 'why a dropped face was not kept' },
  identityId: { type: 'string', nullable: true },
  unassignedReason: unassignedReasonProperty,
});

export function registerFaceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { db } = ctx;

  app.get<Typed<Out<typeof FaceParams>>>(
    '/faces/:faceId',
    {
      schema: {
        tags: ['faces'],
        summary: 'One stored face (no embedding)',
        params: jsonSchema(FaceParams),
        response: { 200: face, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const { faceId } = request.params;
      return faceView(requireFace(db, faceId));
    },
  );

  app.post<Typed<Out<typeof FaceParams>, unknown, Out<typeof MoveFaceBody>>>(
    '/faces/:faceId/move',
    {
      schema: {
        tags: ['faces'],
        summary:
          'Move a face to another identity, or out of its identity (identityId: null); honoured by later reclusters',
        params: jsonSchema(FaceParams),
        body: jsonSchema(MoveFaceBody),
        response: { 200: face, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const { faceId } = request.params;
      const { identityId } = request.body;
      if (identityId === null) ctx.actions.moveOut([faceId]);
      else ctx.actions.accept(faceId, identityId);
      return faceView(db.getFace(faceId)!);
    },
  );

  app.get<Typed<Out<typeof PhotoParams>>>(
    '/photos/:photoId',
    {
      schema: {
        tags: ['photos'],
        summary: 'One photo and its faces',
        params: jsonSchema(PhotoParams),
        response: {
          200: objectOf({
            photoId: { type: 'string' },
            uri: { type: 'string' },
            width: { type: 'integer', nullable: true },
            height: { type: 'integer', nullable: true },
            status: { type: 'string' },
            error: { type: 'string', nullable: true },
            faces: arrayOf(face),
          }),
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const { photoId } = request.params;
      return { ...requirePhoto(db, photoId), faces: db.facesOfPhoto(photoId).map(faceView) };
    },
  );

  app.delete<Typed<Out<typeof PhotoParams>>>(
    '/photos/:photoId',
    {
      schema: {
        tags: ['photos'],
        summary:
          'Erase a photo: the photo record and its faces (records and vectors) go, and a tombstone keeps run, worker and publish from analysing it again',
        params: jsonSchema(PhotoParams),
        response: {
          200: objectOf({ photoId: { type: 'string' }, facesForgotten: { type: 'integer' } }),
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const { photoId } = request.params;
      requirePhoto(db, photoId);
      const { faceIds } = erasePhotos(db, [photoId], 'user');
      removeThumbnails(db.dataDir, faceIds);
      refreshReport(db, db.dataDir);
      return { photoId, facesForgotten: faceIds.length };
    },
  );
}

function faceView(f: StoredFace) {
  return {
    faceId: f.faceId,
    photoId: f.photoId,
    faceIndex: f.faceIndex,
    bbox: f.bbox,
    score: f.score,
    magnitude: f.magnitude,
    quality: f.quality,
    kept: f.kept,
    reason: f.reason,
    identityId: f.identityId,
    unassignedReason: f.unassignedReason,
  };
}
