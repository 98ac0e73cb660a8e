import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'facepipe_session';
/** a browser session lasts a working day; the token logs it in again after that */
const SESSION_MS = 12 * 60 * 60 * 1000;
/** at most this many live sessions (the oldest goes first): a loop of logins cannot grow memory */
const MAX_SESSIONS = 1000;

/**
 * Browser sessions of the web app. The bearer token logs a browser in once (the login form); the
 * browser then carries an HttpOnly, SameSite=Strict cookie holding a random session id (never the
 * token). Sessions live in memory: restarting `serve` logs every browser out. The session id also
 * keys the CSRF tokens of the app's forms (see app.ts).
 */
export class Sessions {
  private readonly live = new Map<string, number>();
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token ? digest(token) : undefined;
  }

  /** Is a token needed at all? (Without one the server is open, loopback-only by default.) */
  get required(): boolean {
    return this.expected !== undefined;
  }

  tokenMatches(candidate: string): boolean {
    return this.expected !== undefined && timingSafeEqual(digest(candidate), this.expected);
  }

  /** Starts a session and sets its cookie. */
  open(reply: FastifyReply): string {
    const id = randomBytes(32).toString('base64url');
    this.live.set(id, Date.now() + SESSION_MS);
    while (this.live.size > MAX_SESSIONS) this.live.delete(this.live.keys().next().value!);
    reply.setCookie(SESSION_COOKIE, id, {
      httpOnly: true,
      sameSite: 'strict',
      path: '/',
      maxAge: SESSION_MS / 1000,
    });
    return id;
  }

  close(request: FastifyRequest, reply: FastifyReply): void {
    const id = request.cookies[SESSION_COOKIE];
    if (id) this.live.delete(id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
  }

  /** the live session id the request carries, if any */
  idOf(request: FastifyRequest): string | undefined {
    const id = request.cookies?.[SESSION_COOKIE];
    if (!id) return undefined;
    const until = this.live.get(id);
    if (until === undefined) return undefined;
    if (until < Date.now()) {
      this.live.delete(id);
      return undefined;
    }
    return id;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
