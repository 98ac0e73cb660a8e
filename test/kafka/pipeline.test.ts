/**
 * The streaming pipeline against a real Kafka broker (devkit/kafkaBroker.ts; KAFKA_BROKERS to use
 * one already running): `facepipe worker` and `facepipe indexer` run as child processes, photos
 * go in on the photos topic, the store and the identity-events / dead-letter topics are checked.
 * Each test uses its own topics and consumer groups (a unique prefix) and its own data dir.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeadLetter } from '../../schemas/deadLetter.ts';
import { IdentityEvent } from '../../schemas/identityEvent.ts';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { kafkaSettings, type KafkaSettings } from '../../pipeline/kafka/config.ts';
import { createKafka, ensureTopics } from '../../pipeline/kafka/client.ts';
import { StreamState } from '../../pipeline/kafka/streamState.ts';
import { EVENT_SEQ_HEADER } from '../../app/indexer.ts';
import { FACES_TOPIC_TYPE_HEADER } from '../../schemas/photoEvent.ts';
import { freePorts } from '../../devkit/kafkaBroker.ts';
import {
  groupPhotoEvents,
  groupsDir,
  kafkaClient,
  kill9,
  produce,
  readStore,
  readTopic,
  repoRoot,
  examplesDir,
  spawnFacepipe,
  storeCounts,
  terminate,
  topicSize,
  uniquePrefix,
  waitFor,
  type Proc,
} from '../../devkit/kafkaHarness.ts';
import { kafkaTestBed } from './testBed.ts';

const PARTITIONS = 4;
const bed = kafkaTestBed('kafka-test');
const { tmp, procs } = bed;

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
  const settings = kafkaSettings('admin', { brokers: bed.broker.brokers, prefix, partitions: PARTITIONS });
  await ensureTopics(createKafka(settings), settings);
  const dataDir = path.join(tmp, `${name}-data`);
  const env = {
    KAFKA_BROKERS: bed.broker.brokers,
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
      const p = spawnFacepipe(
        ['worker', '--roots', `${examplesDir},${tmp}`, '--concurrency', '4', '--threads', '1', ...extra],
        env,
        log(n),
      );
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

/**
 * Every photo in the store with exactly its expected faces, the photos that became dead letters
 * marked failed without faces, and nothing else.
 */
function expectStoreExact(
  dataDir: string,
  events: { key: string; expectedFaces: number }[],
  failed: string[] = [],
): void {
  const snap = readStore(dataDir);
  const total = events.reduce((s, e) => s + e.expectedFaces, 0);
  expect(snap.counts.photos).toBe(events.length + failed.length);
  expect(snap.counts.faces).toBe(total);
  const withStatus = (status: string) =>
    [...snap.photoStatus]
      .filter(([, st]) => st === status)
      .map(([id]) => id)
      .sort();
  expect(withStatus('done')).toEqual(events.map((e) => e.key).sort());
  expect(withStatus('failed')).toEqual([...failed].sort());
  for (const e of events) expect(snap.facesByPhoto.get(e.key)?.length, e.key).toBe(e.expectedFaces);
}

/**
 * Identity events read from the topic, repeats dropped by their log sequence number (the
 * documented way: the topic is at-least-once), folded into face → identity.
 */
async function foldPublishedEvents(kafka: ReturnType<typeof kafkaClient>, topic: string) {
  const seen = new Set<string>();
  const assignment = new Map<string, string | null>();
  const seeds = new Map<string, number>();
  let count = 0;
  for (const m of await readTopic(kafka, topic)) {
    const seq = m.headers?.[EVENT_SEQ_HEADER]?.toString() ?? '';
    expect(seq).not.toBe('');
    if (seen.has(seq)) continue;
    seen.add(seq);
    count++;
    const e = IdentityEvent.parse(JSON.parse(m.value!.toString()));
    if (e.type === 'face_assigned' && e.faceId) assignment.set(e.faceId, e.identityId);
    if (e.type === 'face_unassigned' && e.faceId) assignment.set(e.faceId, null);
    if (e.type === 'created' && e.faceId) seeds.set(e.faceId, (seeds.get(e.faceId) ?? 0) + 1);
  }
  return { assignment, seeds, count };
}

