import type { FastifyInstance } from 'fastify';
import type { StoredFace } from '../../indexers/types.ts';
import { notFound } from '../errors.ts';
import { errorResponses, type RouteContext } from '../context.ts';
import { refreshReport, removeThumbnails } from '../../pipeline/report.ts';

const face = {
  type: 'object',
  properties: {
    faceId: { type: 'string' },
    photoId: { type: 'string' },
    faceIndex: { type: 'integer' },
    bbox: { type: 'array', items: { type: 'number' } },
    score: { type: 'number' },
    magnitude: { type: 'number' },
    quality: { type: 'number' },
    kept: { type: 'boolean' },
    reason: { type: 'string', nullable: true },
    identityId: { type: 'string', nullable: true },
  },
};

export function registerFaceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { db } = ctx;

  app.get(
    '/faces/:faceId',
    {
      schema: {
        tags: ['faces'],
        summary: 'One stored face (no embedding)',
        params: { type: 'object', required: ['faceId'], properties: { faceId: { type: 'string' } } },
        response: { 200: face, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const { faceId } = request.params as { faceId: string };
      const f = db.getFace(faceId);
      if (!f) throw notFound('face', faceId);
      return faceView(f);
    },
  );

  app.post(
    '/faces/:faceId/move',
    {
      schema: {
        tags: ['faces'],
        summary:
          'Move a face to another identity, or out of its identity (identityId: null); honoured by later reclusters',
        params: { type: 'object', required: ['faceId'], properties: { faceId: { type: 'string' } } },
        body: {
          type: 'object',
          required: ['identityId'],
          additionalProperties: false,
          properties: { identityId: { type: 'string', minLength: 1, nullable: true } },
        },
        response: { 200: face, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const { faceId } = request.params as { faceId: string };
      const { identityId } = request.body as { identityId: string | null };
      ctx.identities.moveFace(faceId, identityId);
      return faceView(db.getFace(faceId)!);
    },
  );

  app.get(
    '/photos/:photoId',
    {
      schema: {
        tags: ['photos'],
        summary: 'One photo and its faces',
        params: { type: 'object', required: ['photoId'], properties: { photoId: { type: 'string' } } },
        response: {
          200: {
            type: 'object',
            properties: {
              photoId: { type: 'string' },
              uri: { type: 'string' },
              width: { type: 'integer', nullable: true },
              height: { type: 'integer', nullable: true },
              status: { type: 'string' },
              error: { type: 'string', nullable: true },
              faces: { type: 'array', items: face },
            },
          },
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const { photoId } = request.params as { photoId: string };
      const p = db.getPhoto(photoId);
      if (!p) throw notFound('photo', photoId);
      return { ...p, faces: db.facesOfPhoto(photoId).map(faceView) };
    },
  );

  app.delete(
    '/photos/:photoId',
    {
      schema: {
        tags: ['photos'],
        summary: 'Forget a photo: the photo record and its faces (records and vectors) are erased',
        params: { type: 'object', required: ['photoId'], properties: { photoId: { type: 'string' } } },
        response: {
          200: {
            type: 'object',
            properties: { photoId: { type: 'string' }, facesForgotten: { type: 'integer' } },
          },
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const { photoId } = request.params as { photoId: string };
      if (!db.getPhoto(photoId)) throw notFound('photo', photoId);
      const faceIds = db.facesOfPhoto(photoId).map((f) => f.faceId);
      const facesForgotten = db.forgetPhoto(photoId);
      db.checkpoint();
      removeThumbnails(db.dataDir, faceIds);
      refreshReport(db, db.dataDir);
      return { photoId, facesForgotten };
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
  };
}
