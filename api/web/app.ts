import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import csrf from '@fastify/csrf-protection';
import sharp from 'sharp';
import type { FaceDatabase } from '../../indexers/types.ts';
import type { ClusterParams } from '../../clustering/params.ts';
import type { Analyzer } from '../../pipeline/analyze.ts';
import { similarIdentities } from '../../clustering/suggestions.ts';
import type { UserActions } from '../../service/userActions.ts';
import { eraseIdentity, erasePhotos } from '../../indexers/erasure.ts';
import { refreshReport, removeThumbnails, thumbPath } from '../../pipeline/report.ts';
import type { BrowserAccess } from '../auth.ts';
import { packagePath } from '../../core/paths.ts';
import { toErrorResponse } from '../errors.ts';
import { searchByVector } from '../search.ts';
import { reviewQueue } from '../routes/people.ts';
import { Sessions } from './session.ts';
import * as pages from './pages.ts';

/** What the pages need from the server (kept narrow: no import of the server module). */
export interface WebContext {
  db: FaceDatabase;
  params: ClusterParams;
  actions: UserActions;
  analyzer?: Analyzer;
  limits: { maxUploadBytes: number; maxPixels: number };
}

/** What fastify hands a page or form handler: path parameters, the query, a urlencoded form body. */
type Fields = Record<string, string | string[] | undefined>;
interface WebRoute {
  Params: Record<string, string>;
  Querystring: Record<string, string | undefined>;
  Body: Fields;
}
type WebRequest = FastifyRequest<WebRoute>;

const PAGE_SIZE = 48;
const REVIEW_PAGE = 30;
const ASSETS_DIR = packagePath('api/web/assets');
const ASSET_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};
/** Everything the app shows comes from this process: no CDN, no inline script, no framing. */
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const PAGE_ROUTES = new Set([
  '/',
  '/person/:identityId',
  '/person/:identityId/erase',
  '/review',
  '/photo/:photoId',
  '/photo/:photoId/erase',
  '/search',
  '/undo',
]);
const PUBLIC = new Set(['/login', '/assets/:file']);

/**
 * The people view: a web app served by `facepipe serve` on the same port, on top of the same
 * store and identity service as the JSON API. Pages are rendered on the server (pages.ts); every
 * change is a POST form carrying a CSRF token, answered with a redirect back (so reload never
 * repeats it). With a token configured, the login form turns the token into a browser session.
 */
export async function registerWebApp(
  app: FastifyInstance,
  opts: { token?: string },
): Promise<{ sessions: BrowserAccess; registerPages(ctx: WebContext): void }> {
  const sessions = new Sessions(opts.token);
  await app.register(cookie, { secret: randomBytes(32).toString('hex') });
  const access: BrowserAccess = {
    isPublic: (route) => PUBLIC.has(route),
    signedIn: (request) => sessions.idOf(request) !== undefined,
    isPage: (route) => PAGE_ROUTES.has(route),
    isForm: (route) => FORM_ROUTES.has(route),
  };
  return {
    sessions: access,
    registerPages: (ctx) => void app.register((web) => pagesPlugin(web, ctx, sessions)),
  };
}

const FORM_ROUTES = new Set<string>();

