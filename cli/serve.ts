import type { Command } from 'commander';
import { DEFAULT_LIMITS } from '../api/server.ts';
import { DEFAULT_DATA_DIR } from '../app/dataDir.ts';
import { startService } from '../app/serve.ts';
import { log } from '../core/log.ts';
import { envInteger, integerIn, requireDataDir } from './options.ts';

export function register(program: Command): void {
  program
    .command('serve')
    .description('The identity lookup service over HTTP (OpenAPI at /openapi.json)')
    .option(
      '--data <dir>',
      'data folder written by `facepipe run`',
      process.env.FACEPIPE_DATA ?? DEFAULT_DATA_DIR,
    )
    .option(
      '--port <port>',
      'TCP port (0 = any free port)',
      integerIn(0, 65535),
      envInteger('FACEPIPE_PORT', 8080, 0, 65535),
    )
    .option('--host <host>', 'address to listen on', process.env.FACEPIPE_HOST ?? '127.0.0.1')
    .option('--token <token>', 'require Authorization: Bearer <token> (or FACEPIPE_TOKEN)')
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .option(
      '--max-upload-bytes <n>',
      'largest image upload',
      integerIn(1, 2 ** 31),
      envInteger('FACEPIPE_MAX_UPLOAD_BYTES', DEFAULT_LIMITS.maxUploadBytes),
    )
    .option(
      '--max-pixels <n>',
      'largest image, width × height',
      integerIn(1, 2 ** 40),
      envInteger('FACEPIPE_MAX_PIXELS', DEFAULT_LIMITS.maxPixels),
    )
    .option('--max-k <n>', 'largest k a search may ask for', integerIn(1, 1000), DEFAULT_LIMITS.maxK)
    .action(async (o: ServeOptions) => {
      requireDataDir(o.data);
      const token = o.token ?? process.env.FACEPIPE_TOKEN ?? undefined;
      const service = await startService({
        dataDir: o.data,
        modelsDir: o.models,
        port: o.port,
        host: o.host,
        token: token || undefined,
        limits: { maxUploadBytes: o.maxUploadBytes, maxPixels: o.maxPixels, maxK: o.maxK },
        logger: { level: process.env.FACEPIPE_LOG_LEVEL ?? 'info', stream: process.stderr },
      });
      const address = service.address;
      // The listening address is command output (scripts and tests read it); logs stay on stderr.
      process.stdout.write(JSON.stringify({ listening: address, auth: Boolean(token) }) + '\n');
      const shutdown = async (signal: string) => {
        log.info({ signal }, 'shutting down');
        await service.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
    });
}

interface ServeOptions {
  data: string;
  port: number;
  host: string;
  token?: string;
  models?: string;
  maxUploadBytes: number;
  maxPixels: number;
  maxK: number;
}
