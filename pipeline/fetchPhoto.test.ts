import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchPhoto, FetchError, hostAllowed, type FetchPolicy } from './fetchPhoto.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-fetch-'));
const root = path.join(tmp, 'root');
mkdirSync(root);
writeFileSync(path.join(root, 'a.jpg'), Buffer.from('photo-bytes'));
writeFileSync(path.join(tmp, 'secret.jpg'), Buffer.from('secret'));
symlinkSync(path.join(tmp, 'secret.jpg'), path.join(root, 'link.jpg'));

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/ok.jpg') return res.end('http-bytes');
    if (req.url === '/big.jpg') return res.end(Buffer.alloc(5000));
    if (req.url === '/slow.jpg') return void setTimeout(() => res.end('late'), 1500);
    if (req.url === '/away') return res.writeHead(302, { location: 'http://elsewhere.invalid/x.jpg' }).end();
    if (req.url === '/boom') return res.writeHead(503).end();
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((r) => server.close(() => r()));
});

const policy = (): FetchPolicy => ({
  fileRoots: [root],
  allowedHosts: ['127.0.0.1'],
  maxBytes: 1000,
  timeoutMs: 500,
});
const uri = (u: string) => ({ kind: 'uri' as const, uri: u });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(FetchError);
    return (err as FetchError).code;
  }
}

describe('fetchPhoto', () => {
  it('reads files below the roots, inline bytes and allowed http hosts', async () => {
    const f = await fetchPhoto(uri(pathToFileURL(path.join(root, 'a.jpg')).href), policy());
    expect(f.bytes.toString()).toBe('photo-bytes');
    expect(f.contentHash).toHaveLength(64);
    const i = await fetchPhoto({ kind: 'inline', data: Buffer.from('xyz').toString('base64') }, policy());
    expect(i.bytes.toString()).toBe('xyz');
    expect(i.uri).toBe(`inline:${i.contentHash}`);
    expect((await fetchPhoto(uri(`${base}/ok.jpg`), policy())).bytes.toString()).toBe('http-bytes');
  });

  it('refuses files outside the roots, also through .. and symlinks', async () => {
    expect(await codeOf(fetchPhoto(uri(pathToFileURL(path.join(tmp, 'secret.jpg')).href), policy()))).toBe(
      'FORBIDDEN_URI',
    );
    expect(await codeOf(fetchPhoto(uri(`file://${root}/../secret.jpg`), policy()))).toBe('FORBIDDEN_URI');
    expect(await codeOf(fetchPhoto(uri(pathToFileURL(path.join(root, 'link.jpg')).href), policy()))).toBe(
      'FORBIDDEN_URI',
    );
    expect(await codeOf(fetchPhoto(uri(pathToFileURL(path.join(root, 'none.jpg')).href), policy()))).toBe(
      'NOT_FOUND',
    );
    expect(
      await codeOf(
        fetchPhoto(uri(pathToFileURL(path.join(root, 'a.jpg')).href), { ...policy(), fileRoots: [] }),
      ),
    ).toBe('FORBIDDEN_URI');
  });

  it('reads only regular files: a FIFO (no writer) and a directory fail at once with NOT_A_FILE', async () => {
    const fifo = path.join(root, 'pipe.jpg');
    execFileSync('mkfifo', [fifo]);
    mkdirSync(path.join(root, 'folder.jpg'));
    // the fetch timeout is far longer than the test: only refusing before any read makes it pass
    const slowPolicy = { ...policy(), timeoutMs: 600_000 };
    expect(await codeOf(fetchPhoto(uri(pathToFileURL(fifo).href), slowPolicy))).toBe('NOT_A_FILE');
    expect(await codeOf(fetchPhoto(uri(pathToFileURL(path.join(root, 'folder.jpg')).href), slowPolicy))).toBe(
      'NOT_A_FILE',
    );
    // and the worker's next photo still reads
    const f = await fetchPhoto(uri(pathToFileURL(path.join(root, 'a.jpg')).href), slowPolicy);
    expect(f.bytes.toString()).toBe('photo-bytes');
  });

  it('refuses a file over the size limit from its stat, before reading it', async () => {
    const big = path.join(root, 'big.jpg');
    execFileSync('truncate', ['-s', '2G', big]);
    expect(await codeOf(fetchPhoto(uri(pathToFileURL(big).href), policy()))).toBe('TOO_LARGE');
  });

  it('maps http failures to stable codes', async () => {
    expect(await codeOf(fetchPhoto(uri('http://example.org/a.jpg'), policy()))).toBe('FORBIDDEN_HOST');
    expect(await codeOf(fetchPhoto(uri(`${base}/away`), policy()))).toBe('FORBIDDEN_HOST');
    expect(await codeOf(fetchPhoto(uri(`${base}/big.jpg`), policy()))).toBe('TOO_LARGE');
    expect(await codeOf(fetchPhoto(uri(`${base}/slow.jpg`), policy()))).toBe('TIMEOUT');
    expect(await codeOf(fetchPhoto(uri(`${base}/missing.jpg`), policy()))).toBe('NOT_FOUND');
    expect(await codeOf(fetchPhoto(uri(`${base}/boom`), policy()))).toBe('UNREACHABLE');
    // a closed port on loopback: connection refused
    expect(await codeOf(fetchPhoto(uri('http://127.0.0.1:1/a.jpg'), policy()))).toBe('UNREACHABLE');
  });

  it('matches hosts exactly, by port, or by *.domain', () => {
    expect(hostAllowed(new URL('http://a.example.org/x'), ['*.example.org'])).toBe(true);
    expect(hostAllowed(new URL('http://example.org.evil.com/x'), ['example.org'])).toBe(false);
    expect(hostAllowed(new URL('http://h:8080/x'), ['h:8080'])).toBe(true);
    expect(hostAllowed(new URL('http://h:9090/x'), ['h:8080'])).toBe(false);
    expect(hostAllowed(new URL('http://h:9090/x'), ['h'])).toBe(true);
  });
});
