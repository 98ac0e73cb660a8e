/**
 * A `file://` source naming a FIFO under the worker's file root, against a real broker and a real
 * `facepipe worker`: it used to block the worker's read for good (every partition stopped and
 * SIGTERM did nothing). Now it is a dead letter (NOT_A_FILE) at once, the other photos on every
 * partition go through, and SIGTERM drains and exits 0.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetter } from '../../schemas/deadLetter.ts';
import { FACES_TOPIC_TYPE_HEADER } from '../../schemas/photoEvent.ts';
import { kafkaSettings } from '../../pipeline/kafka/config.ts';
import { createKafka, ensureTopics } from '../../pipeline/kafka/client.ts';
import { startBroker, type TestBroker } from '../../devkit/kafkaBroker.ts';
import {
  examplesDir,
  groupPhotoEvents,
  kafkaClient,
  kill9,
  produce,
  readTopic,
  spawnFacepipe,
  terminate,
  topicSize,
  uniquePrefix,
  waitFor,
  type Proc,
} from '../../devkit/kafkaHarness.ts';

const PARTITIONS = 4;
let broker: TestBroker;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-fifo-test-'));
const procs: Proc[] = [];

beforeAll(async () => {
  broker = await startBroker();
});

afterAll(async () => {
  await Promise.all(procs.map((p) => kill9(p)));
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a FIFO named by a photo event', () => {
  it('is dead-lettered as NOT_A_FILE; the other partitions go on; SIGTERM exits 0', async () => {
    const prefix = uniquePrefix('fifo');
    const settings = kafkaSettings('admin', { brokers: broker.brokers, prefix, partitions: PARTITIONS });
    await ensureTopics(createKafka(settings), settings);
    const fifo = path.join(tmp, 'stuck.jpg');
    execFileSync('mkfifo', [fifo]);
    const now = new Date().toISOString();
    // the FIFO several times over (keys on different partitions), between good photos
    const fifoEvents = ['a', 'b', 'c', 'd'].map((s) => ({
      key: `${prefix}fifo-${s}`,
      value: JSON.stringify({
        photoId: `${prefix}fifo-${s}`,
        source: { kind: 'uri', uri: pathToFileURL(fifo).href },
        createdAt: now,
      }),
    }));
    const good = groupPhotoEvents(`${prefix}g-`, 1);
    const kafka = kafkaClient(broker.brokers);
    await produce(kafka, settings.topics.photos, [
      ...fifoEvents,
      ...good.map(({ key, value }) => ({ key, value })),
    ]);
    const worker = spawnFacepipe(
      // a fetch timeout longer than the test: only refusing the FIFO up front lets the test pass
      [
        'worker',
        '--roots',
        `${examplesDir},${tmp}`,
        '--concurrency',
        '2',
        '--threads',
        '1',
        '--fetch-timeout-ms',
        '3600000',
      ],
      {
        KAFKA_BROKERS: broker.brokers,
        FACEPIPE_TOPIC_PREFIX: prefix,
        FACEPIPE_PARTITIONS: String(PARTITIONS),
      },
      path.join(tmp, 'worker.log'),
    );
    procs.push(worker);
    await waitFor(
      'every good photo analysed and every FIFO event dead-lettered',
      async () =>
        (await topicSize(kafka, settings.topics.deadLetters)) >= fifoEvents.length &&
        (await readTopic(kafka, settings.topics.faces)).filter(
          (m) => m.headers?.[FACES_TOPIC_TYPE_HEADER]?.toString() === 'photo',
        ).length >= good.length,
      240_000,
      1000,
    );
    expect(await terminate(worker, 60_000)).toBe(0);

    const letters = (await readTopic(kafka, settings.topics.deadLetters)).map((m) =>
      DeadLetter.parse(JSON.parse(m.value!.toString())),
    );
    // at least once: a rebalance may publish a letter twice, never lose one
    expect(new Set(letters.map((d) => d.original?.key))).toEqual(new Set(fifoEvents.map((e) => e.key)));
    for (const d of letters) {
      expect(d.code).toBe('NOT_A_FILE');
      expect(d.attempts).toBe(1);
    }
    const results = (await readTopic(kafka, settings.topics.faces)).filter(
      (m) => m.headers?.[FACES_TOPIC_TYPE_HEADER]?.toString() === 'photo',
    );
    expect(new Set(results.map((m) => m.key!.toString()))).toEqual(new Set(good.map((g) => g.key)));
  }, 300_000);
});
