/**
 * Resolves a PhotoEvent's source to bytes under the worker's policy. A photo source is
 * untrusted input: `file://` is only read below the configured roots (after resolving symlinks),
 * `http(s)://` only goes to allowed hosts (redirects are checked hop by hop), and both have size
 * and time limits. Every failure is a FetchError with a stable code for the dead-letter topic.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PhotoSource } from '../schemas/photoEvent.ts';
import { FacepipeError } from '../core/errors.ts';

export type FetchErrorCode =
  | 'FORBIDDEN_URI'
  | 'FORBIDDEN_HOST'
  | 'NOT_FOUND'
  | 'NOT_A_FILE'
  | 'UNREACHABLE'
  | 'TOO_LARGE'
  | 'TIMEOUT'
  | 'FETCH_FAILED';

/** Codes worth another try (the source may come back); the rest fail the same way every time. */
const RETRIABLE: ReadonlySet<FetchErrorCode> = new Set(['UNREACHABLE', 'TIMEOUT']);

export class FetchError extends FacepipeError {
  declare readonly code: FetchErrorCode;
  constructor(code: FetchErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, { retriable: RETRIABLE.has(code), cause: options?.cause });
  }
}

export interface FetchPolicy {
  /** Absolute directories a file:// URI may point into; empty: no file:// at all. */
  fileRoots: string[];
  /** Hosts http(s) may reach: `name`, `name:port` or `*.domain`; empty: no http(s) at all. */
  allowedHosts: string[];
  /** Largest photo accepted, bytes. */
  maxBytes: number;
  /** Whole-request time limit for http(s), and for reading a file:// source, ms. */
  timeoutMs: number;
  /** Redirect hops followed (each checked against the allowlist). */
  maxRedirects?: number;
}

export const DEFAULT_FETCH_POLICY: FetchPolicy = {
  fileRoots: [],
  allowedHosts: [],
  maxBytes: 25 * 1024 * 1024,
  timeoutMs: 15_000,
  maxRedirects: 3,
};

export interface FetchedPhoto {
  bytes: Buffer;
  /** the URI (or inline:<sha256>) recorded with the photo */
  uri: string;
  contentHash: string;
}

