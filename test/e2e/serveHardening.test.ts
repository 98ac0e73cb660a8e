/**
 * `facepipe serve` under abuse, as a real process over real HTTP: listening beyond loopback
 * without a token, malformed multipart uploads, values of the wrong JSON type, and more searches
 * by image than it analyses at once. After each the server is alive and the store unchanged.
 */
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { cropsDir, examplesDir, runCli, runCliJson, startServe, type ServeProcess } from './helpers.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-serve-abuse-'));
const data = path.join(tmp, 'data');
const groupPhoto = readFileSync(path.join(examplesDir, 'faceapi-groups', 'bbt2.jpg'));
const children = new Set<ChildProcess>();

type Serving = ServeProcess;

/** `facepipe serve --data <the test store> ...args` on a free port. */
async function serve(args: string[]): Promise<Serving> {
  const s = await startServe(['--data', data, ...args]);
  children.add(s.child);
  return s;
}

async function waitUntil(ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function storeSnapshot(): { identities: string[]; faces: number } {
  const store = new FaceStore(path.join(data, STORE_FILE), { create: false, readonly: true });
  try {
    return {
      identities: store.identities
        .listIdentities()
        .map((i) => `${i.identityId}:${i.faceCount}`)
        .sort(),
      faces: store.counts().faces,
    };
  } finally {
    store.close();
  }
}

/** A raw HTTP/1.1 request over a socket: a body exactly as given (headers and all). */
function rawRequest(port: number, head: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let response = '';
    socket.on('data', (d) => (response += d.toString()));
    socket.on('error', reject);
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
      resolve({ status, text: response.slice(response.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(head + `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.end(body);
  });
}

function multipartBody(boundary: string, bytes: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="g.jpg"\r\n` +
        `Content-Type: image/jpeg\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

const imageForm = () => {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(groupPhoto)], { type: 'image/jpeg' }), 'g.jpg');
  return form;
};

beforeAll(async () => {
  const photos = path.join(tmp, 'photos');
  for (const p of ['amy', 'penny', 'raj'])
    cpSync(path.join(cropsDir, p), path.join(photos, p), { recursive: true });
  await runCliJson(['run', photos, '--data', data, '--json']);
}, 300_000);

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

describe('serve beyond loopback', () => {
  it('refuses 0.0.0.0 without a token in one line, before loading anything', async () => {
    const r = await runCli(['serve', '--data', data, '--host', '0.0.0.0', '--port', '0']);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/refusing to listen on 0\.0\.0\.0 without a token/);
    expect(lines[0]).toMatch(/--no-auth/);
  }, 120_000);

  it('with --no-auth: listens, prints the address it really bound, and warns loudly', async () => {
    const s = await serve(['--host', '0.0.0.0', '--no-auth']);
    try {
      expect(s.url).toBe(`http://0.0.0.0:${s.port}`);
      // stderr is its own pipe: the warning, written right after the address, may come a moment later
      await waitUntil(() => /WARNING: http:\/\/0\.0\.0\.0:\d+ has NO authentication/.test(s.stderr()));
      expect((await fetch(`http://127.0.0.1:${s.port}/identities`)).status).toBe(200);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 120_000);

  it('with a token: listens on the real address and asks for the token', async () => {
    const s = await serve(['--host', '0.0.0.0', '--token', 'abc']);
    try {
      expect(s.url).toBe(`http://0.0.0.0:${s.port}`);
      expect(s.stderr()).not.toMatch(/WARNING/);
      expect((await fetch(`http://127.0.0.1:${s.port}/identities`)).status).toBe(401);
      const ok = await fetch(`http://127.0.0.1:${s.port}/identities`, {
        headers: { authorization: 'Bearer abc' },
      });
      expect(ok.status).toBe(200);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 120_000);
});

describe('serve against malformed and mistyped requests', () => {
  let s: Serving;
  beforeAll(async () => {
    s = await serve(['--max-image-searches', '1']);
  }, 120_000);
  afterAll(async () => {
    expect(await s.stop()).toBe(0);
  });

  it('malformed multipart (no boundary, a truncated body, broken part headers) is a 400 with a code', async () => {
    const before = storeSnapshot();
    const noBoundary = await rawRequest(
      s.port,
      'POST /search/image HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\n',
      multipartBody('xyz', groupPhoto),
    );
    const full = multipartBody('b0undary', groupPhoto);
    const truncated = await rawRequest(
      s.port,
      'POST /search/image HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n',
      full.subarray(0, Math.floor(full.length / 2)),
    );
    const brokenHeaders = await rawRequest(
      s.port,
      'POST /search/image HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n',
      Buffer.from('--b0undary\r\nthis is not a header line\r\n\r\n'),
    );
    for (const r of [noBoundary, truncated, brokenHeaders]) {
      expect(r.status, r.text).toBe(400);
      expect(JSON.parse(r.text).error.code).toMatch(/^[A-Z_]+$/);
    }
    // alive, and a good upload still works
    const ok = await fetch(`${s.url}/search/image`, { method: 'POST', body: imageForm() });
    expect(ok.status).toBe(200);
    expect(storeSnapshot()).toEqual(before);
  }, 120_000);

  it('JSON values of the wrong type are 400s, never coerced (null/true in an embedding, an array for an id)', async () => {
    const before = storeSnapshot();
    const store = new FaceStore(path.join(data, STORE_FILE), { create: false, readonly: true });
    const face = store.faces.listFaces({ kept: true })[0]!;
    const [a, b] = store.identities.listIdentities();
    store.close();
    const embedding = Array.from(face.embedding);
    const post = (url: string, body: unknown) =>
      fetch(`${s.url}${url}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const good = await post('/search/embedding', { embedding });
    expect(good.status).toBe(200);
    for (const bad of [
      { embedding: [null, ...embedding.slice(1)] },
      { embedding: [true, ...embedding.slice(1)] },
      { embedding: ['0.5', ...embedding.slice(1)] },
      { embedding, k: '5' },
      { embedding, k: [5] },
    ]) {
      const r = await post('/search/embedding', bad);
      expect(r.status, JSON.stringify(bad).slice(0, 60)).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('INVALID_REQUEST');
    }
    for (const route of ['merge', 'different']) {
      const r = await post(`/identities/${a!.identityId}/${route}`, { other: [b!.identityId] });
      expect(r.status).toBe(400);
    }
    const rename = await fetch(`${s.url}/identities/${a!.identityId}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 42 }),
    });
    expect(rename.status).toBe(400);
    // a querystring still reads its numbers
    expect((await fetch(`${s.url}/identities?limit=2`)).status).toBe(200);
    expect(storeSnapshot()).toEqual(before);
  }, 120_000);

  it('beyond the analyses in flight, a search by image is a 503 with Retry-After at once', async () => {
    // an upload held open holds the only analysis slot until its body is complete
    const body = multipartBody('h0ld', groupPhoto);
    const hold = () => {
      const socket = connect(s.port, '127.0.0.1');
      // give its headers a head start over the next search (pooled connections are quicker)
      const ready = new Promise<void>((r) => socket.once('connect', () => setTimeout(r, 200)));
      const done = new Promise<void>((r) => socket.on('close', () => r()));
      const held = { socket, text: '', done, ready };
      socket.on('data', (d) => (held.text += d.toString()));
      socket.write(
        'POST /search/image HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=h0ld\r\n' +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      );
      socket.write(body.subarray(0, 100));
      return held;
    };
    let held = hold();
    let busy: Response | undefined;
    const deadline = Date.now() + 90_000;
    while (!busy && Date.now() < deadline) {
      await held.ready;
      const r = await fetch(`${s.url}/search/image`, { method: 'POST', body: imageForm() });
      if (r.status === 503) busy = r;
      else expect(r.status).toBe(200);
      // a search that got in first made the held one the 503: hold the slot again
      if (!busy && held.text.startsWith('HTTP/1.1 503')) {
        held.socket.destroy();
        held = hold();
      }
    }
    expect(busy, 'no 503 while the only slot was held').toBeDefined();
    expect(busy!.headers.get('retry-after')).toBe('1');
    expect(((await busy!.json()) as { error: { code: string } }).error.code).toBe('BUSY');
    // the held upload completes and is answered; then the slot is free again
    held.socket.write(body.subarray(100));
    await held.done;
    expect(held.text).toMatch(/^HTTP\/1\.1 200/);
    expect((await fetch(`${s.url}/search/image`, { method: 'POST', body: imageForm() })).status).toBe(200);
  }, 180_000);
});
