import type { FastifyInstance } from 'fastify';
import type { FaceDatabase, StoredFace, StoredIdentity } from '../../indexers/types.ts';
import { refreshReport, removeThumbnails } from '../../pipeline/report.ts';
import { eraseIdentity } from '../../indexers/erasure.ts';
import { errorResponses, type RouteContext } from '../context.ts';
import { requireIdentity } from './lookups.ts';
import { arrayOf, objectOf } from './responses.ts';
import {
  IdentityParams,
  jsonSchema,
  ListIdentitiesQuery,
  OtherIdentityBody,
  EraseIdentityQuery,
  RenameBody,
  type Out,
  type Typed,
} from '../schemas.ts';

const idParams = jsonSchema(IdentityParams);
type IdParams = Out<typeof IdentityParams>;

const identitySummary = objectOf({
  identityId: { type: 'string' },
  name: { type: 'string', nullable: true },
  faceCount: { type: 'integer' },
  photoCount: { type: 'integer' },
  createdAt: { type: 'string' },
  updatedAt: { type: 'string' },
});

const identityDetail = objectOf({
  ...identitySummary.properties,
  faces: arrayOf(
    objectOf({
      faceId: { type: 'string' },
      photoId: { type: 'string' },
      photo: { type: 'string', nullable: true },
      faceIndex: { type: 'integer' },
      bbox: arrayOf({ type: 'number' }),
      magnitude: { type: 'number' },
      quality: { type: 'number' },
    }),
  ),
  photos: arrayOf(objectOf({ photoId: { type: 'string' }, uri: { type: 'string', nullable: true } })),
});

const otherIdentityBody = jsonSchema(OtherIdentityBody);

/** The options of a route on one identity that answers with its detail (as it is after the route). */
function identityDetailRoute(summary: string, body: object | undefined, errors: number[]) {
  return {
    schema: {
      tags: ['identities'],
      summary,
      params: idParams,
      ...(body ? { body } : {}),
      response: { 200: identityDetail, ...errorResponses(...errors) },
    },
  };
}

export function registerIdentityRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { db } = ctx;
  const currentDetail = (identityId: string) => detail(db, requireIdentity(db, identityId));

  app.get<Typed<unknown, Out<typeof ListIdentitiesQuery>>>(
    '/identities',
    {
      schema: {
        tags: ['identities'],
        summary: 'List identities, largest first',
        querystring: jsonSchema(ListIdentitiesQuery),
        response: {
          200: objectOf({ total: { type: 'integer' }, identities: arrayOf(identitySummary) }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const { limit, offset } = request.query;
      const photosOf = photoSetsByIdentity(db.listFaces({ kept: true }));
      const all = db
        .listIdentities()
        .sort((a, b) => b.faceCount - a.faceCount || a.identityId.localeCompare(b.identityId));
      return {
        total: all.length,
        identities: all
          .slice(offset, offset + limit)
          .map((i) => summary(i, photosOf.get(i.identityId)?.size ?? 0)),
      };
    },
  );

  app.get<Typed<IdParams>>(
    '/identities/:identityId',
    identityDetailRoute('One identity with its faces and photos', undefined, [401, 404]),
    async (request) => currentDetail(request.params.identityId),
  );

  app.patch<Typed<IdParams, unknown, Out<typeof RenameBody>>>(
    '/identities/:identityId',
    identityDetailRoute(
      'Rename an identity (null clears the name); names survive reclustering',
      jsonSchema(RenameBody),
      [400, 401, 404],
    ),
    async (request) => {
      const { identityId } = request.params;
      const { name } = request.body;
      requireIdentity(db, identityId);
      ctx.actions.rename(identityId, name);
      return currentDetail(identityId);
    },
  );

  app.post<Typed<IdParams, unknown, Out<typeof OtherIdentityBody>>>(
    '/identities/:identityId/merge',
    identityDetailRoute(
      'Merge identity `other` into this one (its faces move here; `other` is removed)',
      otherIdentityBody,
      [400, 401, 404, 409],
    ),
    async (request) => {
      const { identityId } = request.params;
      const { other } = request.body;
      ctx.actions.merge(identityId, other);
      return currentDetail(identityId);
    },
  );

  app.post<Typed<IdParams, unknown, Out<typeof OtherIdentityBody>>>(
    '/identities/:identityId/different',
    {
      schema: {
        tags: ['identities'],
        summary: 'Record that this identity and `other` are different people (never merged again)',
        params: idParams,
        body: otherIdentityBody,
        response: {
          200: objectOf({
            identityId: { type: 'string' },
            other: { type: 'string' },
            different: { type: 'boolean' },
          }),
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request) => {
      const { identityId } = request.params;
      const { other } = request.body;
      ctx.actions.markDifferent(identityId, other);
      return { identityId, other, different: true };
    },
  );

  app.delete<Typed<IdParams, Out<typeof EraseIdentityQuery>>>(
    '/identities/:identityId',
    {
      schema: {
        tags: ['identities'],
        summary:
          'Forget an identity: its faces (records and vectors) are erased too; with photos=true every photo it appears in is erased (tombstoned)',
        params: idParams,
        querystring: jsonSchema(EraseIdentityQuery),
        response: {
          200: objectOf({
            identityId: { type: 'string' },
            facesForgotten: { type: 'integer' },
            photosErased: { type: 'integer' },
          }),
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const { identityId } = request.params;
      const { photos } = request.query;
      requireIdentity(db, identityId);
      const erased = eraseIdentity(db, identityId, { photos });
      removeThumbnails(db.dataDir, erased.faceIds);
      refreshReport(db, db.dataDir);
      return { identityId, facesForgotten: erased.faceIds.length, photosErased: erased.photos.length };
    },
  );
}

function photoSetsByIdentity(faces: StoredFace[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const f of faces) {
    if (!f.identityId) continue;
    let set = out.get(f.identityId);
    if (!set) out.set(f.identityId, (set = new Set()));
    set.add(f.photoId);
  }
  return out;
}

function summary(i: StoredIdentity, photoCount: number) {
  return {
    identityId: i.identityId,
    name: i.name,
    faceCount: i.faceCount,
    photoCount,
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
  };
}

function detail(db: FaceDatabase, identity: StoredIdentity) {
  const faces = db.listFaces({ identityId: identity.identityId });
  const photoIds = [...new Set(faces.map((f) => f.photoId))];
  const uris = new Map(photoIds.map((id) => [id, db.getPhoto(id)?.uri ?? null]));
  return {
    ...summary(identity, photoIds.length),
    faces: faces.map((f) => ({
      faceId: f.faceId,
      photoId: f.photoId,
      photo: uris.get(f.photoId) ?? null,
      faceIndex: f.faceIndex,
      bbox: f.bbox,
      magnitude: f.magnitude,
      quality: f.quality,
    })),
    photos: photoIds.map((photoId) => ({ photoId, uri: uris.get(photoId) ?? null })),
  };
}
