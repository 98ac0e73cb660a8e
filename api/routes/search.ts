import type { FastifyInstance, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { sniffImageFormat } from '../../pipeline/imageSignature.ts';
import { ApiError, notFound } from '../errors.ts';
import { searchByVector, type SearchResult } from '../search.ts';
import { errorResponses, type RouteContext } from '../context.ts';

const faceHit = {
  type: 'object',
  properties: {
    faceId: { type: 'string' },
    photoId: { type: 'string' },
    photo: { type: 'string', nullable: true },
    faceIndex: { type: 'integer' },
    identityId: { type: 'string', nullable: true },
    similarity: { type: 'number' },
    quality: { type: 'number' },
  },
};
const identityHit = {
  type: 'object',
  properties: {
    identityId: { type: 'string' },
    name: { type: 'string', nullable: true },
    faceCount: { type: 'integer' },
    score: { type: 'number', description: 'cosine to the identity template' },
    bestFaceSimilarity: { type: 'number' },
  },
};
const searchResult = {
  type: 'object',
  properties: {
    magnitude: { type: 'number', description: 'L2 norm of the raw query feature' },
    quality: { type: 'number', description: 'magnitude mapped to 0..1 by the model calibration' },
    identities: { type: 'array', items: identityHit },
    faces: { type: 'array', items: faceHit },
  },
};

function kQuery(maxK: number) {
  return {
    type: 'object',
    properties: { k: { type: 'integer', minimum: 1, maximum: maxK, default: 5 } },
    additionalProperties: false,
  } as const;
}

export function registerSearchRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { db, limits, metrics } = ctx;
  const range = ctx.params.qualityRange;

  app.post(
    '/search/embedding',
    {
      schema: {
        tags: ['search'],
        summary: 'Search by a raw (or unit) embedding of the store model',
        body: {
          type: 'object',
          required: ['embedding'],
          additionalProperties: false,
          properties: {
            embedding: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 8192 },
            k: { type: 'integer', minimum: 1, maximum: limits.maxK, default: 5 },
          },
        },
        response: { 200: searchResult, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const body = request.body as { embedding: number[]; k: number };
      if (body.embedding.length !== db.dim) {
        throw new ApiError(
          400,
          'DIMENSION_MISMATCH',
          `embedding has ${body.embedding.length} values, model ${db.modelId} has ${db.dim}`,
        );
      }
      const vector = Float32Array.from(body.embedding);
      if (!vector.every(Number.isFinite) || vector.every((v) => v === 0)) {
        throw new ApiError(400, 'INVALID_EMBEDDING', 'embedding must be finite and not all zero');
      }
      metrics.searches.inc({ kind: 'embedding' });
      return searchByVector(db, vector, body.k, range);
    },
  );

  app.get(
    '/search/face/:faceId',
    {
      schema: {
        tags: ['search'],
        summary: 'Search with a stored face (the face itself is left out of the results)',
        params: { type: 'object', properties: { faceId: { type: 'string' } }, required: ['faceId'] },
        querystring: kQuery(limits.maxK),
        response: { 200: searchResult, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const { faceId } = request.params as { faceId: string };
      const { k } = request.query as { k: number };
      const face = db.getFace(faceId);
      if (!face) throw notFound('face', faceId);
      metrics.searches.inc({ kind: 'face' });
      return searchByVector(db, face.embedding, k, range, faceId);
    },
  );

  app.post(
    '/search/image',
    {
      schema: {
        tags: ['search'],
        summary: 'Search by image: multipart upload (field "image"); every face found is searched',
        consumes: ['multipart/form-data'],
        querystring: kQuery(limits.maxK),
        body: {
          type: 'object',
          required: ['image'],
          properties: { image: { type: 'string', format: 'binary' } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              width: { type: 'integer' },
              height: { type: 'integer' },
              faces: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    faceIndex: { type: 'integer' },
                    bbox: { type: 'array', items: { type: 'number' } },
                    score: { type: 'number' },
                    kept: { type: 'boolean', description: 'false when below the quality gate' },
                    reason: { type: 'string' },
                    ...searchResult.properties,
                  },
                },
              },
            },
          },
          ...errorResponses(400, 401, 413, 415, 422, 503),
        },
      },
      // The body is a multipart stream read in the handler and k is checked there: the schemas above
      // only document this route (a route-level compiler replaces validation for every part).
      validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? () => true : undefined) as never,
    },
    async (request) => {
      const k = queryK(request.query, limits.maxK);
      if (!ctx.analyzer)
        throw new ApiError(503, 'SEARCH_BY_IMAGE_UNAVAILABLE', 'this server was started without models');
      const bytes = await readUpload(request);
      await checkImageHeader(bytes, limits.maxPixels);
      const analysis = await ctx.analyzer.analyzeBytes(bytes, 'query');
      metrics.searches.inc({ kind: 'image' });
      return {
        width: analysis.width,
        height: analysis.height,
        faces: analysis.faces.map((f) => ({
          faceIndex: f.faceIndex,
          bbox: f.bbox,
          score: f.score,
          kept: f.kept,
          ...(f.reason ? { reason: f.reason } : {}),
          ...searchByVector(db, f.embedding, k, range),
        })),
      };
    },
  );
}

