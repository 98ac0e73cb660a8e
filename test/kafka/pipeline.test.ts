/**
 * The streaming pipeline against a real Kafka broker (test/kafka/broker.ts; KAFKA_BROKERS to use
 * one already running): `facepipe worker` and `facepipe indexer` run as child processes, photos
 * go in on the photos topic, the store and the identity-events / dead-letter topics are checked.
 * Each test uses its own topics and consumer groups (a unique prefix) and its own data dir.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetter } from '../../schemas/deadLetter.ts';
import { IdentityEvent } from '../../schemas/identityEvent.ts';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { kafkaSettings, type KafkaSettings } from '../../pipeline/kafka/config.ts';
import { createKafka, ensureTopics } from '../../pipeline/kafka/client.ts';
import { StreamState } from '../../pipeline/kafka/streamState.ts';
import { startBroker, freePorts, type TestBroker } from './broker.ts';
import {
  groupPhotoEvents,
  groupsDir,
  kafkaClient,
  kill9,
  produce,
  readStore,
  readTopic,
  repoRoot,
  sharedDir,
  spawnFacepipe,
  storeCounts,
  terminate,
  topicSize,
  uniquePrefix,
  waitFor,
  type Proc,
} from './harness.ts';

const PARTITIONS = 4;
let broker: TestBroker;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-kafka-test-'));
const procs: Proc[] = [];

beforeAll(async () => {
  broker = await startBroker();
});

afterAll(async () => {
  await Promise.all(procs.map((p) => kill9(p)));
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  prefix: string;
  settings: KafkaSettings;
  env: Record<string, string>;
  dataDir: string;
  worker(name: string, extra?: string[]): Proc;
  indexer(name: string): Proc;
}

/** Topics created up front (as an operator would), so photos can be produced before any worker. */
async function newRun(name: string): Promise<Run> {
  const prefix = uniquePrefix(name);
  const settings = kafkaSettings('admin', { brokers: broker.brokers, prefix, partitions: PARTITIONS });
  await ensureTopics(createKafka(settings), settings);
  const dataDir = path.join(tmp, `${name}-data`);
  const env = {
    KAFKA_BROKERS: broker.brokers,
    FACEPIPE_TOPIC_PREFIX: prefix,
    FACEPIPE_PARTITIONS: String(PARTITIONS),
    // a killed worker's partitions move to the others after this long (the broker's minimum)
    FACEPIPE_SESSION_TIMEOUT_MS: '6000',
  };
  const log = (n: string) => path.join(tmp, `${name}-${n}.log`);
  return {
    prefix,
    settings,
    env,
    dataDir,
    worker: (n, extra = []) => {
      const p = spawnFacepipe(['worker', '--roots', `${sharedDir},${tmp}`, '--concurrency', '4', '--threads', '1', ...extra], env, log(n));
      procs.push(p);
      return p;
    },
    indexer: (n) => {
      const p = spawnFacepipe(['indexer', '--data', dataDir, '--checkpoint-ms', '2000'], env, log(n));
      procs.push(p);
      return p;
    },
  };
}

/** Every photo in the store with exactly its expected faces, and nothing else. */
function expectStoreExact(dataDir: string, events: { key: string; expectedFaces: number }[]): void {
  const snap = readStore(dataDir);
  const total = events.reduce((s, e) => s + e.expectedFaces, 0);
  expect(snap.counts.photos).toBe(events.length);
  expect(snap.counts.faces).toBe(total);
  expect(snap.photoIds.sort()).toEqual(events.map((e) => e.key).sort());
  for (const e of events) expect(snap.facesByPhoto.get(e.key)?.length, e.key).toBe(e.expectedFaces);
}

/** The store's identity-event log assigns each face at most once, even across replays. */
function assignmentsPerFace(dataDir: string): Map<string, number> {
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
  try {
    const perFace = new Map<string, number>();
    for (const { event } of store.listIdentityEvents(0)) {
      const e = IdentityEvent.parse(event);
      if ((e.type === 'created' || e.type === 'face_assigned') && e.faceId) perFace.set(e.faceId, (perFace.get(e.faceId) ?? 0) + 1);
    }
    return perFace;
  } finally {
    store.close();
  }
}

