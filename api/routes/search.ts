import type { FastifyInstance, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { z } from 'zod';
import { sniffImageFormat } from '../../pipeline/imageSignature.ts';
import { ApiError, toErrorResponse } from '../errors.ts';
import { searchByVector, type SearchResult } from '../search.ts';
import { errorResponses, type RouteContext } from '../context.ts';
import { requireFace } from './lookups.ts';
import { arrayOf, objectOf } from './responses.ts';
import { EmbeddingBody, FaceParams, jsonSchema, kQuery, type Out, type Typed } from '../schemas.ts';

const faceHit = objectOf({
  faceId: { type: 'string' },
  photoId: { type: 'string' },
  photo: { type: 'string', nullable: true },
  faceIndex: { type: 'integer' },
  identityId: { type: 'string', nullable: true },
  similarity: { type: 'number' },
  quality: { type: 'number' },
});
const identityHit = objectOf({
  identityId: { type: 'string' },
  name: { type: 'string', nullable: true },
  faceCount: { type: 'integer' },
  score: { type: 'number', description: 'cosine to the identity template' },
  bestFaceSimilarity: { type: 'number' },
});
const searchResult = objectOf({
  magnitude: { type: 'number', description: 'L2 norm of the raw query feature' },
  quality: { type: 'number', description: 'magnitude mapped to 0..1 by the model calibration' },
  identities: arrayOf(identityHit),
  faces: arrayOf(faceHit),
});

/** The shapes of the search requests, for the route types (the limits only set the numbers). */
type EmbeddingRequest = Out<ReturnType<typeof EmbeddingBody>>;
type KRequest = Out<ReturnType<typeof kQuery>>;

/** What a 503 BUSY asks the client to wait: one image analysis takes well under a second. */
const RETRY_AFTER_SECONDS = 1;

export function registerSearchRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { db, limits, metrics } = ctx;
  const imageSearches = new Set<FastifyRequest>();
  const range = ctx.params.qualityRange;

  app.post<Typed<unknown, unknown, EmbeddingRequest>>(
    '/search/embedding',
    {
      schema: {
        tags: ['search'],
        summary: 'Search by a raw (or unit) embedding of the store model',
        body: jsonSchema(EmbeddingBody(limits.maxK)),
        response: { 200: searchResult, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { body } = request;
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

  app.get<Typed<Out<typeof FaceParams>, KRequest>>(
    '/search/face/:faceId',
    {
      schema: {
        tags: ['search'],
        summary: 'Search with a stored face (the face itself is left out of the results)',
        params: jsonSchema(FaceParams),
        querystring: jsonSchema(kQuery(limits.maxK)),
        response: { 200: searchResult, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const { faceId } = request.params;
      const { k } = request.query;
      const face = requireFace(db, faceId);
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
        querystring: jsonSchema(kQuery(limits.maxK)),
        body: {
          type: 'object',
          required: ['image'],
          properties: { image: { type: 'string', format: 'binary' } },
        },
        response: {
          200: objectOf({
            width: { type: 'integer' },
            height: { type: 'integer' },
            faces: arrayOf(
              objectOf({
                faceIndex: { type: 'integer' },
                bbox: arrayOf({ type: 'number' }),
                score: { type: 'number' },
                kept: { type: 'boolean', description: 'false when below the quality gate' },
                reason: { type: 'string' },
                ...searchResult.properties,
              }),
            ),
          }),
          ...errorResponses(400, 401, 413, 415, 422, 503),
        },
      },
      // The body is a multipart stream read in the handler and k is checked there: the schemas above
      // only document this route (a route-level compiler replaces validation for every part).
      validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? () => true : undefined) as never,
    },
    async (request, reply) => {
      const k = queryK(request.query, limits.maxK);
      if (!ctx.analyzer)
        throw new ApiError(503, 'SEARCH_BY_IMAGE_UNAVAILABLE', 'this server was started without models');
      // analysis is the expensive part: beyond the bound a client is told at once to come back
      if (imageSearches.size >= limits.maxImageSearches) {
        throw new ApiError(
          503,
          'BUSY',
          `${imageSearches.size} searches by image are being analysed (limit ${limits.maxImageSearches}); retry shortly`,
          { 'retry-after': String(RETRY_AFTER_SECONDS) },
        );
      }
      // a slot is held until this request's answer is out (or its connection gone), however the
      // handler ends: a broken upload can be answered by the multipart plugin while it still reads
      imageSearches.add(request);
      let release = (): void => {};
      const answered = new Promise<never>((_, reject) => {
        release = () => {
          imageSearches.delete(request);
          reject(new ApiError(400, 'MALFORMED_MULTIPART', 'the upload ended before it was complete'));
        };
      });
      answered.catch(() => {});
      const socket = request.raw.socket;
      if (reply.sent || reply.raw.writableEnded || socket.destroyed) release();
      reply.raw.once('close', release);
      socket.once('close', release);
      try {
        return await searchByImage(request, k, answered);
      } finally {
        imageSearches.delete(request);
        reply.raw.off('close', release);
        socket.off('close', release);
      }
    },
  );

  async function searchByImage(request: FastifyRequest, k: number, answered: Promise<never>) {
    const bytes = await Promise.race([readUpload(request), answered]);
    await checkImageHeader(bytes, limits.maxPixels);
    const analysis = await ctx.analyzer!.analyzeBytes(bytes, 'query');
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
  }
}

/** `k` of a route whose validation is off (multipart): the same rules as the schema's, by hand. */
/** k of the image route, from the same schema as the other searches (the query string is text here). */
function queryK(query: unknown, maxK: number): number {
  const schema = kQuery(maxK).extend({ k: z.coerce.number().int().min(1).max(maxK).default(5) });
  const parsed = schema.safeParse(query ?? {});
  if (!parsed.success)
    throw new ApiError(400, 'INVALID_REQUEST', `querystring: ${z.prettifyError(parsed.error)}`);
  return parsed.data.k;
}

/** Reads the single uploaded file; the multipart plugin enforces the byte limit while streaming. */
async function readUpload(request: FastifyRequest): Promise<Buffer> {
  if (!request.isMultipart()) {
    throw new ApiError(415, 'NOT_MULTIPART', 'upload the image as multipart/form-data, field "image"');
  }
  let bytes: Buffer;
  try {
    const file = await request.file();
    if (!file) throw new ApiError(400, 'MISSING_IMAGE', 'no file in the upload (field "image")');
    bytes = await file.toBuffer();
  } catch (err) {
    // the plugin's own limit errors keep their codes; anything else the multipart parser throws
    // (no boundary, a body cut short, broken part headers) is the upload's fault, not ours
    if (err instanceof ApiError || toErrorResponse(err).status < 500) throw err;
    throw new ApiError(
      400,
      'MALFORMED_MULTIPART',
      `the multipart upload cannot be parsed: ${(err as Error).message}`,
    );
  }
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
