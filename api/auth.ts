import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.ts';

/** Routes anyone may call even when a token is configured (liveness probes). */
const PUBLIC_ROUTES = new Set(['/healthz']);

/**
 * Bearer-token check: when a token is configured every route but /healthz needs
 * `Authorization: Bearer <token>`. Compared in constant time over digests (lengths may differ).
 */
export function installAuth(app: FastifyInstance, token: string | undefined): void {
  if (!token) return;
  const expected = digest(token);
  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.url;
    if (route && PUBLIC_ROUTES.has(route)) return;
    const header = request.headers.authorization;
    if (!header) throw new ApiError(401, 'UNAUTHORIZED', 'missing Authorization: Bearer <token> header');
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
      throw new ApiError(401, 'INVALID_TOKEN', 'the bearer token is not valid');
    }
  });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
