import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FacepipeError } from '../core/errors.ts';
import { AnalyzeError } from '../pipeline/errors.ts';
import { NotFoundError, RejectedError, type Kind } from '../service/errors.ts';

/**
 * The one error shape of the lookup service: `{ error: { code, message } }` with a 4xx status for
 * anything the client got wrong. A 500 means a bug on our side, never bad input.
 */
export interface ErrorBody {
  error: { code: string; message: string };
}

export class ApiError extends FacepipeError {
  constructor(
    readonly statusCode: number,
    code: string,
    message: string,
    /** response headers that go with it (e.g. Retry-After on a 503) */
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

export const errorBodySchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

export function notFound(kind: Kind, id: string): NotFoundError {
  return new NotFoundError(kind, id);
}

/** Status and code for errors raised by the analysis core (`AnalyzeError.code`). */
const ANALYZE_ERRORS: Record<string, [number, string]> = {
  EMPTY_FILE: [400, 'EMPTY_FILE'],
  NOT_AN_IMAGE: [415, 'NOT_AN_IMAGE'],
  CORRUPT_IMAGE: [422, 'CORRUPT_IMAGE'],
  PIXEL_LIMIT: [413, 'PIXEL_LIMIT'],
  FILE_TOO_LARGE: [413, 'FILE_TOO_LARGE'],
};

/** Fastify's and its plugins' own error codes, mapped onto ours. */
const FRAMEWORK_ERRORS: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'MALFORMED_JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'MALFORMED_JSON'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'BODY_TOO_LARGE'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'BAD_CONTENT_LENGTH'],
  FST_REQ_FILE_TOO_LARGE: [413, 'FILE_TOO_LARGE'],
  FST_PARTS_LIMIT: [413, 'TOO_MANY_PARTS'],
  FST_FILES_LIMIT: [413, 'TOO_MANY_FILES'],
  FST_FIELDS_LIMIT: [413, 'TOO_MANY_FIELDS'],
  FST_PROTO_VIOLATION: [400, 'BAD_FIELD_NAME'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'NOT_MULTIPART'],
  FST_INVALID_JSON_FIELD_ERROR: [400, 'MALFORMED_JSON'],
};

/** Turns any thrown error into the status and body the client sees. */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof ApiError) return reply(err.statusCode, err.code, err.message);
  // the service's expected outcomes (service/errors.ts)
  if (err instanceof NotFoundError) return reply(404, err.code, err.message);
  if (err instanceof RejectedError) return reply(409, err.code, err.message);
  const e = (err ?? {}) as Partial<FastifyError> & { name?: string; message?: string; code?: string };
  if (e && Array.isArray(e.validation))
    return reply(400, 'INVALID_REQUEST', e.message ?? 'request does not match its schema');
  if (err instanceof AnalyzeError && ANALYZE_ERRORS[err.code]) {
    const [status, code] = ANALYZE_ERRORS[err.code];
    return reply(status, code, err.message);
  }
  if (e?.code && FRAMEWORK_ERRORS[e.code]) {
    const [status, code] = FRAMEWORK_ERRORS[e.code];
    return reply(status, code, e.message ?? code);
  }
  // A JSON body that does not parse surfaces as a SyntaxError with a 400 status.
  if (err instanceof SyntaxError && e.statusCode === 400) return reply(400, 'MALFORMED_JSON', err.message);
  // Any other client error fastify flags (4xx) keeps its status; the code is generic.
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return reply(e.statusCode, e.code ?? 'BAD_REQUEST', e.message ?? 'bad request');
  }
  return reply(500, 'INTERNAL', 'internal error');
}

function reply(status: number, code: string, message: string): { status: number; body: ErrorBody } {
  return { status, body: { error: { code, message } } };
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, res: FastifyReply) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.debug({ code: body.error.code }, 'client error');
    if (status === 401) res.header('www-authenticate', 'Bearer');
    if (err instanceof ApiError) res.headers(err.headers);
    return res.status(status).send(body);
  });
  app.setNotFoundHandler((request: FastifyRequest, res: FastifyReply) => {
    return res.status(404).send({
      error: {
        code: 'ROUTE_NOT_FOUND',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
      },
    });
  });
}