export async function fetchPhoto(source: PhotoSource, policy: FetchPolicy): Promise<FetchedPhoto> {
  if (source.kind === 'inline') {
    const bytes = Buffer.from(source.data, 'base64');
    if (bytes.length > policy.maxBytes)
      throw new FetchError('TOO_LARGE', `inline photo of ${bytes.length} bytes`);
    const hash = sha256(bytes);
    return { bytes, uri: `inline:${hash}`, contentHash: hash };
  }
  const url = parseUrl(source.uri);
  const bytes =
    url.protocol === 'file:' ? await readFileUnderRoots(url, policy) : await fetchHttp(url, policy);
  return { bytes, uri: source.uri, contentHash: sha256(bytes) };
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function parseUrl(uri: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (err) {
    throw new FetchError('FORBIDDEN_URI', `not a valid URI: ${uri}`, { cause: err });
  }
  if (!['file:', 'http:', 'https:'].includes(url.protocol)) {
    throw new FetchError('FORBIDDEN_URI', `scheme ${url.protocol} is not allowed`);
  }
  return url;
}

/** True when `p` is `root` or inside it (both absolute and resolved). */
function isInside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

async function readFileUnderRoots(url: URL, policy: FetchPolicy): Promise<Buffer> {
  if (url.host !== '' && url.host !== 'localhost')
    throw new FetchError('FORBIDDEN_URI', `file URI with a host: ${url.href}`);
  const requested = path.resolve(fileURLToPath(url));
  // check the literal path first (no filesystem access outside the roots), then the real one
  const roots = await Promise.all(policy.fileRoots.map((r) => realpath(r).catch(() => path.resolve(r))));
  const literalOk =
    policy.fileRoots.some((r) => isInside(requested, path.resolve(r))) ||
    roots.some((r) => isInside(requested, r));
  if (!literalOk) throw new FetchError('FORBIDDEN_URI', `${requested} is outside the allowed roots`);
  let real: string;
  try {
    real = await realpath(requested);
  } catch (err) {
    throw new FetchError('NOT_FOUND', `${requested}: ${(err as Error).message}`, { cause: err });
  }
  if (!roots.some((r) => isInside(real, r)))
    throw new FetchError('FORBIDDEN_URI', `${requested} resolves outside the allowed roots`);
  // Only regular files: a FIFO, socket or device can block a read for good. stat() never blocks;
  // O_NONBLOCK keeps open() from blocking on a FIFO swapped in after the stat, and the handle's
  // own fstat is what decides.
  const st = await stat(real).catch((err: Error) => {
    throw new FetchError('NOT_FOUND', `${real}: ${err.message}`, { cause: err });
  });
  if (!st.isFile()) throw new FetchError('NOT_A_FILE', `${real} is not a regular file`);
  if (st.size > policy.maxBytes)
    throw new FetchError('TOO_LARGE', `${real} has ${st.size} bytes (limit ${policy.maxBytes})`);
  const fh = await open(real, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK).catch((err: Error) => {
    throw new FetchError('NOT_FOUND', `${real}: ${err.message}`, { cause: err });
  });
  return withDeadline(readRegularFile(fh, real, policy.maxBytes), policy.timeoutMs, real).finally(() =>
    fh.close().catch(() => {}),
  );
}

async function readRegularFile(fh: FileHandle, file: string, maxBytes: number): Promise<Buffer> {
  const st = await fh.stat();
  if (!st.isFile()) throw new FetchError('NOT_A_FILE', `${file} is not a regular file`);
  if (st.size > maxBytes)
    throw new FetchError('TOO_LARGE', `${file} has ${st.size} bytes (limit ${maxBytes})`);
  // one byte more than the stat said: a file that grew since is noticed, not cut short
  const buf = Buffer.allocUnsafe(Math.min(maxBytes, st.size) + 1);
  let total = 0;
  for (;;) {
    if (total === buf.length) break;
    const { bytesRead } = await fh.read(buf, total, buf.length - total, total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  if (total > maxBytes) throw new FetchError('TOO_LARGE', `${file} grew past ${maxBytes} bytes`);
  if (total > st.size) throw new FetchError('FETCH_FAILED', `${file} grew while it was read`);
  return buf.subarray(0, total);
}

/**
 * A read that does not finish in time is a TIMEOUT: the caller moves on (and its partition with
 * it, shutdown included) while the stuck system call is left to the thread pool.
 */
function withDeadline<T>(work: Promise<T>, ms: number, file: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FetchError('TIMEOUT', `${file}: not read within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export function hostAllowed(url: URL, allowed: string[]): boolean {
  const host = url.host.toLowerCase(); // with a port when one is given
  const hostname = url.hostname.toLowerCase();
  return allowed.some((entryRaw) => {
    const entry = entryRaw.toLowerCase().trim();
    if (entry.startsWith('*.')) return hostname.endsWith(entry.slice(1));
    return entry.includes(':') && !entry.startsWith('[')
      ? entry === host
      : entry === hostname || entry === host;
  });
}

async function fetchHttp(start: URL, policy: FetchPolicy): Promise<Buffer> {
  const signal = AbortSignal.timeout(policy.timeoutMs);
  let url = start;
  for (let hop = 0; ; hop++) {
    if (!hostAllowed(url, policy.allowedHosts))
      throw new FetchError('FORBIDDEN_HOST', `host ${url.host} is not in the allowlist`);
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'manual', signal });
    } catch (err) {
      throw classifyNetworkError(err, url);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      if (hop >= (policy.maxRedirects ?? 3))
        throw new FetchError('FETCH_FAILED', `too many redirects from ${start.href}`);
      url = parseUrl(new URL(res.headers.get('location')!, url).href);
      if (url.protocol === 'file:') throw new FetchError('FORBIDDEN_URI', 'redirect to a file URI');
      continue;
    }
    if (res.status === 404 || res.status === 410)
      throw new FetchError('NOT_FOUND', `${url.href}: HTTP ${res.status}`);
    if (res.status >= 500 || res.status === 429)
      throw new FetchError('UNREACHABLE', `${url.href}: HTTP ${res.status}`);
    if (!res.ok) throw new FetchError('FETCH_FAILED', `${url.href}: HTTP ${res.status}`);
    return readLimited(res, policy.maxBytes, url);
  }
}

async function readLimited(res: Response, maxBytes: number, url: URL): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw new FetchError('TOO_LARGE', `${url.href} declares ${declared} bytes (limit ${maxBytes})`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > maxBytes) throw new FetchError('TOO_LARGE', `${url.href} sent more than ${maxBytes} bytes`);
      chunks.push(Buffer.from(chunk));
    }
  } catch (err) {
    if (err instanceof FetchError) {
      await res.body?.cancel().catch(() => {});
      throw err;
    }
    throw classifyNetworkError(err, url);
  }
  return Buffer.concat(chunks);
}

function classifyNetworkError(err: unknown, url: URL): FetchError {
  const e = err as Error & { cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new FetchError('TIMEOUT', `${url.href}: no complete answer in time`, { cause: err });
  }
  const code = e.cause?.code ?? '';
  return new FetchError('UNREACHABLE', `${url.href}: ${code || e.message}`, { cause: err });
}