/**
 * The published events tell the store's story exactly: folding them gives every face the
 * identity it has in the store, and no face seeded two identities (which a replayed assignment
 * would do).
 */
async function expectEventsMatchStore(
  kafka: ReturnType<typeof kafkaClient>,
  topic: string,
  dataDir: string,
): Promise<void> {
  const { assignment, seeds, count } = await foldPublishedEvents(kafka, topic);
  expect(count).toBeGreaterThan(0);
  for (const n of seeds.values()) expect(n).toBe(1);
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
  try {
    const faces = store.faces.listFaces({ kept: true });
    for (const f of faces) expect(assignment.get(f.faceId) ?? null, f.faceId).toBe(f.identityId);
    expect(faces.filter((f) => f.identityId !== null).length).toBeGreaterThan(0);
  } finally {
    store.close();
  }
}

/** The photo events on the run's photos topic (their expected face counts stay with the test). */
async function producePhotos(
  kafka: ReturnType<typeof kafkaClient>,
  run: Run,
  photos: { key: string; value: string }[],
): Promise<void> {
  await produce(
    kafka,
    run.settings.topics.photos,
    photos.map(({ key, value }) => ({ key, value })),
  );
}

/** Waits until the run's store holds this many photos (the indexers may still be committing). */
async function waitAllIndexed(run: Run, photos: number): Promise<void> {
  await waitFor('all photos indexed', () => (storeCounts(run.dataDir)?.photos ?? 0) >= photos, 240_000, 1000);
}

/** The run's dead letters as published. */
async function readDeadLetters(kafka: ReturnType<typeof kafkaClient>, run: Run): Promise<DeadLetter[]> {
  return (await readTopic(kafka, run.settings.topics.deadLetters)).map((m) =>
    DeadLetter.parse(JSON.parse(m.value!.toString())),
  );
}

