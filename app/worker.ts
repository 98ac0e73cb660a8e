/**
 * The ingest worker: a kafkajs consumer group member on the photos topic. For each PhotoEvent:
 * parse and validate → fetch the bytes (pipeline/fetchPhoto.ts) → analyze → publish the photo's
 * FaceRecords (each with its thumbnail JPEG) and then its PhotoResult to the faces topic (key =
 * photoId, so they stay together and in order; the indexer hands them to the ingest step as one
 * photo). A message that cannot be processed becomes a DeadLetter instead, after at most
 * `maxAttempts` tries. An offset is committed only once everything up to it was acknowledged by
 * the broker (acks = -1), so a crash re-processes, never loses; downstream is idempotent by faceId.
 *
 * Work in flight is bounded by one p-queue shared by all partitions: when the model is slow the
 * batch loop waits for room instead of reading ahead, so consumption slows down with it.
 */
import PQueue from 'p-queue';
import type { EachBatchPayload, KafkaMessage, Message } from 'kafkajs';
import { z } from 'zod';
import { PhotoEvent, PhotoResult, FACES_TOPIC_TYPE_HEADER } from '../schemas/photoEvent.ts';
import type { DeadLetterStage } from '../schemas/deadLetter.ts';
import { buildDeadLetter, type RawMessage } from '../pipeline/kafka/deadLetters.ts';
import { SCHEMA_VERSION } from '../schemas/face.ts';
import { AnalyzeError, faceRecordsOf, type Analyzer } from '../pipeline/analyze.ts';
import { fetchPhoto, FetchError, type FetchPolicy } from '../pipeline/fetchPhoto.ts';
import { log } from '../core/log.ts';
import { FacepipeError } from '../core/errors.ts';
import { retry } from '../core/retry.ts';
import type { KafkaSettings } from '../pipeline/kafka/config.ts';
import { createKafka, createProducer, ensureTopics, sendAcked } from '../pipeline/kafka/client.ts';

/** What one photos-topic message turns into: messages for one topic. */
export interface Publication {
  topic: string;
  messages: Message[];
  /** for logs and counters */
  outcome: 'faces' | 'dead_letter' | 'erased';
  photoId?: string;
  faces?: number;
}

export interface PhotoHandlerDeps {
  analyzer: Pick<Analyzer, 'analyzeBytes' | 'modelId'>;
  fetchPolicy: FetchPolicy;
  topics: KafkaSettings['topics'];
  /** tries before a retriable failure becomes a dead letter (>= 1) */
  maxAttempts: number;
  /** first backoff between tries, doubled each time (with jitter, core/retry.ts) */
  retryBackoffMs: number;
  workerId: string;
  /** is this photo erased by a user (a tombstone by id, uri or content)? then nothing is published */
  erased?: (p: { photoId: string; uri: string; contentHash: string }) => boolean;
}

/** A failure at one stage of a photo's way through the worker; its code becomes the dead letter's. */
class StageError extends FacepipeError {
  constructor(
    readonly stage: DeadLetterStage,
    code: string,
    message: string,
    retriable: boolean,
    cause?: unknown,
  ) {
    super(code, message, { retriable, cause });
  }
}

/** Turns one message of the photos topic into what must be published for it; never throws. */
export async function handlePhotoMessage(msg: RawMessage, deps: PhotoHandlerDeps): Promise<Publication> {
  let event: PhotoEvent | undefined;
  let attempts = 0;
  try {
    const parsed = parsePhotoEvent(msg.value);
    event = parsed;
    return await retry(
      (attempt) => {
        attempts = attempt;
        return analyzeToFaces(parsed, deps).catch((err: unknown) => Promise.reject(toStageError(err)));
      },
      {
        attempts: deps.maxAttempts,
        initialMs: deps.retryBackoffMs,
        onRetry: (err, attempt, waitMs) =>
          log.warn(
            {
              photoId: parsed.photoId,
              code: (err as StageError).code,
              attempt,
              waitMs,
              err: (err as Error).message,
            },
            'photo failed; retrying',
          ),
      },
    );
  } catch (err) {
    const e = toStageError(err);
    const uri = event?.source.kind === 'uri' ? event.source.uri : undefined;
    return deadLetterPublication(msg, e, Math.max(1, attempts), event?.photoId ?? keyText(msg), uri, deps);
  }
}

function keyText(msg: RawMessage): string | undefined {
  return msg.key && msg.key.length > 0 ? msg.key.toString('utf8') : undefined;
}