/** `k` of a route whose validation is off (multipart): the same rules as the schema's, by hand. */
function queryK(query: unknown, maxK: number): number {
  const q = (query ?? {}) as Record<string, unknown>;
  const extra = Object.keys(q).filter((key) => key !== 'k');
  if (extra.length > 0)
    throw new ApiError(
      400,
      'INVALID_REQUEST',
      `querystring must NOT have additional properties (${extra.join(', ')})`,
    );
  if (q.k === undefined) return 5;
  const k = Number(q.k);
  if (!Number.isInteger(k) || k < 1 || k > maxK)
    throw new ApiError(400, 'INVALID_REQUEST', `querystring/k must be an integer in 1..${maxK}`);
  return k;
}

/** Reads the single uploaded file; the multipart plugin enforces the byte limit while streaming. */
async function readUpload(request: FastifyRequest): Promise<Buffer> {
  if (!request.isMultipart()) {
    throw new ApiError(415, 'NOT_MULTIPART', 'upload the image as multipart/form-data, field "image"');
  }
  const file = await request.file();
  if (!file) throw new ApiError(400, 'MISSING_IMAGE', 'no file in the upload (field "image")');
  const bytes = await file.toBuffer();
  if (bytes.length === 0) throw new ApiError(400, 'EMPTY_FILE', 'the uploaded file is empty');
  return bytes;
}

/**
 * Reads only the image header: a tiny PNG can declare 30000×30000 pixels (a decompression bomb),
 * so the pixel count is checked before anything is decoded.
 */
async function checkImageHeader(bytes: Buffer, maxPixels: number): Promise<void> {
  // decided by the bytes' signature, never by a decoder message (see pipeline/imageSignature.ts)
  if (!sniffImageFormat(bytes)) {
    throw new ApiError(
      415,
      'NOT_AN_IMAGE',
      'the upload is not an image (JPEG, PNG, WebP, GIF, TIFF, HEIF, AVIF)',
    );
  }
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(bytes, { limitInputPixels: false }).metadata());
  } catch {
    throw new ApiError(422, 'CORRUPT_IMAGE', 'the upload looks like an image but its header cannot be read');
  }
  if (!width || !height) throw new ApiError(422, 'CORRUPT_IMAGE', 'the upload has no image dimensions');
  if (width * height > maxPixels) {
    throw new ApiError(
      413,
      'PIXEL_LIMIT',
      `image is ${width}×${height} = ${width * height} pixels, limit ${maxPixels}`,
    );
  }
}

export type { SearchResult };
