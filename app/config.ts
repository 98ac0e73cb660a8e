/**
 * The one place that reads the environment. Every FACEPIPE_* and KAFKA_* variable a program uses
 * is declared here, validated once (a bad value is one line naming the variable, exit 2), and
 * turned into a FacepipeConfig that is passed down: the CLI takes its option defaults from it, the
 * programs hand its parts to the libraries (Kafka settings, models folder, provider, log level,
 * inference niceness). No library reads `process.env`.
 */
import { z } from 'zod';
import { FacepipeError } from '../core/errors.ts';
import { DEFAULT_KAFKA_ENV, type KafkaEnv } from '../pipeline/kafka/config.ts';
import { DEFAULT_DATA_DIR } from './dataDir.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const text = z.string().trim().min(1);
const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const list = z.string().transform((v) =>
  v
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean),
);

/** The variables, as they may be set; unset and empty are the same. */
const Environment = z.object({
  FACEPIPE_DATA: text.optional(),
  FACEPIPE_MODELS: text.optional(),
  FACEPIPE_PROVIDER: z
    .string()
    .transform((v) => v.toLowerCase())
    .pipe(z.enum(['cpu', 'cuda']))
    .optional(),
  FACEPIPE_LOG_LEVEL: z.enum(LOG_LEVELS).optional(),
  FACEPIPE_KAFKA_LOG_LEVEL: z.enum(['debug', 'warn']).optional(),
  FACEPIPE_INFERENCE_NICE: integer(0, 19).optional(),
  FACEPIPE_PORT: integer(0, 65535).optional(),
  FACEPIPE_HOST: text.optional(),
  FACEPIPE_TOKEN: text.optional(),
  FACEPIPE_MAX_UPLOAD_BYTES: integer(1, 2 ** 31).optional(),
  FACEPIPE_MAX_PIXELS: integer(1, 2 ** 40).optional(),
  FACEPIPE_MAX_IMAGE_SEARCHES: integer(1, 1024).optional(),
  /** crash tests only: `run` stops itself (SIGSTOP) at this point so the test can SIGKILL it there */
  FACEPIPE_PAUSE_AT: z.enum(['before-recluster']).optional(),
  FACEPIPE_FILE_ROOTS: list.optional(),
  FACEPIPE_ALLOWED_HOSTS: list.optional(),
  KAFKA_BROKERS: list.optional(),
  FACEPIPE_TOPIC_PREFIX: z.string().optional(),
  FACEPIPE_TOPIC_PHOTOS: text.optional(),
  FACEPIPE_TOPIC_FACES: text.optional(),
  FACEPIPE_TOPIC_IDENTITY_EVENTS: text.optional(),
  FACEPIPE_TOPIC_DEAD_LETTERS: text.optional(),
  FACEPIPE_PARTITIONS: integer(1, 10_000).optional(),
  FACEPIPE_REPLICATION: integer(1, 100).optional(),
  FACEPIPE_CLIENT_ID: text.optional(),
  FACEPIPE_WORKER_GROUP: text.optional(),
  FACEPIPE_INDEXER_GROUP: text.optional(),
  FACEPIPE_SESSION_TIMEOUT_MS: integer(1000, 3_600_000).optional(),
});

export interface FacepipeConfig {
  /** default --data */
  dataDir: string;
  /** FACEPIPE_MODELS, when set (--models wins; the bundled models/ otherwise) */
  modelsDir?: string;
  provider: 'cpu' | 'cuda';
  logLevel: (typeof LOG_LEVELS)[number];
  /** niceness of the inference threads (0 = off) */
  inferenceNice: number;
  serve: {
    port: number;
    host: string;
    token?: string;
    maxUploadBytes?: number;
    maxPixels?: number;
    maxImageSearches?: number;
  };
  /** FACEPIPE_PAUSE_AT (crash tests): where `run` stops itself */
  pauseAt?: 'before-recluster';
  fetch: { fileRoots: string[]; allowedHosts: string[] };
  kafka: KafkaEnv;
}