async function pagesPlugin(web: FastifyInstance, ctx: WebContext, sessions: Sessions): Promise<void> {
  const { db, actions } = ctx;
  // form bodies only here: the JSON API keeps refusing them (a cross-site form cannot reach it)
  await web.register(formbody, { bodyLimit: 256 * 1024 });
  await web.register(csrf, {
    cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, signed: true },
    getToken: (req: FastifyRequest) => csrfTokenOf(req as WebRequest),
  });

  const assets = loadAssets();

  web.addHook('onSend', async (request, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
      reply.header('content-security-policy', CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('cache-control', 'no-store');
    }
    return payload;
  });

  web.setErrorHandler(async (err, request, reply) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500) request.log.error({ err }, 'page failed');
    const message = (err as { code?: string }).code?.startsWith('FST_CSRF')
      ? 'This form has expired (or came from another site). Reload the page and try again.'
      : body.error.message;
    const c = await chrome(request as WebRequest, reply, 'Error', 'none');
    return reply
      .status(status)
      .type('text/html; charset=utf-8')
      .send(pages.errorPage(c, status, message));
  });

  const chrome = async (
    request: WebRequest,
    reply: FastifyReply,
    title: string,
    section: pages.Chrome['section'],
  ): Promise<pages.Chrome> => {
    const done = Number(request.query?.done);
    const action = Number.isInteger(done) && done > 0 ? db.people.getAction(done) : undefined;
    return {
      title,
      section,
      csrf: await reply.generateCsrf(),
      reviewCount: db.people.unassignedCount(),
      signedIn: sessions.required && sessions.idOf(request) !== undefined,
      notice: action
        ? {
            text: action.summary,
            actionId: action.undoneBy || action.kind === 'undo' ? undefined : action.id,
          }
        : undefined,
    };
  };
  const html = (reply: FastifyReply, body: string) => reply.type('text/html; charset=utf-8').send(body);
  /** POST-redirect-GET: the outcome (and its undo) is shown on the page the form came back to */
  const back = (reply: FastifyReply, to: string, actionId?: number) =>
    reply.redirect(actionId ? `${to}${to.includes('?') ? '&' : '?'}done=${actionId}` : to, 303);
  const form = (
    route: string,
    handler: (request: WebRequest, reply: FastifyReply, body: FormBody) => Promise<unknown> | unknown,
  ) => {
    FORM_ROUTES.add(route);
    web.post<WebRoute>(
      route,
      { preHandler: web.csrfProtection, schema: { hide: true } },
      async (request, reply) => handler(request, reply, new FormBody(request.body)),
    );
  };

  // ---- sign in -----------------------------------------------------------------------------------

  web.get<WebRoute>('/login', { schema: { hide: true } }, async (request, reply) => {
    const next = safeNext(request.query.next);
    if (!sessions.required || sessions.idOf(request)) return reply.redirect(next, 303);
    return html(reply, pages.loginPage({ next }));
  });

  web.post<WebRoute>('/login', { schema: { hide: true } }, async (request, reply) => {
    const body = new FormBody(request.body);
    const next = safeNext(body.get('next'));
    if (!sessions.required) return reply.redirect(next, 303);
    if (!sessions.tokenMatches(body.get('token') ?? ''))
      return reply
        .status(401)
        .type('text/html; charset=utf-8')
        .send(pages.loginPage({ next, error: 'That token is not right.' }));
    sessions.open(reply);
    return reply.redirect(next, 303);
  });

  form('/logout', (request, reply) => {
    sessions.close(request, reply);
    return reply.redirect('/login', 303);
  });

  // ---- assets, thumbnails, photos ----------------------------------------------------------------

  web.get<WebRoute>('/assets/:file', { schema: { hide: true } }, async (request, reply) => {
    const asset = assets.get(param(request, 'file'));
    if (!asset) return reply.status(404).type('text/plain').send('not found');
    return cached(request, reply, asset.etag, asset.type, asset.body);
  });

  web.get<WebRoute>('/thumbs/:file', { schema: { hide: true } }, async (request, reply) => {
    const file = param(request, 'file');
    const faceId = file.endsWith('.jpg') ? file.slice(0, -4) : '';
    // only faces the store still holds: an erased face's crop is never served, even if a file lingers
    if (!faceId || !db.getFace(faceId)) return reply.status(404).type('text/plain').send('no such face');
    const p = thumbPath(db.dataDir, faceId);
    if (!existsSync(p)) return reply.status(404).type('text/plain').send('no thumbnail');
    const st = statSync(p);
    const etag = `"${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}"`;
    return cached(request, reply, etag, 'image/jpeg', () => readFile(p));
  });

  web.get<WebRoute>('/photo/:photoId/image', { schema: { hide: true } }, async (request, reply) => {
    const photo = db.getPhoto(param(request, 'photoId'));
    const file = photo && photo.status === 'done' ? photoFile(photo.uri) : null;
    if (!file || !existsSync(file)) return reply.status(404).type('text/plain').send('photo not available');
    const st = statSync(file);
    const etag = `"${photo!.contentHash ?? st.size.toString(36) + '-' + Math.floor(st.mtimeMs).toString(36)}"`;
    return cached(request, reply, etag, mimeOf(file), () => readFile(file));
  });

  // ---- People ------------------------------------------------------------------------------------

  web.get<WebRoute>('/', { schema: { hide: true } }, async (request, reply) => {
    const q = request.query;
    const name = (q.q ?? '').trim().slice(0, 200);
    const unnamedFirst = q.unnamed === '1';
    const includeHidden = q.hidden === '1';
    let page = Math.max(1, Math.floor(Number(q.page) || 1));
    let result = db.people.personPage({
      limit: PAGE_SIZE,
      offset: (page - 1) * PAGE_SIZE,
      name,
      unnamedFirst,
      includeHidden,
    });
    const pagesTotal = Math.max(1, Math.ceil(result.total / PAGE_SIZE));
    if (page > pagesTotal) {
      page = pagesTotal;
      result = db.people.personPage({
        limit: PAGE_SIZE,
        offset: (page - 1) * PAGE_SIZE,
        name,
        unnamedFirst,
        includeHidden,
      });
    }
    const c = await chrome(request, reply, 'People', 'people');
    return html(
      reply,
      pages.peoplePage(c, { ...result, page, pages: pagesTotal, q: name, unnamedFirst, includeHidden }),
    );
  });

  // ---- Person ------------------------------------------------------------------------------------

  web.get<WebRoute>('/person/:identityId', { schema: { hide: true } }, async (request, reply) => {
    const identity = requireIdentity(db, param(request, 'identityId'));
    const faces = db
      .listFaces({ identityId: identity.identityId })
      .sort((a, b) => b.quality - a.quality || (a.faceId < b.faceId ? -1 : 1));
    const cover = db.people.coverOf(identity.identityId, identity.coverFaceId);
    const c = await chrome(request, reply, pages.personName(identity), 'people');
    return html(
      reply,
      pages.personPage(c, {
        identityId: identity.identityId,
        name: identity.name,
        hidden: identity.hidden,
        faceCount: identity.faceCount,
        photoCount: new Set(faces.map((f) => f.photoId)).size,
        faces: faces.map((f) => ({
          faceId: f.faceId,
          photoId: f.photoId,
          photoName: photoName(db, f.photoId),
          quality: f.quality,
          cover: f.faceId === cover,
        })),
        similar: similarIdentities(db, identity.identityId, 6)
          .filter((s) => s.score > 0)
          .map((s) => ({
            ...s,
            coverFaceId: db.people.coverOf(s.identityId, db.getIdentity(s.identityId)?.coverFaceId ?? null),
          })),
        names: db.people.names(identity.identityId),
      }),
    );
  });

  form('/person/:identityId/rename', (request, reply, body) => {
    const id = requireIdentity(db, param(request, 'identityId')).identityId;
    const name = (body.get('name') ?? '').trim().slice(0, 200);
    return back(reply, `/person/${enc(id)}`, actions.rename(id, name || null));
  });

  form('/person/:identityId/faces', (request, reply, body) => {
    const id = requireIdentity(db, param(request, 'identityId')).identityId;
    const cover = body.get('cover');
    if (cover) return back(reply, `/person/${enc(id)}`, actions.setCover(id, cover));
    const faceIds = body.all('face').filter((f) => db.getFace(f)?.identityId === id);
    if (faceIds.length === 0) throw new UserError('Select one or more faces first.');
    if (body.get('action') === 'split') {
      const made = actions.split(faceIds, body.get('newName')?.trim() || null);
      return back(reply, `/person/${enc(made.identityId)}`, made.actionId);
    }
    if (body.get('action') === 'move_out') return back(reply, `/person/${enc(id)}`, actions.moveOut(faceIds));
    throw new UserError('Choose "Not this person" or "New person from these".');
  });

  form('/person/:identityId/merge', (request, reply, body) => {
    const id = requireIdentity(db, param(request, 'identityId')).identityId;
    const other = resolvePerson(db, body.get('other') ?? '', id);
    return back(reply, `/person/${enc(id)}`, actions.merge(id, other));
  });

  form('/person/:identityId/different', (request, reply, body) => {
    const id = requireIdentity(db, param(request, 'identityId')).identityId;
    const other = requireIdentity(db, body.get('other') ?? '').identityId;
    return back(reply, `/person/${enc(id)}`, actions.markDifferent(id, other));
  });

  form('/person/:identityId/hide', (request, reply, body) => {
    const id = requireIdentity(db, param(request, 'identityId')).identityId;
    return back(reply, `/person/${enc(id)}`, actions.hide(id, body.get('hidden') === '1'));
  });

  web.get<WebRoute>('/person/:identityId/erase', { schema: { hide: true } }, async (request, reply) => {
    const identity = requireIdentity(db, param(request, 'identityId'));
    const c = await chrome(request, reply, 'Erase a person', 'people');
    return html(
      reply,
      pages.confirmPage(c, {
        heading: `Erase ${pages.personName(identity)}?`,
        text: `Their ${identity.faceCount} faces (records, vectors and thumbnails) are erased for good. This cannot be undone.`,
        action: `/person/${enc(identity.identityId)}/erase`,
        options: [{ name: 'photos', label: 'Also erase every photo they appear in (never analysed again)' }],
        back: `/person/${enc(identity.identityId)}`,
      }),
    );
  });

  form('/person/:identityId/erase', (request, reply, body) => {
    const id = requireIdentity(db, param(request, 'identityId')).identityId;
    if (body.get('confirm') !== 'yes') return reply.redirect(`/person/${enc(id)}/erase`, 303);
    const erased = eraseIdentity(db, id, { photos: body.get('photos') === '1' });
    removeThumbnails(db.dataDir, erased.faceIds);
    refreshReport(db, db.dataDir);
    return reply.redirect('/', 303);
  });

  // ---- Review ------------------------------------------------------------------------------------

  web.get<WebRoute>('/review', { schema: { hide: true } }, async (request, reply) => {
    const q = request.query;
    const offset = Math.max(0, Math.floor(Number(q.offset) || 0));
    const queue = reviewQueue(db, REVIEW_PAGE, offset);
    const c = await chrome(request, reply, 'Review', 'review');
    return html(
      reply,
      pages.reviewPage(c, {
        total: queue.total,
        offset,
        items: queue.faces.map((f) => ({
          ...f,
          photoName: photoName(db, f.photoId),
          suggestion: f.suggestion && {
            ...f.suggestion,
            coverFaceId: db.people.coverOf(
              f.suggestion.identityId,
              db.getIdentity(f.suggestion.identityId)?.coverFaceId ?? null,
            ),
          },
        })),
      }),
    );
  });

  form('/review/:faceId', (request, reply, body) => {
    const faceId = param(request, 'faceId');
    const face = db.getFace(faceId);
    if (!face || !face.kept) throw new NotFound('That face is no longer in the store.');
    const focus = String(Math.max(0, Math.floor(Number(body.get('focus')) || 0)));
    const to = `/review?focus=${focus}`;
    const kind = body.get('action');
    if (kind === 'new') return back(reply, to, actions.split([faceId]).actionId);
    const identityId = requireIdentity(db, body.get('identityId') ?? '').identityId;
    if (kind === 'accept') return back(reply, to, actions.accept(faceId, identityId));
    if (kind === 'reject') return back(reply, to, actions.reject(faceId, identityId));
    throw new UserError('Unknown review action.');
  });

  // ---- Photo -------------------------------------------------------------------------------------

  web.get<WebRoute>('/photo/:photoId', { schema: { hide: true } }, async (request, reply) => {
    const photo = db.getPhoto(param(request, 'photoId'));
    if (!photo) throw new NotFound('No such photo (it may have been erased).');
    const faces = db.facesOfPhoto(photo.photoId);
    const c = await chrome(request, reply, photoName(db, photo.photoId), 'none');
    return html(
      reply,
      pages.photoPage(c, {
        photoId: photo.photoId,
        name: photo.uri,
        width: photo.width ?? 1,
        height: photo.height ?? 1,
        faces: faces.map((f) => ({
          faceId: f.faceId,
          bbox: f.bbox,
          kept: f.kept,
          identityId: f.identityId,
          name: f.identityId ? (db.getIdentity(f.identityId)?.name ?? null) : null,
        })),
      }),
    );
  });

  web.get<WebRoute>('/photo/:photoId/erase', { schema: { hide: true } }, async (request, reply) => {
    const photo = db.getPhoto(param(request, 'photoId'));
    if (!photo) throw new NotFound('No such photo (it may have been erased).');
    const c = await chrome(request, reply, 'Erase a photo', 'none');
    return html(
      reply,
      pages.confirmPage(c, {
        heading: `Erase ${path.basename(photoFile(photo.uri) ?? photo.uri)}?`,
        text: 'Its faces (records, vectors and thumbnails) are erased for good, and the photo is never analysed again (from this path or a copy of it) unless you ask for it with --include-erased. The file itself is not deleted.',
        action: `/photo/${enc(photo.photoId)}/erase`,
        back: `/photo/${enc(photo.photoId)}`,
      }),
    );
  });

  form('/photo/:photoId/erase', (request, reply, body) => {
    const photo = db.getPhoto(param(request, 'photoId'));
    if (!photo) throw new NotFound('No such photo (it may have been erased).');
    if (body.get('confirm') !== 'yes') return reply.redirect(`/photo/${enc(photo.photoId)}/erase`, 303);
    const erased = erasePhotos(db, [photo.photoId], 'user');
    removeThumbnails(db.dataDir, erased.faceIds);
    refreshReport(db, db.dataDir);
    return reply.redirect('/', 303);
  });

  // ---- Search ------------------------------------------------------------------------------------

  web.get<WebRoute>('/search', { schema: { hide: true } }, async (request, reply) => {
    const c = await chrome(request, reply, 'Search', 'search');
    return html(reply, pages.searchPage(c, { available: ctx.analyzer !== undefined }));
  });

  FORM_ROUTES.add('/search');
  web.post<WebRoute>(
    '/search',
    { preHandler: web.csrfProtection, schema: { hide: true } },
    async (request, reply) => {
      if (!ctx.analyzer) throw new UserError('This server was started without models.');
      if (!request.isMultipart()) throw new UserError('Choose a photo to search with.');
      const file = await request.file();
      if (!file) throw new UserError('Choose a photo to search with.');
      const bytes = await file.toBuffer();
      if (bytes.length === 0) throw new UserError('That file is empty.');
      const meta = await sharp(bytes, { limitInputPixels: false })
        .metadata()
        .catch(() => null);
      if (!meta?.width || !meta.height) throw new UserError('That file is not a photo facepipe can read.');
      if (meta.width * meta.height > ctx.limits.maxPixels)
        throw new UserError('That photo has too many pixels.');
      const analysis = await ctx.analyzer.analyzeBytes(bytes, 'query');
      const faces = await Promise.all(
        analysis.faces.map(async (f) => {
          // a match is a person the face points towards (cosine above 0), best first
          const hits = f.kept
            ? searchByVector(db, f.embedding, 3, ctx.params.qualityRange).identities.filter(
                (h) => h.score > 0,
              )
            : [];
          return {
            crop: await cropDataUrl(f.alignedRgb),
            quality: f.quality,
            kept: f.kept,
            matches: hits.map((h) => ({
              identityId: h.identityId,
              name: h.name,
              score: h.score,
              coverFaceId: db.people.coverOf(h.identityId, db.getIdentity(h.identityId)?.coverFaceId ?? null),
            })),
          };
        }),
      );
      const c = await chrome(request, reply, 'Search', 'search');
      return html(reply, pages.searchPage(c, { available: true, faces, fileName: file.filename }));
    },
  );

  // ---- Undo --------------------------------------------------------------------------------------

  web.get<WebRoute>('/undo', { schema: { hide: true } }, async (request, reply) => {
    const c = await chrome(request, reply, 'Undo', 'undo');
    return html(reply, pages.undoPage(c, actions.list(50)));
  });

  form('/undo/:actionId', (request, reply) => {
    const id = Number(param(request, 'actionId'));
    if (!Number.isInteger(id) || id < 1) throw new NotFound('No such correction.');
    const undoId = actions.undo(id);
    return back(reply, '/undo', undoId);
  });
}

