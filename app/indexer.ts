/**
 * The indexer: the single writer of one data dir. It consumes the faces topic (FaceRecords and
 * PhotoResults) and the dead-letter topic, writes them to the store through service/ingestStep.ts
 * (store + HNSW, then online identity assignment), then publishes the new
 * entries of the store's identity-event log and only then commits the batch's offsets.
 *
 * Replays change nothing: faces are upserts by id and only faces new to the store are assigned;
 * dead letters are recorded once per original message. Identity events are published from the
 * store's log (an outbox): a crash between the store commit and the publish re-publishes them on
 * restart, so the identity-events topic is at-least-once (each carries its log sequence number in
 * the `facepipe-seq` header for consumers that want to drop repeats).
 */
import type { Batch, EachBatchPayload, Message } from 'kafkajs';
import { FaceRecord } from '../schemas/face.ts';
import { PhotoResult, FACES_TOPIC_TYPE_HEADER } from '../schemas/photoEvent.ts';
import { DeadLetter } from '../schemas/deadLetter.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import { assignNewFaces, recordPhoto, storeFaceRecords, type OnlineAssigner } from '../service/ingestStep.ts';
import { buildDeadLetter, type RawMessage } from '../pipeline/kafka/deadLetters.ts';
import { log } from '../core/log.ts';
import type { KafkaSettings } from '../pipeline/kafka/config.ts';
import { createKafka, createProducer, ensureTopics, sendAcked } from '../pipeline/kafka/client.ts';
import type { StreamState } from '../pipeline/kafka/streamState.ts';

export const EVENT_SEQ_HEADER = 'facepipe-seq';

export interface IndexerOptions {
  settings: KafkaSettings;
  db: FaceDatabase;
  identities: OnlineAssigner;
  state: StreamState;
  /** persist the HNSW index at most this often (it is rebuilt from the store after a crash anyway) */
  checkpointEveryMs?: number;
}

export interface IndexerStats {
  batches: number;
  faces: number;
  photos: number;
  deadLetters: number;
  eventsPublished: number;
}

export interface RunningIndexer {
  stop(): Promise<void>;
  stats(): IndexerStats;
}

/** A batch sorted into what the store needs. */
interface SortedBatch {
  faces: FaceRecord[];
  photos: PhotoResult[];
  deadLetters: DeadLetter[];
}

