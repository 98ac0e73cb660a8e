/**
 * kafkajs clients wired to the project's logger: the cluster handle, topic creation and an
 * idempotent producer whose sends wait for all in-sync replicas (acks = -1).
 */
import {
  Kafka,
  logLevel,
  Partitioners,
  type LogEntry,
  type Producer,
  type Admin,
  type Message,
} from 'kafkajs';
import { log } from '../../core/log.ts';
import type { KafkaSettings } from './config.ts';

const PINO_LEVEL: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

function kafkaLogCreator() {
  const kafkaLog = log.child({ component: 'kafkajs' });
  return ({ level, log: entry }: LogEntry) => {
    const { message, ...rest } = entry;
    // kafkajs reports connection trouble as ERROR while it retries on its own: keep those at warn
    const lvl = PINO_LEVEL[level] ?? 'info';
    kafkaLog[lvl === 'error' ? 'warn' : lvl](rest, message);
  };
}

export function createKafka(settings: KafkaSettings): Kafka {
  const level = settings.logLevel === 'debug' ? logLevel.DEBUG : logLevel.WARN;
  return new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    logLevel: level,
    logCreator: kafkaLogCreator,
    connectionTimeout: 3000,
    requestTimeout: 30_000,
    // keep trying through a broker restart; the callers decide when to give up
    retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 8 },
  });
}

/** Creates the four topics when missing (idempotent; existing topics are left as they are). */
export async function ensureTopics(kafka: Kafka, settings: KafkaSettings): Promise<void> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const t = settings.topics;
    const wanted = [
      { topic: t.photos, numPartitions: settings.partitions },
      { topic: t.faces, numPartitions: settings.partitions },
      { topic: t.identityEvents, numPartitions: 1 },
      { topic: t.deadLetters, numPartitions: 1 },
    ].filter((x) => !existing.has(x.topic));
    if (wanted.length === 0) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: wanted.map((w) => ({ ...w, replicationFactor: settings.replicationFactor })),
    });
    log.info({ topics: wanted.map((w) => w.topic) }, 'created kafka topics');
  } catch (err) {
    // another process may have created them at the same moment
    if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw err;
  } finally {
    await admin.disconnect();
  }
}

/** An idempotent producer: retried sends are never written twice to a partition. */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    // an idempotent producer keeps retrying (kafkajs warns otherwise); through an outage too
    retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: Number.MAX_SAFE_INTEGER },
  });
}

/**
 * Sends messages and resolves once the broker acknowledged all of them (acks = -1). Broker
 * outages are not the message's fault: the send is retried until it succeeds or `shouldStop`
 * says so, with a capped backoff.
 */
export async function sendAcked(
  producer: Producer,
  topic: string,
  messages: Message[],
  shouldStop: () => boolean = () => false,
): Promise<void> {
  let delay = 250;
  for (;;) {
    try {
      await producer.send({ topic, messages, acks: -1 });
      return;
    } catch (err) {
      if (shouldStop()) throw err;
      log.warn({ err: (err as Error).message, topic }, 'kafka send failed; retrying');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

export const jsonValue = (v: unknown): string => JSON.stringify(v);
