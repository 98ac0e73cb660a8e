/**
 * The lookup service program (`facepipe serve`): opens an existing data dir with an analyzer of its
 * model, builds the HTTP API (api/server.ts) over it and listens. `close` stops the server, writes
 * an index checkpoint and closes the data dir.
 */
import type { FastifyServerOptions } from 'fastify';
import { buildServer, type ServerLimits } from '../api/server.ts';
import { openDataDir } from './dataDir.ts';

export interface ServeOptions {
  dataDir: string;
  modelsDir?: string;
  port: number;
  host: string;
  token?: string;
  limits: ServerLimits;
  logger: FastifyServerOptions['logger'];
}

export interface RunningService {
  address: string;
  close(): Promise<void>;
}

export async function startService(o: ServeOptions): Promise<RunningService> {
  const opened = await openDataDir(o.dataDir, {
    modelsDir: o.modelsDir,
    analyzer: true,
    analyzerMaxPixels: o.limits.maxPixels,
    analyzerMaxBytes: o.limits.maxUploadBytes,
  });
  try {
    const app = await buildServer({ ...opened, token: o.token, limits: o.limits, logger: o.logger });
    const address = await app.listen({ port: o.port, host: o.host });
    return {
      address,
      close: async () => {
        await app.close();
        opened.db.checkpoint();
        await opened.close();
      },
    };
  } catch (err) {
    await opened.close();
    throw err;
  }
}
