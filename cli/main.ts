import { Command, CommanderError } from 'commander';
import * as analyze from './analyze.ts';
import * as models from './models.ts';
import * as index from './index.ts';
import * as cluster from './cluster.ts';
import * as stream from './stream.ts';
import * as run from './run.ts';
import * as serve from './serve.ts';
import * as recluster from './recluster.ts';
import * as evaluation from './eval.ts';
import { loadConfig, type FacepipeConfig } from '../app/config.ts';
import { log, setLogLevel } from '../core/log.ts';
import { tuneMemory } from '../app/memoryTuning.ts';

// Each area registers its own commands (their defaults from the one configuration, app/config.ts);
// this file only assembles the program and decides how a failure reaches the user.
const AREAS: { register: (program: Command, config: FacepipeConfig) => void }[] = [
  run,
  analyze,
  serve,
  recluster,
  cluster,
  evaluation,
  index,
  stream,
  models,
];

/**
 * Error codes of mistakes the user can fix (a wrong path, a missing data dir, bad models, a port
 * in use, a full disk): one line and exit code 2. Anything else is a bug or an outage: one line
 * and exit code 1. The stack trace only with FACEPIPE_LOG_LEVEL=debug.
 */
const USER_ERROR_CODES = new Set([
  'USAGE',
  'MODEL_CONFIG',
  'NO_DATA',
  'NO_STORE',
  'STORE_CORRUPT',
  'CONFIG',
  'LEGACY_PHOTO_IDS',
  'EADDRINUSE',
  'EADDRNOTAVAIL',
  'EACCES',
  'EPERM',
  'ENOENT',
  'ENOTDIR',
  'EISDIR',
  'EEXIST',
  'EROFS',
  'ENOSPC',
]);

interface SystemError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
  address?: string;
  port?: number;
}

/** A system error's one line, with what to do: Node's own text names the syscall, not the remedy. */
function systemErrorLine(err: SystemError): string | undefined {
  switch (err.code) {
    case 'EADDRINUSE':
      return `${err.address ?? 'the address'}:${err.port ?? '?'} is already in use: stop the other server or pass another --port`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${err.address ?? 'that address'}: it is not an address of this machine (--host)`;
    case 'ENOSPC':
      return `disk full at ${err.path ?? 'the data folder'}: free some space and run the command again`;
    case 'EACCES':
    case 'EPERM':
      return err.syscall === 'listen'
        ? `not allowed to listen on port ${err.port ?? '?'}: pick a port above 1023 (--port)`
        : `permission denied: ${err.path ?? err.message} (${err.syscall ?? 'access'})`;
    case 'ENOENT':
      return err.path ? `no such file or folder: ${err.path}` : undefined;
    case 'ENOTDIR':
      return err.path ? `not a folder: ${err.path} (a file is in the way)` : undefined;
    case 'EISDIR':
      return err.path ? `${err.path} is a folder, a file was expected` : undefined;
    case 'EROFS':
      return `read-only file system: ${err.path ?? err.message}`;
    default:
      return undefined;
  }
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '') ?? text;
}

/** Prints a command's failure the way a person can read it; returns the exit code. */
export function reportFailure(err: unknown, write = (t: string) => process.stderr.write(t)): number {
  if (err instanceof CommanderError) {
    // commander has already printed its one line (or the help / version)
    return err.exitCode === 0 ? 0 : 2;
  }
  const e = (err instanceof Error ? err : new Error(String(err))) as SystemError;
  const user = e.code !== undefined && USER_ERROR_CODES.has(e.code);
  const line = systemErrorLine(e) ?? firstLine(e.message);
  const debug = log.level === 'debug' || log.level === 'trace';
  // not the user's mistake: still one line, with the way to the details
  const hint = user || debug ? '' : ' (FACEPIPE_LOG_LEVEL=debug shows the stack trace)';
  write(`facepipe: ${line}${hint}\n`);
  if (debug) write(`${e.stack ?? ''}\n`);
  return user ? 2 : 1;
}

export function buildProgram(config: FacepipeConfig = loadConfig()): Command {
  setLogLevel(config.logLevel);
  const program = new Command('facepipe')
    .description(
      'Face clustering pipeline with a vector database (MagFace embeddings, HNSW, quality-aware clustering)',
    )
    .version('0.1.0')
    // set before the areas register, so that every subcommand inherits them: a usage mistake
    // throws a CommanderError (its one line already printed) instead of exiting on its own
    .exitOverride()
    .showSuggestionAfterError();
  for (const area of AREAS) area.register(program, config);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // before any decode or inference thread exists: they inherit the allocator's limits
  const memory = tuneMemory();
  // a failure outside the command's own promise (a listener, a timer) gets the same treatment
  const fail = (err: unknown): void => {
    process.exitCode = reportFailure(err);
    process.exit();
  };
  // a closed pipe (`| head`) ends the command quietly, whichever command was writing
  process.stdout.on('error', (err: NodeJS.ErrnoException) =>
    err.code === 'EPIPE' ? process.exit(0) : fail(err),
  );
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  try {
    const program = buildProgram();
    log.debug(memory, 'memory tuning');
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = reportFailure(err);
  }
}