function headerText(v: Buffer | string | (Buffer | string)[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : one.toString();
}

/** Parses a batch; an unreadable message on the faces topic becomes an indexer dead letter. */
export function sortBatch(
  batch: Pick<Batch, 'topic' | 'partition' | 'messages'>,
  settings: KafkaSettings,
  db: FaceDatabase,
): SortedBatch {
  const out: SortedBatch = { faces: [], photos: [], deadLetters: [] };
  for (const m of batch.messages) {
    const raw: RawMessage = {
      topic: batch.topic,
      partition: batch.partition,
      offset: m.offset,
      key: m.key,
      value: m.value,
    };
    let json: unknown;
    try {
      json = JSON.parse(m.value?.toString('utf8') ?? '');
    } catch (err) {
      out.deadLetters.push(
        buildDeadLetter(raw, {
          stage: 'index',
          code: 'MALFORMED_JSON',
          reason: (err as Error).message,
          attempts: 1,
        }),
      );
      continue;
    }
    if (batch.topic === settings.topics.deadLetters) {
      const d = DeadLetter.safeParse(json);
      if (d.success) out.deadLetters.push(d.data);
      else log.warn({ offset: m.offset }, 'unreadable message on the dead-letter topic; skipped');
      continue;
    }
    const type = headerText(m.headers?.[FACES_TOPIC_TYPE_HEADER]) ?? 'face';
    const parsed = type === 'photo' ? PhotoResult.safeParse(json) : FaceRecord.safeParse(json);
    if (!parsed.success) {
      out.deadLetters.push(
        buildDeadLetter(raw, {
          stage: 'index',
          code: 'SCHEMA_INVALID',
          reason: parsed.error.message,
          attempts: 1,
        }),
      );
      continue;
    }
    if (type === 'photo') {
      out.photos.push(parsed.data as PhotoResult);
      continue;
    }
    const face = parsed.data as FaceRecord;
    if (face.modelId !== db.modelId || face.embedding.length !== db.dim) {
      const reason = `face of model ${face.modelId} (${face.embedding.length}-d) in a store of ${db.modelId} (${db.dim}-d)`;
      out.deadLetters.push(
        buildDeadLetter(raw, {
          stage: 'index',
          code: 'MODEL_MISMATCH',
          reason,
          attempts: 1,
          photoId: face.photoId,
        }),
      );
      continue;
    }
    out.faces.push(face);
  }
  return out;
}

/**
 * Applies a sorted batch to the store: faces (stored, then assigned), then the photos. The ids
 * between the two steps are journalled in the stream state, so a crash in between is finished by
 * `finishPendingAssignment` on restart; every step is idempotent, so a replay changes nothing.
 */
export function applyBatch(
  db: FaceDatabase,
  identities: OnlineAssigner,
  state: StreamState,
  sorted: SortedBatch,
): number {
  const fresh = storeFaceRecords(db, sorted.faces);
  state.setPendingAssignment(fresh);
  const events = assignNewFaces(identities, fresh);
  state.setPendingAssignment([]);
  // a photo's result follows its faces on the topic: record it once they are in
  if (sorted.photos.length > 0) db.transaction(() => sorted.photos.forEach((p) => recordPhoto(db, p)));
  return events.length;
}

/** Assigns faces a crash left stored but unassigned (no-op when the journal is empty). */
export function finishPendingAssignment(identities: OnlineAssigner, state: StreamState): number {
  const pending = state.pendingAssignment();
  if (pending.length === 0) return 0;
  const events = assignNewFaces(identities, pending);
  state.setPendingAssignment([]);
  log.info({ faces: pending.length, events: events.length }, 'finished the assignment a crash interrupted');
  return pending.length;
}

export async function startIndexer(opts: IndexerOptions): Promise<RunningIndexer> {
  const { settings, db, identities, state } = opts;
  const kafka = createKafka(settings);
  await ensureTopics(kafka, settings);
  const producer = createProducer(kafka);
  await producer.connect();
  const consumer = kafka.consumer({
    groupId: settings.groups.indexer,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: Math.max(1000, Math.floor(settings.sessionTimeoutMs / 10)),
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 10 },
  });
  await consumer.connect();
  await consumer.subscribe({
    topics: [settings.topics.faces, settings.topics.deadLetters],
    fromBeginning: true,
  });

  const stats: IndexerStats = { batches: 0, faces: 0, photos: 0, deadLetters: 0, eventsPublished: 0 };
  const checkpointEveryMs = opts.checkpointEveryMs ?? 30_000;
  let lastCheckpoint = Date.now();
  // the first checkpoint with faces is written at once: a data dir whose only checkpoint is the
  // empty one of its creation is then never the one a restart after a crash starts from
  let checkpointedFaces = db.size() > 0;
  let stopping = false;

  /** Publishes the store's identity events not yet on the topic (the outbox). */
  const publishEvents = async (): Promise<void> => {
    const pending = db.listIdentityEvents(state.publishedEventSeq());
    if (pending.length === 0) return;
    const messages: Message[] = pending.map((e) => ({
      key: String(e.event.identityId ?? ''),
      value: JSON.stringify(e.event),
      headers: { [EVENT_SEQ_HEADER]: String(e.seq) },
    }));
    await sendAcked(producer, settings.topics.identityEvents, messages);
    state.setPublishedEventSeq(pending[pending.length - 1].seq);
    stats.eventsPublished += pending.length;
  };

  const eachBatch = async (p: EachBatchPayload): Promise<void> => {
    const { batch } = p;
    if (batch.messages.length === 0) return;
    const sorted = sortBatch(batch, settings, db);
    applyBatch(db, identities, state, sorted);
    if (sorted.deadLetters.length > 0) {
      // our own dead letters (from the faces topic) go on the topic too, so every consumer sees them
      const own = sorted.deadLetters.filter((d) => d.stage === 'index');
      if (own.length > 0) {
        await sendAcked(
          producer,
          settings.topics.deadLetters,
          own.map((d) => ({ key: d.photoId ?? d.id, value: JSON.stringify(d) })),
        );
      }
      stats.deadLetters += state.recordDeadLetters(sorted.deadLetters);
    }
    stats.batches++;
    stats.faces += sorted.faces.length;
    stats.photos += sorted.photos.length;
    await publishEvents();
    if (Date.now() - lastCheckpoint > checkpointEveryMs || (!checkpointedFaces && db.size() > 0)) {
      checkpointedFaces = true;
      db.checkpoint();
      lastCheckpoint = Date.now();
    }
    // the store has the batch: only now may the offsets move
    p.resolveOffset(batch.lastOffset());
    await p.commitOffsetsIfNecessary(p.uncommittedOffsets());
    await p.heartbeat().catch(() => {});
  };

  // work a crash interrupted: the assignment step, then events not yet published
  finishPendingAssignment(identities, state);
  await publishEvents();
  await consumer.run({
    autoCommit: true,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 1,
    eachBatch,
  });
  log.info(
    {
      group: settings.groups.indexer,
      topics: [settings.topics.faces, settings.topics.deadLetters],
      data: db.dataDir,
    },
    'indexer running',
  );

  return {
    stats: () => ({ ...stats }),
    async stop() {
      if (stopping) return;
      stopping = true;
      await consumer.stop();
      await consumer.disconnect();
      await publishEvents().catch((err: Error) =>
        log.warn({ err: err.message }, 'identity events left for the next start'),
      );
      await producer.disconnect();
      db.checkpoint();
      log.info(stats, 'indexer stopped');
    },
  };
}
