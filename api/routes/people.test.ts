import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../server.ts';
import { clusteredCrops, params, type ClusteredCrops } from '../../service/testUtil.ts';

// The people view's JSON routes and the browser-session rules, in process (fastify inject) over a
// data dir of the 40 real crops.
const TOKEN = 'people-api-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const open: { crops: ClusteredCrops; app: FastifyInstance }[] = [];

afterEach(async () => {
  for (const { crops, app } of open.splice(0)) {
    await app.close();
    crops.close();
  }
});

async function server() {
  const crops = clusteredCrops();
  const app = await buildServer({ db: crops.db, identities: crops.identities, params, token: TOKEN });
  open.push({ crops, app });
  return { crops, app };
}

describe('people API', () => {
  it('new person from faces, suggestions, review queue, reject, and undo through the correction log', async () => {
    const { crops, app } = await server();
    const penny = crops.who.get('penny')!;
    const faces = crops.db.listFaces({ identityId: penny }).map((f) => f.faceId);
    const split = await app.inject({
      method: 'POST',
      url: '/identities',
      headers: auth,
      payload: { faceIds: faces.slice(0, 2), name: 'Penny (2)' },
    });
    expect(split.statusCode).toBe(201);
    const { identityId, actionId } = split.json() as { identityId: string; actionId: number };
    expect(
      crops.db
        .listFaces({ identityId })
        .map((f) => f.faceId)
        .sort(),
    ).toEqual(faces.slice(0, 2).sort());

    const moved = await app.inject({
      method: 'POST',
      url: `/faces/${faces[3]}/move`,
      headers: auth,
      payload: { identityId: null },
    });
    expect(moved.statusCode).toBe(200);
    const queue = (await app.inject({ url: '/faces/unassigned', headers: auth })).json() as {
      total: number;
      faces: { faceId: string; reason: string; suggestion: { identityId: string } | null }[];
    };
    expect(queue.total).toBe(1);
    expect(queue.faces[0]!.faceId).toBe(faces[3]);
    // the reason the store keeps for it: the user took it out
    expect(queue.faces[0]!.reason).toBe('removed_by_user');
    expect(crops.db.getFace(faces[3]!)!.unassignedReason).toBe('removed_by_user');
    const faceView = (await app.inject({ url: `/faces/${faces[3]}`, headers: auth })).json() as {
      identityId: string | null;
      unassignedReason: string | null;
    };
    expect(faceView).toMatchObject({ identityId: null, unassignedReason: 'removed_by_user' });
    const sug = (await app.inject({ url: `/faces/${faces[3]}/suggestions`, headers: auth })).json() as {
      reason: string | null;
      suggestions: { identityId: string; score: number }[];
    };
    expect(sug.reason).toBe('removed_by_user');
    expect(sug.suggestions.map((s) => s.identityId)).not.toContain(penny);
    const rejected = sug.suggestions[0]!.identityId;
    const reject = await app.inject({
      method: 'POST',
      url: `/faces/${faces[3]}/reject`,
      headers: auth,
      payload: { identityId: rejected },
    });
    expect(reject.statusCode).toBe(200);
    const after = (await app.inject({ url: `/faces/${faces[3]}/suggestions`, headers: auth })).json() as {
      suggestions: { identityId: string }[];
    };
    expect(after.suggestions.map((s) => s.identityId)).not.toContain(rejected);

    const log = (await app.inject({ url: '/corrections', headers: auth })).json() as {
      corrections: { id: number; kind: string }[];
    };
    expect(log.corrections.map((c) => c.kind)).toEqual(['reject', 'move_out', 'split']);
    const undo = await app.inject({ method: 'POST', url: `/corrections/${actionId}/undo`, headers: auth });
    expect(undo.statusCode).toBe(200);
    expect(crops.db.getIdentity(identityId)).toBeUndefined();
    expect(crops.db.getFace(faces[0]!)!.identityId).toBe(penny);
    const twice = await app.inject({ method: 'POST', url: `/corrections/${actionId}/undo`, headers: auth });
    expect(twice.statusCode).toBe(409);
    expect(twice.json().error.code).toBe('CANNOT_UNDO');
    const none = await app.inject({ method: 'POST', url: '/corrections/9999/undo', headers: auth });
    expect(none.statusCode).toBe(404);
  });

  it('similar identities, cover and hidden', async () => {
    const { crops, app } = await server();
    const amy = crops.who.get('amy')!;
    const similar = (await app.inject({ url: `/identities/${amy}/similar?k=3`, headers: auth })).json() as {
      similar: { identityId: string }[];
    };
    expect(similar.similar.length).toBe(3);
    const face = crops.db.listFaces({ identityId: amy })[2]!.faceId;
    const cover = await app.inject({
      method: 'PUT',
      url: `/identities/${amy}/cover`,
      headers: auth,
      payload: { faceId: face },
    });
    expect(cover.statusCode).toBe(200);
    expect(crops.db.getIdentity(amy)!.coverFaceId).toBe(face);
    const notHers = crops.db.listFaces({ identityId: crops.who.get('raj')! })[0]!.faceId;
    const wrong = await app.inject({
      method: 'PUT',
      url: `/identities/${amy}/cover`,
      headers: auth,
      payload: { faceId: notHers },
    });
    expect(wrong.statusCode).toBe(409);
    const hide = await app.inject({
      method: 'PUT',
      url: `/identities/${amy}/hidden`,
      headers: auth,
      payload: { hidden: true },
    });
    expect(hide.statusCode).toBe(200);
    expect(crops.db.getIdentity(amy)!.hidden).toBe(true);
  });

  it('a browser session: the login form, pages, CSRF on forms, and no JSON changes without the bearer token', async () => {
    const { crops, app } = await server();
    const anonymous = await app.inject({ url: '/' });
    expect(anonymous.statusCode).toBe(303);
    expect(anonymous.headers.location).toBe('/login?next=%2F');
    const wrong = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'token=nope&next=/',
    });
    expect(wrong.statusCode).toBe(401);
    const login = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `token=${TOKEN}&next=//evil.example/`,
    });
    expect(login.statusCode).toBe(303);
    expect(login.headers.location).toBe('/'); // never an open redirect
    const setCookie = String(login.headers['set-cookie']);
    expect(setCookie).toMatch(/facepipe_session=[^;]+; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict/);
    const session = /facepipe_session=([^;]+)/.exec(setCookie)![1]!;
    const cookie = { cookie: `facepipe_session=${session}` };
    const page = await app.inject({ url: '/', headers: cookie });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toContain(`data-identity="${crops.who.get('amy')}"`);
    // the JSON API does not take form bodies, and changing data needs the bearer token
    const amy = crops.who.get('amy')!;
    const viaCookie = await app.inject({
      method: 'PATCH',
      url: `/identities/${amy}`,
      headers: { ...cookie, 'content-type': 'application/json' },
      payload: { name: 'X' },
    });
    expect(viaCookie.statusCode).toBe(401);
    const formToApi = await app.inject({
      method: 'POST',
      url: `/identities/${amy}/merge`,
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `other=${crops.who.get('raj')}`,
    });
    expect(formToApi.statusCode).toBe(415);
    // a form without its CSRF token is refused; with it (and the CSRF cookie) it works
    const noToken = await app.inject({
      method: 'POST',
      url: `/person/${amy}/rename`,
      headers: { ...cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'name=Amy',
    });
    expect(noToken.statusCode).toBe(403);
    expect(crops.db.getIdentity(amy)!.name).toBeNull();
    const csrfCookie = /(_csrf=[^;]+)/.exec(String(page.headers['set-cookie']))![1]!;
    const token = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const rename = await app.inject({
      method: 'POST',
      url: `/person/${amy}/rename`,
      headers: {
        cookie: `${cookie.cookie}; ${csrfCookie}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: `name=Amy&_csrf=${encodeURIComponent(token)}`,
    });
    expect(rename.statusCode).toBe(303);
    expect(crops.db.getIdentity(amy)!.name).toBe('Amy');
  });
});
