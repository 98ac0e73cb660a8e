/**
 * Kafka settings from the environment (and command-line overrides). Every name can be changed so
 * several pipelines (or test runs) share one cluster: FACEPIPE_TOPIC_PREFIX prefixes all topics
 * and consumer groups.
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
 */
import os from 'node:os';

export interface TopicNames {
  photos: string;
  faces: string;
  identityEvents: string;
  deadLetters: string;
}

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  topics: TopicNames;
  partitions: number;
  replicationFactor: number;
  groups: { worker: string; indexer: string };
  sessionTimeoutMs: number;
}

export type KafkaRole = 'worker' | 'indexer' | 'publish' | 'status' | 'bench' | 'admin';

export interface KafkaOverrides {
  brokers?: string;
  prefix?: string;
  partitions?: number;
  clientId?: string;
}

function intFrom(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}

export function kafkaSettings(
  role: KafkaRole,
  overrides: KafkaOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): KafkaSettings {
  const prefix = overrides.prefix ?? env.FACEPIPE_TOPIC_PREFIX ?? '';
  const brokers = (overrides.brokers ?? env.KAFKA_BROKERS ?? '127.0.0.1:9092')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  if (brokers.length === 0) throw new Error('no Kafka brokers configured (KAFKA_BROKERS or --brokers)');
  return {
    brokers,
    clientId:
      overrides.clientId ?? env.FACEPIPE_CLIENT_ID ?? `facepipe-${role}-${os.hostname()}-${process.pid}`,
    topics: {
      photos: prefix + (env.FACEPIPE_TOPIC_PHOTOS ?? 'photos'),
      faces: prefix + (env.FACEPIPE_TOPIC_FACES ?? 'faces'),
      identityEvents: prefix + (env.FACEPIPE_TOPIC_IDENTITY_EVENTS ?? 'identity-events'),
      deadLetters: prefix + (env.FACEPIPE_TOPIC_DEAD_LETTERS ?? 'dead-letters'),
    },
    partitions: overrides.partitions ?? intFrom(env.FACEPIPE_PARTITIONS, 6, 'FACEPIPE_PARTITIONS'),
    replicationFactor: intFrom(env.FACEPIPE_REPLICATION, 1, 'FACEPIPE_REPLICATION'),
    groups: {
      worker: prefix + (env.FACEPIPE_WORKER_GROUP ?? 'facepipe-ingest'),
      indexer: prefix + (env.FACEPIPE_INDEXER_GROUP ?? 'facepipe-indexer'),
    },
    sessionTimeoutMs: intFrom(env.FACEPIPE_SESSION_TIMEOUT_MS, 30_000, 'FACEPIPE_SESSION_TIMEOUT_MS'),
  };
}