function parsePhotoEvent(value: Buffer | null): PhotoEvent {
  let json: unknown;
  try {
    json = JSON.parse(value?.toString('utf8') ?? '');
  } catch (err) {
    throw new StageError('parse', 'MALFORMED_JSON', `not JSON: ${(err as Error).message}`, false);
  }
  const parsed = PhotoEvent.safeParse(json);
  if (!parsed.success)
    throw new StageError('validate', 'SCHEMA_INVALID', z.prettifyError(parsed.error), false);
  return parsed.data;
}

function toStageError(err: unknown): StageError {
  if (err instanceof StageError) return err;
  if (err instanceof FetchError) return new StageError('fetch', err.code, err.message, err.retriable, err);
  if (err instanceof AnalyzeError)
    return new StageError('analyze', err.code, err.message, err.retriable, err);
  // not one of ours: a bug or the machine (memory, a worker thread); worth another try
  return new StageError('analyze', 'INTERNAL', (err as Error)?.message ?? String(err), true, err);
}

async function analyzeToFaces(event: PhotoEvent, deps: PhotoHandlerDeps): Promise<Publication> {
  const fetched = await fetchPhoto(event.source, deps.fetchPolicy);
  if (deps.erased?.({ photoId: event.photoId, uri: fetched.uri, contentHash: fetched.contentHash }))
    return { topic: deps.topics.faces, messages: [], outcome: 'erased', photoId: event.photoId, faces: 0 };
  const analysis = await deps.analyzer.analyzeBytes(fetched.bytes, event.photoId);
  const modelId = deps.analyzer.modelId;
  const createdAt = new Date().toISOString();
  const records = (await faceRecordsOf(event.photoId, modelId, analysis, event.library)).map((r) => ({
    ...r,
    createdAt,
  }));
  const result: PhotoResult = {
    v: SCHEMA_VERSION,
    photoId: event.photoId,
    uri: fetched.uri,
    ...(event.library ? { library: event.library } : {}),
    ...(event.tenant ? { tenant: event.tenant } : {}),
    width: analysis.width,
    height: analysis.height,
    contentHash: fetched.contentHash,
    modelId,
    faceIds: records.map((r) => r.faceId),
    at: new Date().toISOString(),
  };
  const messages: Message[] = [
    ...records.map((r) => ({
      key: event.photoId,
      value: JSON.stringify(r),
      headers: { [FACES_TOPIC_TYPE_HEADER]: 'face' },
    })),
    // after the faces, on the same partition: the indexer sees the photo complete
    { key: event.photoId, value: JSON.stringify(result), headers: { [FACES_TOPIC_TYPE_HEADER]: 'photo' } },
  ];
  return {
    topic: deps.topics.faces,
    messages,
    outcome: 'faces',
    photoId: event.photoId,
    faces: records.length,
  };
}

function deadLetterPublication(
  msg: RawMessage,
  e: StageError,
  attempts: number,
  photoId: string | undefined,
  uri: string | undefined,
  deps: PhotoHandlerDeps,
): Publication {
  const dl = buildDeadLetter(msg, {
    uri,
    stage: e.stage,
    code: e.code,
    reason: e.message,
    attempts,
    photoId,
    worker: deps.workerId,
  });
  return {
    topic: deps.topics.deadLetters,
    messages: [{ key: photoId ?? dl.id, value: JSON.stringify(dl) }],
    outcome: 'dead_letter',
    ...(photoId ? { photoId } : {}),
  };
}

// ───────────────────────────── the consumer loop ─────────────────────────────

export interface IngestWorkerOptions {
  settings: KafkaSettings;
  analyzer: Analyzer;
  fetchPolicy: FetchPolicy;
  /** photos being fetched/analysed/published at once, over all partitions */
  maxInFlight?: number;
  maxAttempts?: number;
  retryBackoffMs?: number;
  /** partitions handled in parallel by this worker */
  partitionsConcurrently?: number;
  /** photos a user erased: fetched (to know their content) but never analysed nor published */
  erased?: PhotoHandlerDeps['erased'];
}

export interface IngestWorker {
  /** Stops taking new messages, finishes and commits what is in flight, disconnects. */
  stop(): Promise<void>;
  /** Counters since start. */
  stats(): { processed: number; faces: number; deadLetters: number };
}

/** Offsets of one batch, committed up to the first one still in flight. */
class BatchProgress {
  private done: boolean[];
  private next = 0;
  constructor(private readonly offsets: string[]) {
    this.done = offsets.map(() => false);
  }
  /** marks `i` done; returns the highest offset below which everything is done, if it moved */
  complete(i: number): string | undefined {
    this.done[i] = true;
    const before = this.next;
    while (this.next < this.done.length && this.done[this.next]) this.next++;
    return this.next > before ? this.offsets[this.next - 1] : undefined;
  }
}

