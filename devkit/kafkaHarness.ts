/**
 * Helpers for the Kafka integration tests: real `facepipe` child processes, producing and reading
 * topics with kafkajs, and reading the store the indexer wrote (read-only, through the store's own
 * class). Nothing here stands in for a pipeline component.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { FaceStore, STORE_FILE } from '../indexers/store.ts';
import { createProducer } from '../pipeline/kafka/client.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** the bundled sample photos: the worker's file root in these tests */
export const examplesDir = path.join(repoRoot, 'examples');
export const groupsDir = path.join(examplesDir, 'faceapi-groups');

/** Faces per group photo at the detector's manifest settings (fixtures README: tolerance 0). */
export const FACES_PER_GROUP_PHOTO: Record<string, number> = { bbt1: 4, bbt2: 3, bbt3: 5, bbt4: 6, bbt5: 5 };
export const GROUP_PHOTOS = Object.keys(FACES_PER_GROUP_PHOTO);

/** A unique prefix for the topics and groups of one test. */
export const uniquePrefix = (name: string): string => `${name}-${randomBytes(3).toString('hex')}-`;

export interface Proc {
  child: ChildProcess;
  logFile: string;
  /** exit code (or the signal name) once it exited */
  exited: Promise<number | string>;
  log(): string;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Runs `node bin/facepipe.mjs <args>` with its stdout+stderr going to `logFile`. */
export function spawnFacepipe(args: string[], env: Record<string, string>, logFile: string): Proc {
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/facepipe.mjs'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, FACEPIPE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  running.add(child);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? -1);
    });
  });
  return { child, logFile, exited, log: () => readFileSync(logFile, 'utf8') };
}

/** SIGTERM, then the exit code (SIGKILL after `graceMs`). */
export async function terminate(p: Proc, graceMs = 60_000): Promise<number | string> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

export async function kill9(p: Proc): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 120_000,
  everyMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
  );
}

export function kafkaClient(brokers: string): Kafka {
  return new Kafka({ brokers: brokers.split(','), clientId: 'facepipe-test', logLevel: logLevel.NOTHING });
}

export function photoEventFor(photoId: string, file: string): string {
  return JSON.stringify({
    photoId,
    source: { kind: 'uri', uri: pathToFileURL(file).href },
    createdAt: new Date().toISOString(),
  });
}

/** `copies` copies of the five group photos, each under its own photo id. */
export function groupPhotoEvents(
  prefix: string,
  copies: number,
): { key: string; value: string; expectedFaces: number }[] {
  const out: { key: string; value: string; expectedFaces: number }[] = [];
  for (let c = 0; c < copies; c++) {
    for (const name of GROUP_PHOTOS) {
      const id = `${prefix}${name}-${c}`;
      out.push({
        key: id,
        value: photoEventFor(id, path.join(groupsDir, `${name}.jpg`)),
        expectedFaces: FACES_PER_GROUP_PHOTO[name],
      });
    }
  }
  return out;
}

export async function produce(
  kafka: Kafka,
  topic: string,
  messages: { key: string | null; value: string | Buffer }[],
): Promise<void> {
  // the product's idempotent producer: a send retried after a slow acknowledgement (a loaded
  // machine) must not put a message on the topic twice, or a test would count it twice
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

/** Messages on a topic (all partitions), counted from the offsets: cheap, for polling. */
export async function topicSize(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs = await admin.fetchTopicOffsets(topic);
    return offs.reduce((s, o) => s + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Every message currently on `topic`, read by a throw-away consumer group. */
export async function readTopic(kafka: Kafka, topic: string): Promise<KafkaMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map(
    ends.filter((e) => Number(e.high) > Number(e.low)).map((e) => [e.partition, Number(e.high)]),
  );
  const got: KafkaMessage[] = [];
  if (remaining.size === 0) return got;
  const consumer = kafka.consumer({ groupId: `facepipe-test-reader-${randomBytes(4).toString('hex')}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const end = remaining.get(partition);
        if (end === undefined || Number(message.offset) >= end) return;
        got.push(message);
        if (Number(message.offset) === end - 1) remaining.delete(partition);
        if (remaining.size === 0) resolve();
      },
    });
  });
  await Promise.race([
    done,
    new Promise((_, rej) => setTimeout(() => rej(new Error(`reading ${topic} timed out`)), 60_000)),
  ]);
  await consumer.disconnect();
  return got;
}

export interface StoreSnapshot {
  counts: { photos: number; faces: number; kept: number; dropped: number; identities: number };
  facesByPhoto: Map<string, string[]>;
  photoIds: string[];
  /** photo id → status (`done`, or `failed` for a photo that became a dead letter) */
  photoStatus: Map<string, string>;
  /** kept faces with no identity */
  unassignedKept: number;
}

/** What the indexer has committed to the store (read-only; safe while it runs). */
export function readStore(dataDir: string): StoreSnapshot {
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
  try {
    const faces = store.faces.listFaces();
    const facesByPhoto = new Map<string, string[]>();
    for (const f of faces) facesByPhoto.set(f.photoId, [...(facesByPhoto.get(f.photoId) ?? []), f.faceId]);
    return {
      counts: store.counts(),
      facesByPhoto,
      photoIds: store.photos.listPhotos().map((p) => p.photoId),
      photoStatus: new Map(store.photos.listPhotos().map((p) => [p.photoId, p.status])),
      unassignedKept: faces.filter((f) => f.kept && f.identityId === null).length,
    };
  } finally {
    store.close();
  }
}

/** Store counts, or undefined while the indexer has not created the store yet. */
export function storeCounts(dataDir: string): StoreSnapshot['counts'] | undefined {
  try {
    const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
    try {
      return store.counts();
    } finally {
      store.close();
    }
  } catch {
    return undefined;
  }
}
