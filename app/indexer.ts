/**
 * The indexer: the single writer of one data dir. It consumes the faces topic (FaceRecords, then
 * the PhotoResult that closes each photo) and the dead-letter topic, and hands each complete photo
 * to the ingest step (service/ingestStep.ts: replace the photo's faces, index, assign, thumbnails,
 * photo row) and each dead letter to the same step's failure path; then it publishes the new
 * entries of the store's identity-event log and only then commits offsets.
 *
 * A photo's records sit on one partition (key = photoId) in order, faces first. Faces wait in
 * memory until their PhotoResult arrives; the committed offset never passes the first face of a
 * photo still waiting, so a crash re-delivers it. Replays change nothing: faces are upserts by id
 * and a photo already done with the same content assigns only faces new to the store; dead letters
 * are recorded once per original message. Identity events are published from the store's log (an
 * outbox): a crash between the store commit and the publish re-publishes them on restart, so the
 * identity-events topic is at-least-once (each carries its log sequence number in the
 * `facepipe-seq` header for consumers that want to drop repeats).
 */
import type { Batch, EachBatchPayload, Message } from 'kafkajs';
import { FaceRecord } from '../schemas/face.ts';
import { PhotoResult, FACES_TOPIC_TYPE_HEADER } from '../schemas/photoEvent.ts';
import { DeadLetter } from '../schemas/deadLetter.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import {
  ingestFailure,
  ingestPhoto,
  type IdentityAssigner,
  type IngestTarget,
} from '../service/ingestStep.ts';
import { buildDeadLetter, type RawMessage } from '../pipeline/kafka/deadLetters.ts';
import { log } from '../core/log.ts';
import type { KafkaSettings } from '../pipeline/kafka/config.ts';
import { createKafka, createProducer, ensureTopics, sendAcked } from '../pipeline/kafka/client.ts';
import type { StreamState } from '../pipeline/kafka/streamState.ts';

export const EVENT_SEQ_HEADER = 'facepipe-seq';

export interface IndexerOptions {
  settings: KafkaSettings;
  db: FaceDatabase;
  identities: IdentityAssigner;
  state: StreamState;
  /** persist the HNSW index at most this often (it is rebuilt from the store after a crash anyway) */
  checkpointEveryMs?: number;
}

export interface IndexerStats {
  batches: number;
  faces: number;
  photos: number;
  deadLetters: number;
  /** photos a user erased while their faces were on the topic: not indexed */
  erased: number;
  eventsPublished: number;
}

export interface RunningIndexer {
  stop(): Promise<void>;
  stats(): IndexerStats;
}

/** One message of a batch, parsed: what the ingest step gets from it. */
export type IndexerItem =
  | { kind: 'face'; offset: string; face: FaceRecord }
  | { kind: 'photo'; offset: string; photo: PhotoResult }
  | { kind: 'dead_letter'; offset: string; deadLetter: DeadLetter };