export async function startIngestWorker(opts: IngestWorkerOptions): Promise<IngestWorker> {
  const { settings } = opts;
  const maxInFlight = opts.maxInFlight ?? 8;
  const kafka = createKafka(settings);
  await ensureTopics(kafka, settings);
  const producer = createProducer(kafka);
  await producer.connect();
  const consumer = kafka.consumer({
    groupId: settings.groups.worker,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: Math.max(1000, Math.floor(settings.sessionTimeoutMs / 10)),
    rebalanceTimeout: Math.max(60_000, settings.sessionTimeoutMs * 2),
    // small fetches: read ahead little, the queue below is the real buffer
    maxBytesPerPartition: 256 * 1024,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 10 },
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [settings.topics.photos], fromBeginning: true });

  const queue = new PQueue({ concurrency: maxInFlight });
  const counters = { processed: 0, faces: 0, deadLetters: 0 };
  let stopping = false;
  const deps: PhotoHandlerDeps = {
    analyzer: opts.analyzer,
    fetchPolicy: opts.fetchPolicy,
    topics: settings.topics,
    maxAttempts: opts.maxAttempts ?? 3,
    retryBackoffMs: opts.retryBackoffMs ?? 500,
    workerId: settings.clientId,
    erased: opts.erased,
  };

  const processOne = async (m: KafkaMessage, topic: string, partition: number): Promise<void> => {
    const raw: RawMessage = { topic, partition, offset: m.offset, key: m.key, value: m.value };
    const pub = await handlePhotoMessage(raw, deps);
    // outputs must be on the broker before the offset may move past this message
    if (pub.messages.length > 0) await sendAcked(producer, pub.topic, pub.messages);
    counters.processed++;
    if (pub.outcome === 'dead_letter') {
      counters.deadLetters++;
      log.warn({ photoId: pub.photoId, offset: m.offset, partition }, 'photo sent to the dead-letter topic');
    } else {
      counters.faces += pub.faces ?? 0;
      log.debug({ photoId: pub.photoId, faces: pub.faces }, 'photo analysed');
    }
  };

  const eachBatch = async (p: EachBatchPayload): Promise<void> => {
    const { batch } = p;
    const progress = new BatchProgress(batch.messages.map((m) => m.offset));
    const tasks: Promise<void>[] = [];
    let rebalancing = false;
    const beat = async (): Promise<void> => {
      try {
        await p.heartbeat();
      } catch (err) {
        // a rebalance (or the broker going away): take nothing new from this batch
        rebalancing = true;
        log.info(
          { err: (err as Error).message, partition: batch.partition },
          'heartbeat failed; finishing in-flight work',
        );
      }
    };
    for (let i = 0; i < batch.messages.length; i++) {
      // back-pressure: `maxInFlight` photos run, at most one per partition waits; the next
      // message is only taken when the one waiting has started
      if (queue.size > 0) await queue.onEmpty();
      if (stopping || rebalancing || !p.isRunning() || p.isStale()) break;
      const m = batch.messages[i];
      tasks.push(
        queue.add(async () => {
          await processOne(m, batch.topic, batch.partition);
          const upTo = progress.complete(i);
          if (upTo !== undefined) {
            p.resolveOffset(upTo);
            // commits what is resolved every autoCommitInterval, also inside a long batch
            await p
              .commitOffsetsIfNecessary()
              .catch((err: Error) => log.debug({ err: err.message }, 'periodic commit failed'));
          }
          await beat();
        }),
      );
    }
    await Promise.all(tasks);
    // commit what this batch resolved (also on stop, so a drained worker leaves nothing behind)
    try {
      await p.commitOffsetsIfNecessary(p.uncommittedOffsets());
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'offset commit failed; the messages will be processed again');
    }
  };

  await consumer.run({
    autoCommit: true,
    autoCommitInterval: 2000,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently:
      opts.partitionsConcurrently ?? Math.max(1, Math.min(settings.partitions, maxInFlight)),
    eachBatch,
  });
  log.info(
    {
      group: settings.groups.worker,
      topic: settings.topics.photos,
      maxInFlight,
      clientId: settings.clientId,
    },
    'ingest worker running',
  );

  return {
    stats: () => ({ ...counters }),
    async stop() {
      if (stopping) return;
      stopping = true;
      // consumer.stop waits for the running batches, which drain their in-flight work and commit
      await consumer.stop();
      await queue.onIdle();
      await consumer.disconnect();
      await producer.disconnect();
      log.info(counters, 'ingest worker stopped');
    },
  };
}
