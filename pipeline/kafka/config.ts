/**
 * Kafka settings: what the environment says (parsed once by app/config.ts into a KafkaEnv, the
 * variables below) plus command-line overrides. Every name can be changed so several pipelines (or
 * test runs) share one cluster: the prefix applies to all topics and consumer groups.
 *
 *   KAFKA_BROKERS                 bootstrap list, comma-separated (default 127.0.0.1:9092)
 *   FACEPIPE_TOPIC_PREFIX         prefix of every topic and group id (default '')
 *   FACEPIPE_TOPIC_PHOTOS         photos topic (default photos)            — PhotoEvent
 *   FACEPIPE_TOPIC_FACES          faces topic (default faces)              — FaceRecord / PhotoResult
 *   FACEPIPE_TOPIC_IDENTITY_EVENTS identity events (default identity-events) — IdentityEvent
 *   FACEPIPE_TOPIC_DEAD_LETTERS   dead letters (default dead-letters)      — DeadLetter
 *   FACEPIPE_PARTITIONS           partitions of the photos and faces topics when created (default 6)
 *   FACEPIPE_REPLICATION          replication factor when created (default 1)
 *   FACEPIPE_CLIENT_ID            client id (default facepipe-<role>-<host>-<pid>)
 *   FACEPIPE_WORKER_GROUP         ingest consumer group (default facepipe-ingest)
 *   FACEPIPE_INDEXER_GROUP        indexer consumer group (default facepipe-indexer)
 *   FACEPIPE_SESSION_TIMEOUT_MS   consumer session timeout (default 30000; a killed worker's
 *                                 partitions move after this long)
 *   FACEPIPE_KAFKA_LOG_LEVEL      debug for kafkajs's own log (default warn)
 */
import os from 'node:os';

export interface TopicNames {
  photos: string;
  faces: string;
  identityEvents: string;
  deadLetters: string;
}

/** The Kafka part of the configuration (app/config.ts), before the prefix is applied. */
export interface KafkaEnv {
  brokers: string[];
  prefix: string;
  topics: TopicNames;
  partitions: number;
  replicationFactor: number;
  clientId?: string;
  groups: { worker: string; indexer: string };
  sessionTimeoutMs: number;
  logLevel: 'debug' | 'warn';
}

export const DEFAULT_KAFKA_ENV: KafkaEnv = {
  brokers: ['127.0.0.1:9092'],
  prefix: '',
  topics: {
    photos: 'photos',
    faces: 'faces',
    identityEvents: 'identity-events',
    deadLetters: 'dead-letters',
  },
  partitions: 6,
  replicationFactor: 1,
  groups: { worker: 'facepipe-ingest', indexer: 'facepipe-indexer' },
  sessionTimeoutMs: 30_000,
  logLevel: 'warn',
};

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  topics: TopicNames;
  partitions: number;
  replicationFactor: number;
  groups: { worker: string; indexer: string };
  sessionTimeoutMs: number;
  logLevel: 'debug' | 'warn';
}

export type KafkaRole = 'worker' | 'indexer' | 'publish' | 'status' | 'bench' | 'admin';

export interface KafkaOverrides {
  brokers?: string;
  prefix?: string;
  partitions?: number;
  clientId?: string;
}

export function kafkaSettings(
  role: KafkaRole,
  overrides: KafkaOverrides = {},
  env: KafkaEnv = DEFAULT_KAFKA_ENV,
): KafkaSettings {
  const prefix = overrides.prefix ?? env.prefix;
  const brokers = overrides.brokers
    ? overrides.brokers
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean)
    : env.brokers;
  if (brokers.length === 0) throw new Error('no Kafka brokers configured (KAFKA_BROKERS or --brokers)');
  return {
    brokers,
    clientId: overrides.clientId ?? env.clientId ?? `facepipe-${role}-${os.hostname()}-${process.pid}`,
    topics: {
      photos: prefix + env.topics.photos,
      faces: prefix + env.topics.faces,
      identityEvents: prefix + env.topics.identityEvents,
      deadLetters: prefix + env.topics.deadLetters,
    },
    partitions: overrides.partitions ?? env.partitions,
    replicationFactor: env.replicationFactor,
    groups: { worker: prefix + env.groups.worker, indexer: prefix + env.groups.indexer },
    sessionTimeoutMs: env.sessionTimeoutMs,
    logLevel: env.logLevel,
  };
}