function headerText(v: Buffer | string | (Buffer | string)[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : one.toString();
}

/** Parses a batch in order; an unreadable message on the faces topic becomes an indexer dead letter. */
export function parseBatch(
  batch: Pick<Batch, 'topic' | 'partition' | 'messages'>,
  settings: KafkaSettings,
  db: Pick<FaceDatabase, 'modelId' | 'dim'>,
): IndexerItem[] {
  const out: IndexerItem[] = [];
  for (const m of batch.messages) {
    const raw: RawMessage = {
      topic: batch.topic,
      partition: batch.partition,
      offset: m.offset,
      key: m.key,
      value: m.value,
    };
    const dead = (code: string, reason: string, photoId?: string): void => {
      const deadLetter = buildDeadLetter(raw, { stage: 'index', code, reason, attempts: 1, photoId });
      out.push({ kind: 'dead_letter', offset: m.offset, deadLetter });
    };
    let json: unknown;
    try {
      json = JSON.parse(m.value?.toString('utf8') ?? '');
    } catch (err) {
      dead('MALFORMED_JSON', (err as Error).message);
      continue;
    }
    if (batch.topic === settings.topics.deadLetters) {
      const d = DeadLetter.safeParse(json);
      if (d.success) out.push({ kind: 'dead_letter', offset: m.offset, deadLetter: d.data });
      else log.warn({ offset: m.offset }, 'unreadable message on the dead-letter topic; skipped');
      continue;
    }
    const type = headerText(m.headers?.[FACES_TOPIC_TYPE_HEADER]) ?? 'face';
    const parsed = type === 'photo' ? PhotoResult.safeParse(json) : FaceRecord.safeParse(json);
    if (!parsed.success) {
      dead('SCHEMA_INVALID', parsed.error.message);
      continue;
    }
    if (type === 'photo') {
      out.push({ kind: 'photo', offset: m.offset, photo: parsed.data as PhotoResult });
      continue;
    }
    const face = parsed.data as FaceRecord;
    if (face.modelId !== db.modelId || face.embedding.length !== db.dim) {
      const reason = `face of model ${face.modelId} (${face.embedding.length}-d) in a store of ${db.modelId} (${db.dim}-d)`;
      dead('MODEL_MISMATCH', reason, face.photoId);
      continue;
    }
    out.push({ kind: 'face', offset: m.offset, face });
  }
  return out;
}

/**
 * Faces waiting for their photo's PhotoResult, per partition of the faces topic, with the offset of
 * the first one: the resolved (fetched-from and committed) offset of a partition stays below it, so
 * kafkajs may deliver those faces again; they are kept by face id, so that changes nothing.
 */
export class WaitingPhotos {
  private readonly byPartition = new Map<
    number,
    Map<string, { first: bigint; faces: Map<string, FaceRecord> }>
  >();

  add(partition: number, offset: string, face: FaceRecord): void {
    let photos = this.byPartition.get(partition);
    if (!photos) this.byPartition.set(partition, (photos = new Map()));
    const waiting = photos.get(face.photoId);
    if (waiting) {
      waiting.faces.set(face.faceId, face);
      if (BigInt(offset) < waiting.first) waiting.first = BigInt(offset);
    } else photos.set(face.photoId, { first: BigInt(offset), faces: new Map([[face.faceId, face]]) });
  }

  take(partition: number, photoId: string): FaceRecord[] {
    const photos = this.byPartition.get(partition);
    const waiting = photos?.get(photoId);
    photos?.delete(photoId);
    return waiting ? [...waiting.faces.values()] : [];
  }

  /** The highest offset of `partition` that may be committed, given the batch's last one. */
  resolvable(partition: number, lastOffset: string): string | undefined {
    const photos = this.byPartition.get(partition);
    if (!photos || photos.size === 0) return lastOffset;
    let first: bigint | undefined;
    for (const w of photos.values()) if (first === undefined || w.first < first) first = w.first;
    const upTo = first! - 1n;
    return upTo < 0n ? undefined : String(upTo);
  }
}

/**
 * A user may erase a photo while its faces are on the topic (the worker checked before it
 * published, the erasure came after): the indexer checks the tombstones again, by id, path or
 * content, so an erased photo's faces never come back into the store.
 */
function erasedMeanwhile(target: IngestTarget, photo: PhotoResult): boolean {
  const { photoId, uri, contentHash } = photo;
  const tombstone = target.db.people.erased({ photoId, uri, contentHash });
  if (tombstone)
    log.info({ photoId, erasedAt: tombstone.erasedAt }, 'photo erased by a user: its faces are not indexed');
  return tombstone !== undefined;
}

/**
 * Hands a parsed batch to the ingest step in order: faces wait for their photo, a PhotoResult
 * ingests the photo with them, a dead letter goes to the failure path.
 */
export function applyItems(
  target: IngestTarget,
  waiting: WaitingPhotos,
  partition: number,
  items: IndexerItem[],
): { photos: number; faces: number; deadLetters: number; erased: number } {
  const counts = { photos: 0, faces: 0, deadLetters: 0, erased: 0 };
  for (const item of items) {
    if (item.kind === 'face') {
      waiting.add(partition, item.offset, item.face);
      counts.faces++;
    } else if (item.kind === 'photo') {
      const faces = waiting.take(partition, item.photo.photoId);
      if (erasedMeanwhile(target, item.photo)) counts.erased++;
      else {
        ingestPhoto(target, { photo: item.photo, faces });
        counts.photos++;
      }
    } else if (ingestFailure(target, item.deadLetter)) counts.deadLetters++;
  }
  return counts;
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

  const target: IngestTarget = {
    db,
    identities,
    dataDir: db.dataDir,
    deadLetters: { record: (d) => state.recordDeadLetters([d]) > 0 },
  };
  const waiting = new WaitingPhotos();
  const stats: IndexerStats = {
    batches: 0,
    faces: 0,
    photos: 0,
    deadLetters: 0,
    erased: 0,
    eventsPublished: 0,
  };
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
    const items = parseBatch(batch, settings, db);
    if (batch.topic === settings.topics.faces) {
      // our own dead letters (unreadable messages of the faces topic) go on the topic too, so
      // every consumer sees them; they are recorded when they come back from it
      const own = items.flatMap((i) => (i.kind === 'dead_letter' ? [i.deadLetter] : []));
      if (own.length > 0)
        await sendAcked(
          producer,
          settings.topics.deadLetters,
          own.map((d) => ({ key: d.photoId ?? d.id, value: JSON.stringify(d) })),
        );
    }
    const applied = applyItems(
      target,
      waiting,
      batch.partition,
      items.filter((i) => batch.topic !== settings.topics.faces || i.kind !== 'dead_letter'),
    );
    stats.batches++;
    stats.faces += applied.faces;
    stats.photos += applied.photos;
    stats.deadLetters += applied.deadLetters;
    stats.erased += applied.erased;
    await publishEvents();
    if (Date.now() - lastCheckpoint > checkpointEveryMs || (!checkpointedFaces && db.size() > 0)) {
      checkpointedFaces = true;
      db.checkpoint();
      lastCheckpoint = Date.now();
    }
    // the store has the batch: only now may the offsets move
    const upTo =
      batch.topic === settings.topics.faces
        ? waiting.resolvable(batch.partition, batch.lastOffset())
        : batch.lastOffset();
    if (upTo !== undefined) p.resolveOffset(upTo);
    await p.commitOffsetsIfNecessary(p.uncommittedOffsets());
    await p.heartbeat().catch(() => {});
  };

  // events a crash left unpublished
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
