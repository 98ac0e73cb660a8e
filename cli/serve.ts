import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { DEFAULT_LIMITS } from '../api/server.ts';
import { startService } from '../app/serve.ts';
import { log } from '../core/log.ts';
import { integerIn, requireDataDir, modelsDirFrom } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';
import { rebuildProgressBar } from './progress.ts';

export function register(program: Command, config: FacepipeConfig): void {
  program
    .command('serve')
    .description('The identity lookup service over HTTP (OpenAPI at /openapi.json)')
    .option('--data <dir>', 'data folder written by `facepipe run`', config.dataDir)
    .option('--port <port>', 'TCP port (0 = any free port)', integerIn(0, 65535), config.serve.port)
    .option('--host <host>', 'address to listen on', config.serve.host)
    .option('--token <token>', 'require Authorization: Bearer <token> (or FACEPIPE_TOKEN)')
    .option(
      '--no-auth',
      'allow listening beyond loopback (--host) without a token: anyone who reaches it can read, merge and delete',
    )
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .option(
      '--max-upload-bytes <n>',
      'largest image upload',
      integerIn(1, 2 ** 31),
      config.serve.maxUploadBytes ?? DEFAULT_LIMITS.maxUploadBytes,
    )
    .option(
      '--max-pixels <n>',
      'largest image, width × height',
      integerIn(1, 2 ** 40),
      config.serve.maxPixels ?? DEFAULT_LIMITS.maxPixels,
    )
    .option('--max-k <n>', 'largest k a search may ask for', integerIn(1, 1000), DEFAULT_LIMITS.maxK)
    .option(
      '--max-image-searches <n>',
      'searches by image analysed at once; more are answered 503 with Retry-After',
      integerIn(1, 1024),
      config.serve.maxImageSearches ?? DEFAULT_LIMITS.maxImageSearches,
    )
    .action(async (o: ServeOptions) => {
      requireDataDir(o.data);
      const token = o.token ?? config.serve.token;
      const service = await startService({
        dataDir: o.data,
        modelsDir: modelsDirFrom(o.models, config),
        provider: config.provider,
        inferenceNice: config.inferenceNice,
        onRebuildProgress: rebuildProgressBar(),
        port: o.port,
        host: o.host,
        token: token || undefined,
        allowNoAuth: o.auth === false,
        limits: {
          maxUploadBytes: o.maxUploadBytes,
          maxPixels: o.maxPixels,
          maxK: o.maxK,
          maxImageSearches: o.maxImageSearches,
        },
        logger: { level: config.logLevel, stream: process.stderr },
      });
      const address = service.address;
      // The listening address is command output (scripts and tests read it); logs stay on stderr.
      process.stdout.write(JSON.stringify({ listening: address, auth: Boolean(token) }) + '\n');
      if (service.open)
        process.stderr.write(
          `facepipe serve: WARNING: ${address} has NO authentication (--no-auth): anyone who can reach it ` +
            `can read every face and merge and delete identities\n`,
        );
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
  auth: boolean;
  models?: string;
  maxUploadBytes: number;
  maxPixels: number;
  maxK: number;
  maxImageSearches: number;
}
/**
 * `facepipe run --open`: the people view on loopback over the data dir just written (no token:
 * only this machine can reach it), printed and opened in the default browser; runs until Ctrl-C.
 */
export async function servePeopleView(dataDir: string, modelsDir?: string): Promise<void> {
  const service = await startService({
    dataDir,
    modelsDir,
    port: 0,
    host: '127.0.0.1',
    limits: DEFAULT_LIMITS,
    logger: false,
  });
  process.stdout.write(`people view: ${service.address}/  (Ctrl-C to stop)\n`);
  openInBrowser(`${service.address}/`);
  const shutdown = async () => {
    await service.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

/** Best effort: the URL is printed either way, and a machine without a desktop just ignores this. */
function openInBrowser(url: string): void {
  const opener =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no opener on this machine
  }
}