// ---------------------------------------------------------------- helpers

/** A readable mistake of the person using the page: shown on an error page, status 400. */
class UserError extends Error {
  readonly statusCode = 400;
  readonly code = 'BAD_REQUEST';
}

class NotFound extends Error {
  readonly statusCode = 404;
  readonly code = 'NOT_FOUND';
}

/** An urlencoded form body (repeated keys become arrays). */
class FormBody {
  private readonly fields: Record<string, string | string[] | undefined>;
  constructor(body: unknown) {
    this.fields = (body && typeof body === 'object' ? body : {}) as Record<string, string | string[]>;
  }
  get(name: string): string | undefined {
    const v = this.fields[name];
    return Array.isArray(v) ? v[0] : v;
  }
  all(name: string): string[] {
    const v = this.fields[name];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  }
}

function param(request: WebRequest, name: string): string {
  return request.params[name] ?? '';
}

/** The CSRF token of a form: its `_csrf` field, the query (multipart forms) or a header. */
function csrfTokenOf(request: WebRequest): string | undefined {
  const field = request.body?._csrf;
  const header = request.headers['x-csrf-token'];
  return (
    (Array.isArray(field) ? field[0] : field) ??
    request.query?._csrf ??
    (Array.isArray(header) ? header[0] : header)
  );
}

