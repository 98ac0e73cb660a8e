import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.ts';

/** Routes anyone may call even when a token is configured (liveness probes). */
const PUBLIC_ROUTES = new Set(['/healthz']);
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** How the web app's browser sessions take part in authentication (api/web/app.ts). */
export interface BrowserAccess {
  /** routes anyone may call: the login page and the app's static assets */
  isPublic(route: string): boolean;
  /** the request carries a live session cookie */
  signedIn(request: FastifyRequest): boolean;
  /** a page of the app (GET): an anonymous browser is sent to the login page */
  isPage(route: string): boolean;
  /** a form of the app (POST, CSRF-checked by the app itself) */
  isForm(route: string): boolean;
}

/**
 * Bearer-token check: when a token is configured every route but /healthz needs
 * `Authorization: Bearer <token>`. Compared in constant time over digests (lengths may differ).
 * A browser session (cookie, after the login form) stands in for the token on the app's pages, its
 * CSRF-checked forms and read-only API routes (thumbnails, JSON reads); changing data through the
 * JSON API still needs the bearer token.
 */
export function installAuth(app: FastifyInstance, token: string | undefined, browser?: BrowserAccess): void {
  if (!token) return;
  const expected = digest(token);
  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route && (PUBLIC_ROUTES.has(route) || browser?.isPublic(route))) return;
    const header = request.headers.authorization;
    if (!header && browser?.signedIn(request)) {
      if (SAFE_METHODS.has(request.method) || (route && browser.isForm(route))) return;
      throw new ApiError(
        401,
        'BEARER_REQUIRED',
        'changing data through the API needs Authorization: Bearer <token>; the browser session serves the web app',
      );
    }
    if (!header) {
      if (route && SAFE_METHODS.has(request.method) && browser?.isPage(route)) {
        const next = encodeURIComponent(request.url);
        return reply.redirect(`/login?next=${next}`, 303);
      }
      throw new ApiError(401, 'UNAUTHORIZED', 'missing Authorization: Bearer <token> header');
    }
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
      throw new ApiError(401, 'INVALID_TOKEN', 'the bearer token is not valid');
    }
  });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