export class ConfigError extends FacepipeError {
  constructor(message: string) {
    super('CONFIG', message);
  }
}

/** Reads and validates the environment; a bad value is a ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): FacepipeConfig {
  const given = Object.fromEntries(
    Object.keys(Environment.shape).flatMap((k) =>
      env[k] === undefined || env[k] === '' ? [] : [[k, env[k]]],
    ),
  );
  const parsed = Environment.safeParse(given);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0]);
    throw new ConfigError(`${name}=${env[name]} is invalid: ${issue.message}`);
  }
  const e = parsed.data;
  return {
    dataDir: e.FACEPIPE_DATA ?? DEFAULT_DATA_DIR,
    ...(e.FACEPIPE_MODELS ? { modelsDir: e.FACEPIPE_MODELS } : {}),
    provider: e.FACEPIPE_PROVIDER ?? 'cpu',
    logLevel: e.FACEPIPE_LOG_LEVEL ?? 'info',
    inferenceNice: e.FACEPIPE_INFERENCE_NICE ?? 10,
    serve: {
      port: e.FACEPIPE_PORT ?? 8080,
      host: e.FACEPIPE_HOST ?? '127.0.0.1',
      ...(e.FACEPIPE_TOKEN ? { token: e.FACEPIPE_TOKEN } : {}),
      ...(e.FACEPIPE_MAX_UPLOAD_BYTES ? { maxUploadBytes: e.FACEPIPE_MAX_UPLOAD_BYTES } : {}),
      ...(e.FACEPIPE_MAX_PIXELS ? { maxPixels: e.FACEPIPE_MAX_PIXELS } : {}),
      ...(e.FACEPIPE_MAX_IMAGE_SEARCHES ? { maxImageSearches: e.FACEPIPE_MAX_IMAGE_SEARCHES } : {}),
    },
    ...(e.FACEPIPE_PAUSE_AT ? { pauseAt: e.FACEPIPE_PAUSE_AT } : {}),
    fetch: { fileRoots: e.FACEPIPE_FILE_ROOTS ?? [], allowedHosts: e.FACEPIPE_ALLOWED_HOSTS ?? [] },
    kafka: {
      brokers: e.KAFKA_BROKERS ?? DEFAULT_KAFKA_ENV.brokers,
      prefix: e.FACEPIPE_TOPIC_PREFIX ?? DEFAULT_KAFKA_ENV.prefix,
      topics: {
        photos: e.FACEPIPE_TOPIC_PHOTOS ?? DEFAULT_KAFKA_ENV.topics.photos,
        faces: e.FACEPIPE_TOPIC_FACES ?? DEFAULT_KAFKA_ENV.topics.faces,
        identityEvents: e.FACEPIPE_TOPIC_IDENTITY_EVENTS ?? DEFAULT_KAFKA_ENV.topics.identityEvents,
        deadLetters: e.FACEPIPE_TOPIC_DEAD_LETTERS ?? DEFAULT_KAFKA_ENV.topics.deadLetters,
      },
      partitions: e.FACEPIPE_PARTITIONS ?? DEFAULT_KAFKA_ENV.partitions,
      replicationFactor: e.FACEPIPE_REPLICATION ?? DEFAULT_KAFKA_ENV.replicationFactor,
      ...(e.FACEPIPE_CLIENT_ID ? { clientId: e.FACEPIPE_CLIENT_ID } : {}),
      groups: {
        worker: e.FACEPIPE_WORKER_GROUP ?? DEFAULT_KAFKA_ENV.groups.worker,
        indexer: e.FACEPIPE_INDEXER_GROUP ?? DEFAULT_KAFKA_ENV.groups.indexer,
      },
      sessionTimeoutMs: e.FACEPIPE_SESSION_TIMEOUT_MS ?? DEFAULT_KAFKA_ENV.sessionTimeoutMs,
      logLevel: e.FACEPIPE_KAFKA_LOG_LEVEL ?? DEFAULT_KAFKA_ENV.logLevel,
    },
  };
}