describe('streaming pipeline on a real Kafka broker', () => {
  it('stores every face exactly once, publishes identity events, dead-letters bad input with its code', async () => {
    const run = await newRun('flow');
    const good = groupPhotoEvents(`${run.prefix}g-`, 2); // 10 photos, 46 faces
    const corrupt = path.join(tmp, 'corrupt.jpg');
    writeFileSync(corrupt, readFileSync(path.join(groupsDir, 'bbt1.jpg')).subarray(0, 200));
    const notImage = path.join(tmp, 'not-an-image.jpg');
    writeFileSync(notImage, 'this is text, not a photo');
    const [closedPort] = await freePorts(1);
    const now = new Date().toISOString();
    const ev = (photoId: string, uri: string) => JSON.stringify({ photoId, source: { kind: 'uri', uri }, createdAt: now });
    const bad: { key: string; value: string; code: string }[] = [
      { key: 'bad-json', value: '{"photoId": "bad-json", ', code: 'MALFORMED_JSON' },
      { key: 'bad-schema', value: JSON.stringify({ photoId: 'bad schema', source: { kind: 'uri', uri: 'ftp://h/x.jpg' } }), code: 'SCHEMA_INVALID' },
      { key: 'bad-outside', value: ev('bad-outside', pathToFileURL('/etc/hostname').href), code: 'FORBIDDEN_URI' },
      { key: 'bad-host', value: ev('bad-host', 'http://example.com/a.jpg'), code: 'FORBIDDEN_HOST' },
      { key: 'bad-unreachable', value: ev('bad-unreachable', `http://127.0.0.1:${closedPort}/a.jpg`), code: 'UNREACHABLE' },
      { key: 'bad-corrupt', value: ev('bad-corrupt', pathToFileURL(corrupt).href), code: 'CORRUPT_IMAGE' },
      { key: 'bad-not-image', value: ev('bad-not-image', pathToFileURL(notImage).href), code: 'NOT_AN_IMAGE' },
    ];
    // bad messages between the good ones, on the same partitions
    const mixed: { key: string; value: string }[] = [];
    good.forEach((g, i) => {
      mixed.push({ key: g.key, value: g.value });
      if (bad[i]) mixed.push({ key: bad[i].key, value: bad[i].value });
    });
    const kafka = kafkaClient(broker.brokers);
    await produce(kafka, run.settings.topics.photos, mixed);

    const worker = run.worker('worker', ['--allow-hosts', `127.0.0.1:${closedPort}`, '--attempts', '2']);
    const indexer = run.indexer('indexer');
    await waitFor('all photos indexed and dead letters recorded', () => {
      const c = storeCounts(run.dataDir);
      if (!c || c.photos < good.length || !StreamState.exists(run.dataDir)) return false;
      const state = new StreamState(run.dataDir, { readonly: true });
      try {
        return state.deadLetterCounts().total >= bad.length;
      } finally {
        state.close();
      }
    }, 180_000, 500);

    expect(await terminate(worker)).toBe(0);
    expect(await terminate(indexer)).toBe(0);
    expectStoreExact(run.dataDir, good);

    const status = JSON.parse(execFileSync(process.execPath, ['bin/facepipe.mjs', 'status', '--data', run.dataDir, '--json'], { cwd: repoRoot, encoding: 'utf8' }));
    expect(status).toMatchObject({ photos: 10, faces: 46, deadLetters: bad.length });
    expect(status.kept + status.dropped).toBe(46);
    expect(status.identities).toBeGreaterThan(0);

    // dead letters: the right code per message, with the original message inside
    const letters = (await readTopic(kafka, run.settings.topics.deadLetters)).map((m) => DeadLetter.parse(JSON.parse(m.value!.toString())));
    const codeOf = new Map(letters.map((d) => [d.original.key, d.code]));
    for (const b of bad) expect(codeOf.get(b.key), b.key).toBe(b.code);
    const unreachable = letters.find((d) => d.original.key === 'bad-unreachable')!;
    expect(unreachable.attempts).toBe(2);
    expect(letters.find((d) => d.original.key === 'bad-json')!.original.value).toBe('{"photoId": "bad-json", ');

    // identity events: valid, and they cover exactly the faces the store assigned
    const events = (await readTopic(kafka, run.settings.topics.identityEvents)).map((m) => IdentityEvent.parse(JSON.parse(m.value!.toString())));
    expect(events.length).toBeGreaterThan(0);
    const snap = readStore(run.dataDir);
    const assigned = new Set(events.filter((e) => e.type === 'created' || e.type === 'face_assigned').map((e) => e.faceId));
    expect(assigned.size).toBe(snap.counts.kept - snap.unassignedKept);
    for (const n of assignmentsPerFace(run.dataDir).values()) expect(n).toBe(1);
  });

  it('loses and duplicates nothing when a worker is SIGKILLed mid-stream and restarted', async () => {
    const run = await newRun('wkill');
    const photos = groupPhotoEvents(`${run.prefix}p-`, 8); // 40 photos, 184 faces
    const kafka = kafkaClient(broker.brokers);
    await produce(kafka, run.settings.topics.photos, photos.map(({ key, value }) => ({ key, value })));
    const indexer = run.indexer('indexer');
    const a = run.worker('worker-a');
    const b = run.worker('worker-b');
    // mid-stream: some results are on the faces topic, most photos are not done
    await waitFor('first results on the faces topic', async () => (await topicSize(kafka, run.settings.topics.faces)) >= 20, 120_000, 200);
    await kill9(a);
    const a2 = run.worker('worker-a2');
    await waitFor('all photos indexed', () => (storeCounts(run.dataDir)?.photos ?? 0) >= photos.length, 240_000, 1000);
    expect(await terminate(b)).toBe(0);
    expect(await terminate(a2)).toBe(0);
    expect(await terminate(indexer)).toBe(0);
    expectStoreExact(run.dataDir, photos);
    for (const n of assignmentsPerFace(run.dataDir).values()) expect(n).toBe(1);
    // the killed worker left no gap: every photo's result is on the faces topic (repeats allowed)
    expect(await topicSize(kafka, run.settings.topics.faces)).toBeGreaterThanOrEqual(184 + 40);
  });

  it('loses and duplicates nothing when the indexer is SIGKILLed mid-stream and restarted', async () => {
    const run = await newRun('ikill');
    const photos = groupPhotoEvents(`${run.prefix}p-`, 8);
    const kafka = kafkaClient(broker.brokers);
    await produce(kafka, run.settings.topics.photos, photos.map(({ key, value }) => ({ key, value })));
    const worker = run.worker('worker');
    const i1 = run.indexer('indexer-1');
    await waitFor('some photos indexed', () => (storeCounts(run.dataDir)?.photos ?? 0) >= 3, 180_000, 100);
    await kill9(i1);
    const before = storeCounts(run.dataDir)!;
    expect(before.photos).toBeLessThan(photos.length);
    const i2 = run.indexer('indexer-2');
    await waitFor('all photos indexed', () => (storeCounts(run.dataDir)?.photos ?? 0) >= photos.length, 240_000, 1000);
    expect(await terminate(worker)).toBe(0);
    expect(await terminate(i2)).toBe(0);
    expectStoreExact(run.dataDir, photos);
    const perFace = assignmentsPerFace(run.dataDir);
    for (const n of perFace.values()) expect(n).toBe(1);
    // every assignment in the store reached the identity-events topic (at least once)
    const events = (await readTopic(kafka, run.settings.topics.identityEvents)).map((m) => IdentityEvent.parse(JSON.parse(m.value!.toString())));
    const published = new Set(events.filter((e) => e.faceId).map((e) => e.faceId));
    for (const faceId of perFace.keys()) expect(published.has(faceId), faceId).toBe(true);
  });
});
