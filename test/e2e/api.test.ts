import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CROP_IDENTITIES,
  cropsDir,
  examplesDir,
  referenceCropEmbeddings,
  runCliJson,
  startServe,
  type ServeProcess,
} from './helpers.ts';
import { pixelBombPng } from '../../pipeline/testFixtures.ts';

// The lookup service as a real process over real HTTP, on a store filled by `facepipe run` on the 40 crops.
const TOKEN = 'test-token-123';
const MAX_UPLOAD = 400_000;

interface IdentityDetail {
  identityId: string;
  name: string | null;
  faceCount: number;
  photoCount: number;
  faces: { faceId: string; photoId: string; photo: string }[];
  photos: { photoId: string; uri: string }[];
}

describe('facepipe serve', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-api-'));
  const data = path.join(tmp, 'data');
  let server: ServeProcess;
  /** crop identity name (amy, …) → the store identity holding most of its crops */
  const identityOf = new Map<string, IdentityDetail>();

  const call = async (
    method: string,
    url: string,
    opts: { body?: unknown; raw?: string; form?: FormData; token?: string | null } = {},
  ) => {
    const headers: Record<string, string> = {};
    const token = opts.token === undefined ? TOKEN : opts.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | FormData | undefined;
    if (opts.form) body = opts.form;
    else if (opts.raw !== undefined || opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = opts.raw ?? JSON.stringify(opts.body);
    }
    const res = await fetch(server.url + url, { method, headers, body });
    const text = await res.text();
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
  };
  const upload = (bytes: Buffer, name = 'photo.png', type = 'image/png') => {
    const form = new FormData();
    form.append('image', new Blob([bytes], { type }), name);
    return form;
  };
  const expectError = (
    r: { status: number; json: { error?: { code?: string; message?: string } } },
    status: number,
    code: string,
  ) => {
    expect({ status: r.status, code: r.json?.error?.code }).toEqual({ status, code });
    expect(typeof r.json.error?.message).toBe('string');
  };

  beforeAll(async () => {
    await runCliJson(['run', cropsDir, '--data', data, '--json']);
    server = await startServe([
      '--data',
      data,
      '--token',
      TOKEN,
      '--max-upload-bytes',
      String(MAX_UPLOAD),
      '--max-pixels',
      '4000000',
    ]);
    const list = await call('GET', '/identities?limit=1000');
    for (const { identityId } of list.json.identities as { identityId: string }[]) {
      const detail = (await call('GET', `/identities/${identityId}`)).json as IdentityDetail;
      const votes = new Map<string, number>();
      for (const f of detail.faces) {
        const who = /faceapi-crops[\\/]([a-z]+)[\\/]/.exec(f.photo)?.[1];
        if (who) votes.set(who, (votes.get(who) ?? 0) + 1);
      }
      const [who] = [...votes].sort((a, b) => b[1] - a[1])[0] ?? [];
      if (who && (!identityOf.has(who) || identityOf.get(who)!.faceCount < detail.faceCount))
        identityOf.set(who, detail);
    }
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('answers /healthz without a token, everything else only with the right one', async () => {
    const health = await call('GET', '/healthz', { token: null });
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'ok', modelId: 'mobilefacenet', searchByImage: true });
    expect(health.json.indexSize).toBeGreaterThanOrEqual(38);
    expectError(await call('GET', '/identities', { token: null }), 401, 'UNAUTHORIZED');
    const wrong = await call('GET', '/identities', { token: 'nope' });
    expectError(wrong, 401, 'INVALID_TOKEN');
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('describes itself in OpenAPI and exposes Prometheus metrics', async () => {
    const spec = await call('GET', '/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.json.openapi).toMatch(/^3\./);
    for (const p of [
      '/search/image',
      '/search/embedding',
      '/search/face/{faceId}',
      '/identities',
      '/identities/{identityId}',
      '/identities/{identityId}/merge',
      '/identities/{identityId}/different',
      '/faces/{faceId}/move',
      '/photos/{photoId}',
      '/healthz',
      '/metrics',
    ]) {
      expect(Object.keys(spec.json.paths)).toContain(p);
    }
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(
      /facepipe_http_requests_total\{method="GET",route="\/identities",status="401"\} \d+/,
    );
    expect(metrics.text).toMatch(/facepipe_http_request_duration_seconds_bucket/);
    expect(metrics.text).toMatch(/facepipe_index_size \d+/);
    expect(metrics.text).toMatch(/facepipe_store_items\{kind="faces_kept"\} \d+/);
  });

  it('finds the 8 crop identities and lists and gets them', async () => {
    expect([...identityOf.keys()].sort()).toEqual(CROP_IDENTITIES);
    const amy = identityOf.get('amy')!;
    expect(amy.faceCount).toBeGreaterThanOrEqual(4);
    expect(amy.photoCount).toBe(amy.photos.length);
    const list = await call('GET', '/identities?limit=2&offset=1');
    expect(list.json.identities).toHaveLength(2);
    expect(list.json.total).toBeGreaterThanOrEqual(8);
    expectError(await call('GET', '/identities/nobody'), 404, 'IDENTITY_NOT_FOUND');
    expectError(await call('GET', '/identities?limit=0'), 400, 'INVALID_REQUEST');
    expectError(await call('GET', '/no/such/route'), 404, 'ROUTE_NOT_FOUND');
  });

  it('search by image: each face of a group photo comes back as its person first', async () => {
    // bbt1: raj, leonard, howard, sheldon, left to right (fixtures/reference/group-identities.json)
    const bytes = readFileSync(path.join(examplesDir, 'faceapi-groups/bbt1.jpg'));
    const r = await call('POST', '/search/image?k=3', { form: upload(bytes, 'bbt1.jpg', 'image/jpeg') });
    expect(r.status).toBe(200);
    expect(r.json.faces).toHaveLength(4);
    const firsts = r.json.faces.map(
      (f: { identities: { identityId: string }[] }) => f.identities[0]?.identityId,
    );
    expect(firsts).toEqual(
      ['raj', 'leonard', 'howard', 'sheldon'].map((who) => identityOf.get(who)!.identityId),
    );
    const face = r.json.faces[0];
    expect(face.quality).toBeGreaterThan(0);
    expect(face.magnitude).toBeGreaterThan(0);
    expect(face.faces.length).toBeGreaterThan(0);
    expect(face.identities[0].score).toBeGreaterThan(face.identities[1]?.score ?? -1);
  });

  it('rejects bad uploads with 4xx codes: not an image, too large, pixel bomb, not multipart, no file', async () => {
    expectError(
      await call('POST', '/search/image', { form: upload(Buffer.from('hello, not an image'), 'x.png') }),
      415,
      'NOT_AN_IMAGE',
    );
    expectError(
      await call('POST', '/search/image', { form: upload(Buffer.alloc(MAX_UPLOAD + 1000, 7), 'big.png') }),
      413,
      'FILE_TOO_LARGE',
    );
    expectError(
      await call('POST', '/search/image', { form: upload(pixelBombPng(30000, 30000), 'bomb.png') }),
      413,
      'PIXEL_LIMIT',
    );
    expectError(await call('POST', '/search/image', { body: { image: 'x' } }), 415, 'NOT_MULTIPART');
    const noFile = new FormData();
    noFile.append('note', 'no image here');
    expectError(await call('POST', '/search/image', { form: noFile }), 400, 'MISSING_IMAGE');
    expectError(
      await call('POST', '/search/image?k=1000', {
        form: upload(readFileSync(path.join(cropsDir, 'amy/1.png'))),
      }),
      400,
      'INVALID_REQUEST',
    );
  });

  it('search by embedding: a crop embedding finds its person; bad JSON and bad bodies are 400s', async () => {
    const emb = referenceCropEmbeddings().get('penny/3')!;
    const r = await call('POST', '/search/embedding', { body: { embedding: emb, k: 2 } });
    expect(r.status).toBe(200);
    expect(r.json.identities[0].identityId).toBe(identityOf.get('penny')!.identityId);
    expect(r.json.faces).toHaveLength(2);
    expect(r.json.faces[0].similarity).toBeGreaterThan(0.9); // the same crop, embedded by our pipeline
    expectError(
      await call('POST', '/search/embedding', { raw: '{"embedding": [1, 2,' }),
      400,
      'MALFORMED_JSON',
    );
    expectError(
      await call('POST', '/search/embedding', { body: { embedding: 'abc' } }),
      400,
      'INVALID_REQUEST',
    );
    expectError(
      await call('POST', '/search/embedding', { body: { embedding: emb, extra: 1 } }),
      400,
      'INVALID_REQUEST',
    );
    expectError(
      await call('POST', '/search/embedding', { body: { embedding: [1, 2, 3] } }),
      400,
      'DIMENSION_MISMATCH',
    );
    expectError(
      await call('POST', '/search/embedding', { body: { embedding: emb.map(() => 0) } }),
      400,
      'INVALID_EMBEDDING',
    );
    const huge = JSON.stringify({ embedding: Array.from({ length: 300_000 }, () => 0.123456) });
    expectError(await call('POST', '/search/embedding', { raw: huge }), 413, 'BODY_TOO_LARGE');
    const res = await fetch(server.url + '/search/embedding', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect({
      status: res.status,
      code: ((await res.json()) as { error: { code: string } }).error.code,
    }).toEqual({
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
  });

  it('search by face id returns the face’s own identity first and leaves the face out', async () => {
    const face = identityOf.get('sheldon')!.faces[0]!;
    const r = await call('GET', `/search/face/${face.faceId}?k=4`);
    expect(r.status).toBe(200);
    expect(r.json.identities[0].identityId).toBe(identityOf.get('sheldon')!.identityId);
    expect(r.json.faces.map((f: { faceId: string }) => f.faceId)).not.toContain(face.faceId);
    expectError(await call('GET', '/search/face/f_unknown'), 404, 'FACE_NOT_FOUND');
    expectError(await call('GET', '/faces/f_unknown'), 404, 'FACE_NOT_FOUND');
    const got = await call('GET', `/faces/${face.faceId}`);
    expect(got.json).toMatchObject({
      faceId: face.faceId,
      identityId: identityOf.get('sheldon')!.identityId,
      kept: true,
    });
  });

  it('renames, marks different, moves a face, merges', async () => {
    const amy = identityOf.get('amy')!.identityId;
    const bern = identityOf.get('bernadette')!.identityId;
    const stuart = identityOf.get('stuart')!.identityId;
    const leonard = identityOf.get('leonard')!.identityId;

    const renamed = await call('PATCH', `/identities/${amy}`, { body: { name: 'Amy Farrah Fowler' } });
    expect(renamed.status).toBe(200);
    expect(renamed.json.name).toBe('Amy Farrah Fowler');
    expectError(
      await call('PATCH', `/identities/${amy}`, { body: { name: { first: 'Amy' } } }),
      400,
      'INVALID_REQUEST',
    );
    expectError(
      await call('PATCH', '/identities/nobody', { body: { name: 'x' } }),
      404,
      'IDENTITY_NOT_FOUND',
    );

    const different = await call('POST', `/identities/${amy}/different`, { body: { other: bern } });
    expect(different.status).toBe(200);
    expectError(
      await call('POST', `/identities/${amy}/different`, { body: { other: amy } }),
      409,
      'SAME_IDENTITY',
    );
    expectError(
      await call('POST', `/identities/${amy}/different`, { body: { other: 'nobody' } }),
      404,
      'IDENTITY_NOT_FOUND',
    );
    // a merge against a stored "different people" correction is refused
    expectError(
      await call('POST', `/identities/${amy}/merge`, { body: { other: bern } }),
      409,
      'CORRECTION_REJECTED',
    );

    const face = identityOf.get('stuart')!.faces[0]!.faceId;
    const moved = await call('POST', `/faces/${face}/move`, { body: { identityId: leonard } });
    expect(moved.status).toBe(200);
    expect(moved.json.identityId).toBe(leonard);
    const out = await call('POST', `/faces/${face}/move`, { body: { identityId: null } });
    expect(out.json.identityId).toBeNull();
    expectError(
      await call('POST', `/faces/${face}/move`, { body: { identityId: 'nobody' } }),
      404,
      'IDENTITY_NOT_FOUND',
    );
    expectError(
      await call('POST', '/faces/f_unknown/move', { body: { identityId: null } }),
      404,
      'FACE_NOT_FOUND',
    );
    expectError(await call('POST', `/faces/${face}/move`, { body: {} }), 400, 'INVALID_REQUEST');

    const stuartBefore = (await call('GET', `/identities/${stuart}`)).json.faceCount as number;
    const leonardBefore = (await call('GET', `/identities/${leonard}`)).json.faceCount as number;
    const merged = await call('POST', `/identities/${leonard}/merge`, { body: { other: stuart } });
    expect(merged.status).toBe(200);
    expect(merged.json.faceCount).toBe(stuartBefore + leonardBefore);
    expectError(await call('GET', `/identities/${stuart}`), 404, 'IDENTITY_NOT_FOUND');
    expectError(
      await call('POST', `/identities/${leonard}/merge`, { body: { other: 'nobody' } }),
      404,
      'IDENTITY_NOT_FOUND',
    );
  });

  it('erases a photo and an identity (faces and vectors)', async () => {
    const howard = identityOf.get('howard')!;
    const photo = howard.photos[0]!;
    const p = await call('GET', `/photos/${photo.photoId}`);
    expect(p.status).toBe(200);
    expect(p.json.faces).toHaveLength(1);
    const before = (await call('GET', '/healthz')).json.indexSize as number;
    const del = await call('DELETE', `/photos/${photo.photoId}`);
    expect(del.json).toEqual({ photoId: photo.photoId, facesForgotten: 1 });
    expectError(await call('GET', `/photos/${photo.photoId}`), 404, 'PHOTO_NOT_FOUND');
    expectError(await call('DELETE', `/photos/${photo.photoId}`), 404, 'PHOTO_NOT_FOUND');
    expect((await call('GET', '/healthz')).json.indexSize).toBe(before - 1);

    const penny = identityOf.get('penny')!;
    const thumb = (faceId: string) => path.join(data, 'thumbs', `${faceId}.jpg`);
    const howardFace = p.json.faces[0].faceId as string;
    expect(existsSync(thumb(howardFace))).toBe(false); // erased with the photo
    expect(readFileSync(path.join(data, 'report.html'), 'utf8')).not.toContain(howardFace);
    expect(existsSync(thumb(penny.faces[0]!.faceId))).toBe(true);
    const forget = await call('DELETE', `/identities/${penny.identityId}`);
    expect(forget.status).toBe(200);
    expect(forget.json.facesForgotten).toBe(penny.faceCount);
    expectError(await call('GET', `/identities/${penny.identityId}`), 404, 'IDENTITY_NOT_FOUND');
    const emb = referenceCropEmbeddings().get('penny/1')!;
    const search = await call('POST', '/search/embedding', { body: { embedding: emb, k: 10 } });
    const pennyFaces = new Set(penny.faces.map((f) => f.faceId));
    expect(search.json.faces.some((f: { faceId: string }) => pennyFaces.has(f.faceId))).toBe(false);
    expect((await call('GET', '/healthz')).json.indexSize).toBe(before - 1 - penny.faceCount);
    for (const f of penny.faces) expect(existsSync(thumb(f.faceId))).toBe(false);
    const report = readFileSync(path.join(data, 'report.html'), 'utf8');
    for (const f of penny.faces) expect(report).not.toContain(f.faceId);
  });
});
