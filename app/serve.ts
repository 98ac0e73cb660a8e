/**
 * The lookup service program (`facepipe serve`): opens an existing data dir with an analyzer of its
 * model, builds the HTTP API (api/server.ts) over it and listens. `close` stops the server, writes
 * an index checkpoint and closes the data dir.
 */
import { isIPv4, type AddressInfo } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import { buildServer, type ServerLimits } from '../api/server.ts';
import { openDataDir } from './dataDir.ts';

export interface ServeOptions {
  dataDir: string;
  modelsDir?: string;
  provider?: 'cpu' | 'cuda';
  inferenceNice?: number;
  onRebuildProgress?: (done: number, total: number) => void;
  port: number;
  host: string;
  token?: string;
  /** listen beyond loopback without a token (`--no-auth`): anyone who reaches it may read, merge, delete */
  allowNoAuth?: boolean;
  limits: ServerLimits;
  logger: FastifyServerOptions['logger'];
}

export interface RunningService {
  /** the address actually bound, e.g. http://0.0.0.0:8080 or http://[::1]:8080 */
  address: string;
  /** true when it listens beyond loopback without a token */
  open: boolean;
  close(): Promise<void>;
}

/** How long a shutdown waits for requests still being answered. */
const DRAIN_MS = 30_000;

/** A refusal to start the way the user asked (one line, exit 2). */
export class ServeRefusedError extends Error {
  readonly code = 'USAGE';
}

/** True for an address only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return isIPv4(h.slice(7)) && h.slice(7).startsWith('127.');
  return false;
}

/**
 * The service can read every face and merge and erase identities: beyond loopback it needs a
 * token, or the user's explicit `--no-auth`.
 */
function checkExposure(o: ServeOptions): void {
  if (o.token || isLoopback(o.host) || o.allowNoAuth) return;
  throw new ServeRefusedError(
    `refusing to listen on ${o.host} without a token: anyone who can reach it could read, merge and delete identities; ` +
      `pass --token (or FACEPIPE_TOKEN), or --no-auth if that is really what you want`,
  );
}

function boundAddress(server: { address(): AddressInfo | string | null }): string {
  const a = server.address();
  if (a === null) return 'unknown';
  if (typeof a === 'string') return a; // a unix socket
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

export async function startService(o: ServeOptions): Promise<RunningService> {
  checkExposure(o);
  const opened = await openDataDir(o.dataDir, {
    modelsDir: o.modelsDir,
    analyzer: true,
    analyzerMaxPixels: o.limits.maxPixels,
    analyzerMaxBytes: o.limits.maxUploadBytes,
    provider: o.provider,
    inferenceNice: o.inferenceNice,
    onRebuildProgress: o.onRebuildProgress,
  });
  try {
    const app = await buildServer({ ...opened, token: o.token, limits: o.limits, logger: o.logger });
    // requests being answered: closing waits for them before the data dir and analyzer go away
    let answering = 0;
    let drained: (() => void) | undefined;
    app.addHook('onRequest', (_request, _reply, done) => {
      answering++;
      done();
    });
    const settle = (): void => {
      if (--answering === 0) drained?.();
    };
    app.addHook('onResponse', (_request, _reply, done) => {
      settle();
      done();
    });
    app.addHook('onRequestAbort', (_request, done) => {
      settle();
      done();
    });
    const drain = (): Promise<void> =>
      answering === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            drained = resolve;
            setTimeout(resolve, DRAIN_MS).unref();
          });
    await app.listen({ port: o.port, host: o.host });
    return {
      // what was bound, not fastify's first "reachable" address (127.0.0.1 for 0.0.0.0)
      address: boundAddress(app.server),
      open: !o.token && !isLoopback(o.host),
      close: async () => {
        const closed = app.close();
        await drain();
        await closed;
        opened.db.checkpoint();
        await opened.close();
      },
    };
  } catch (err) {
    await opened.close();
    throw err;
  }
}