const enc = encodeURIComponent;

function requireIdentity(db: FaceDatabase, id: string) {
  const identity = db.getIdentity(id);
  if (!identity) throw new NotFound('No such person (they may have been merged or erased).');
  return identity;
}

/** "merge by name": an identity id, or the one person of that name (case-insensitive) */
function resolvePerson(db: FaceDatabase, text: string, self: string): string {
  const wanted = text.trim();
  if (db.getIdentity(wanted)) return wanted;
  const matches = db.people.findByName(wanted).filter((id) => id !== self);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new UserError(`No other person is called “${wanted}”.`);
  throw new UserError(
    `${matches.length} people are called “${wanted}”: merge from their “Looks similar” entry or rename one first.`,
  );
}

function safeNext(next: string | undefined): string {
  // only paths of this server: never an open redirect
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}

function photoFile(uri: string): string | null {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return null;
  return path.resolve(uri);
}

function photoName(db: FaceDatabase, photoId: string): string {
  return db.getPhoto(photoId)?.uri ?? photoId;
}

function mimeOf(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return (
    {
      '.jpg': 'image/jpeg',
      '.jpeg': 'image/jpeg',
      '.png': 'image/png',
      '.webp': 'image/webp',
      '.gif': 'image/gif',
      '.avif': 'image/avif',
      '.tif': 'image/tiff',
      '.tiff': 'image/tiff',
    }[ext] ?? 'application/octet-stream'
  );
}

/** ETag revalidation: an unchanged file is a 304 with no body. */
async function cached(
  request: FastifyRequest,
  reply: FastifyReply,
  etag: string,
  type: string,
  body: Buffer | (() => Promise<Buffer>),
): Promise<FastifyReply> {
  reply.header('etag', etag).header('cache-control', 'private, no-cache');
  if (request.headers['if-none-match'] === etag) return reply.status(304).send();
  return reply.type(type).send(typeof body === 'function' ? await body() : body);
}

function loadAssets(): Map<string, { body: Buffer; etag: string; type: string }> {
  const out = new Map<string, { body: Buffer; etag: string; type: string }>();
  for (const name of ['app.css', 'app.js']) {
    const body = readFileSync(path.join(ASSETS_DIR, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
    out.set(name, { body, etag, type: ASSET_TYPES[path.extname(name)]! });
  }
  return out;
}

async function cropDataUrl(alignedRgb: Buffer | undefined): Promise<string | null> {
  if (!alignedRgb) return null;
  const jpeg = await sharp(alignedRgb, { raw: { width: 112, height: 112, channels: 3 } })
    .jpeg({ quality: 80 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