/** The workers' per-photo results on the faces topic (the face records beside them left out). */
async function readPhotoResults(kafka: ReturnType<typeof kafkaClient>, run: Run) {
  return (await readTopic(kafka, run.settings.topics.faces)).filter(
    (m) => m.headers?.[FACES_TOPIC_TYPE_HEADER]?.toString() === 'photo',
  );
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
    const ev = (photoId: string, uri: string) =>
      JSON.stringify({ photoId, source: { kind: 'uri', uri }, createdAt: now });
    const bad: { key: string; value: string; code: string }[] = [
      { key: 'bad-json', value: '{"photoId": "bad-json", ', code: 'MALFORMED_JSON' },
      {
        key: 'bad-schema',
        value: JSON.stringify({ photoId: 'bad schema', source: { kind: 'uri', uri: 'ftp://h/x.jpg' } }),
        code: 'SCHEMA_INVALID',
      },
      {
        key: 'bad-outside',
        value: ev('bad-outside', pathToFileURL('/etc/hostname').href),
        code: 'FORBIDDEN_URI',
      },
      { key: 'bad-host', value: ev('bad-host', 'http://example.com/a.jpg'), code: 'FORBIDDEN_HOST' },
      {
        key: 'bad-unreachable',
        value: ev('bad-unreachable', `http://127.0.0.1:${closedPort}/a.jpg`),
        code: 'UNREACHABLE',
      },
      { key: 'bad-corrupt', value: ev('bad-corrupt', pathToFileURL(corrupt).href), code: 'CORRUPT_IMAGE' },
      {
        key: 'bad-not-image',
        value: ev('bad-not-image', pathToFileURL(notImage).href),
        code: 'NOT_AN_IMAGE',
      },
    ];
    // bad messages between the good ones, on the same partitions
    const mixed: { key: string; value: string }[] = [];
    good.forEach((g, i) => {
      mixed.push({ key: g.key, value: g.value });
      if (bad[i]) mixed.push({ key: bad[i].key, value: bad[i].value });
    });
    const kafka = kafkaClient(bed.broker.brokers);
    await produce(kafka, run.settings.topics.photos, mixed);

    const worker = run.worker('worker', ['--allow-hosts', `127.0.0.1:${closedPort}`, '--attempts', '2']);
    const indexer = run.indexer('indexer');
    await waitFor(
      'all photos indexed and dead letters recorded',
      () => {
        const c = storeCounts(run.dataDir);
        if (!c || c.photos < good.length + bad.length || !StreamState.exists(run.dataDir)) return false;
        const state = new StreamState(run.dataDir, { readonly: true });
        try {
          return state.deadLetterCounts().total >= bad.length;
        } finally {
          state.close();
        }
      },
      180_000,
      500,
    );

    expect(await terminate(worker)).toBe(0);
    expect(await terminate(indexer)).toBe(0);
    expectStoreExact(
      run.dataDir,
      good,
      bad.map((b) => b.key),
    );

    const status = JSON.parse(
      execFileSync(process.execPath, ['bin/facepipe.mjs', 'status', '--data', run.dataDir, '--json'], {
        cwd: repoRoot,
        encoding: 'utf8',
      }),
    );
    expect(status).toMatchObject({ photos: 10 + bad.length, faces: 46, deadLetters: bad.length });
    expect(status.kept + status.dropped).toBe(46);
    expect(status.identities).toBeGreaterThan(0);

    // dead letters: the right code per message, with the original message inside
    const letters = await readDeadLetters(kafka, run);
    const codeOf = new Map(letters.map((d) => [d.original?.key, d.code]));
    for (const b of bad) expect(codeOf.get(b.key), b.key).toBe(b.code);
    const unreachable = letters.find((d) => d.original?.key === 'bad-unreachable')!;
    expect(unreachable.attempts).toBe(2);
    expect(letters.find((d) => d.original?.key === 'bad-json')!.original?.value).toBe(
      '{"photoId": "bad-json", ',
    );

    // identity events: valid, and folded they give exactly the store's assignment
    await expectEventsMatchStore(kafka, run.settings.topics.identityEvents, run.dataDir);
  }, 300_000);

  it('loses and duplicates nothing when a worker is SIGKILLed mid-stream and restarted', async () => {
    const run = await newRun('wkill');
    const photos = groupPhotoEvents(`${run.prefix}p-`, 8); // 40 photos, 184 faces
    const kafka = kafkaClient(bed.broker.brokers);
    await producePhotos(kafka, run, photos);
    const indexer = run.indexer('indexer');
    const a = run.worker('worker-a');
    const b = run.worker('worker-b');
    // mid-stream: some results are on the faces topic, most photos are not done
    await waitFor(
      'first results on the faces topic',
      async () => (await topicSize(kafka, run.settings.topics.faces)) >= 20,
      120_000,
      200,
    );
    await kill9(a);
    const a2 = run.worker('worker-a2');
    await waitAllIndexed(run, photos.length);
    expect(await terminate(b)).toBe(0);
    expect(await terminate(a2)).toBe(0);
    expect(await terminate(indexer)).toBe(0);
    expectStoreExact(run.dataDir, photos);
    await expectEventsMatchStore(kafka, run.settings.topics.identityEvents, run.dataDir);
    // the killed worker left no gap: every photo's result is on the faces topic (repeats allowed)
    expect(await topicSize(kafka, run.settings.topics.faces)).toBeGreaterThanOrEqual(184 + 40);
  }, 300_000);

  it('loses and duplicates nothing when the indexer is SIGKILLed mid-stream and restarted', async () => {
    const run = await newRun('ikill');
    const photos = groupPhotoEvents(`${run.prefix}p-`, 8);
    const kafka = kafkaClient(bed.broker.brokers);
    await producePhotos(kafka, run, photos);
    const worker = run.worker('worker');
    const i1 = run.indexer('indexer-1');
    await waitFor('some photos indexed', () => (storeCounts(run.dataDir)?.photos ?? 0) >= 3, 180_000, 100);
    await kill9(i1);
    const before = storeCounts(run.dataDir)!;
    expect(before.photos).toBeLessThan(photos.length);
    const i2 = run.indexer('indexer-2');
    await waitAllIndexed(run, photos.length);
    expect(await terminate(worker)).toBe(0);
    expect(await terminate(i2)).toBe(0);
    expectStoreExact(run.dataDir, photos);
    // nothing the killed indexer committed is missing from the topic, nothing was assigned twice
    await expectEventsMatchStore(kafka, run.settings.topics.identityEvents, run.dataDir);
  }, 300_000);

  it('drains on SIGTERM: in-flight photos finish and exactly the finished ones are committed', async () => {
    const run = await newRun('drain');
    const photos = groupPhotoEvents(`${run.prefix}p-`, 4); // 20 photos
    const kafka = kafkaClient(bed.broker.brokers);
    await producePhotos(kafka, run, photos);
    const worker = run.worker('worker');
    await waitFor(
      'the first results',
      async () => (await topicSize(kafka, run.settings.topics.faces)) >= 1,
      120_000,
      100,
    );
    expect(await terminate(worker)).toBe(0);
    expect(worker.log()).toContain('draining in-flight photos');
    const results = await readPhotoResults(kafka, run);
    const admin = kafka.admin();
    await admin.connect();
    const [committed] = await admin.fetchOffsets({
      groupId: run.settings.groups.worker,
      topics: [run.settings.topics.photos],
    });
    await admin.disconnect();
    const committedCount = committed.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
    // stopped mid-stream, with every finished photo committed and nothing unfinished committed
    expect(results.length).toBeGreaterThan(0);
    expect(results.length).toBeLessThan(photos.length);
    expect(committedCount).toBe(results.length);
  }, 300_000);
  it('a file:// source naming a FIFO is dead-lettered as NOT_A_FILE at once; the other partitions go on; SIGTERM exits 0', async () => {
    // it used to block the worker's read for good: every partition stopped, SIGTERM did nothing
    const run = await newRun('fifo');
    const fifo = path.join(tmp, 'stuck.jpg');
    execFileSync('mkfifo', [fifo]);
    const now = new Date().toISOString();
    // the FIFO several times over (keys on different partitions), before good photos
    const fifoEvents = ['a', 'b', 'c', 'd'].map((x) => ({
      key: `${run.prefix}fifo-${x}`,
      value: JSON.stringify({
        photoId: `${run.prefix}fifo-${x}`,
        source: { kind: 'uri', uri: pathToFileURL(fifo).href },
        createdAt: now,
      }),
    }));
    const good = groupPhotoEvents(`${run.prefix}g-`, 1);
    const kafka = kafkaClient(bed.broker.brokers);
    await producePhotos(kafka, run, [...fifoEvents, ...good]);
    // a fetch deadline longer than the test: only refusing the FIFO up front lets it pass
    const worker = run.worker('worker', ['--fetch-timeout-ms', '3600000']);
    await waitFor(
      'every good photo analysed and every FIFO event dead-lettered',
      async () =>
        (await topicSize(kafka, run.settings.topics.deadLetters)) >= fifoEvents.length &&
        (await readPhotoResults(kafka, run)).length >= good.length,
      240_000,
      1000,
    );
    expect(await terminate(worker, 60_000)).toBe(0);
    const letters = await readDeadLetters(kafka, run);
    expect(new Set(letters.map((d) => d.original?.key))).toEqual(new Set(fifoEvents.map((e) => e.key)));
    for (const d of letters) expect([d.code, d.attempts]).toEqual(['NOT_A_FILE', 1]);
    expect(new Set((await readPhotoResults(kafka, run)).map((m) => m.key!.toString()))).toEqual(
      new Set(good.map((g) => g.key)),
    );
  }, 300_000);
});
