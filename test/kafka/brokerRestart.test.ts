/**
 * The broker stopped and started again (same ports, same data) in the middle of a run: workers
 * and the indexer reconnect on their own and finish, losing and duplicating nothing. This test
 * always starts its own local broker (it must stop it), even when KAFKA_BROKERS is set.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kafkaSettings } from '../../pipeline/kafka/config.ts';
import { createKafka, ensureTopics } from '../../pipeline/kafka/client.ts';
import {
  FACES_PER_GROUP_PHOTO,
  GROUP_PHOTOS,
  groupPhotoEvents,
  groupsDir,
  repoRoot,
  kafkaClient,
  produce,
  readStore,
  examplesDir,
  spawnFacepipe,
  storeCounts,
  terminate,
  uniquePrefix,
  waitFor,
} from '../../devkit/kafkaHarness.ts';
import { kafkaTestBed } from './testBed.ts';

const bed = kafkaTestBed('kafka-restart', { forceLocal: true });
const { tmp, procs } = bed;

describe('broker restart (and `facepipe publish`)', () => {
  it('workers and the indexer reconnect after the broker comes back and finish the run', async () => {
    const prefix = uniquePrefix('restart');
    const settings = kafkaSettings('admin', { brokers: bed.broker.brokers, prefix, partitions: 2 });
    await ensureTopics(createKafka(settings), settings);
    const env = {
      KAFKA_BROKERS: bed.broker.brokers,
      FACEPIPE_TOPIC_PREFIX: prefix,
      FACEPIPE_SESSION_TIMEOUT_MS: '10000',
    };
    // `facepipe publish`: one event per image file, file:// URIs, ids printed as JSON lines
    const published = execFileSync(
      process.execPath,
      ['bin/facepipe.mjs', 'publish', groupsDir, '--id-prefix', `${prefix}cli-`],
      { cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { photoId: string; uri: string });
    expect(published).toHaveLength(GROUP_PHOTOS.length);
    const photos = [
      ...published.map((p) => ({
        key: p.photoId,
        value: '',
        expectedFaces: FACES_PER_GROUP_PHOTO[path.basename(p.uri, '.jpg')],
      })),
      ...groupPhotoEvents(`${prefix}p-`, 6),
    ]; // 35 photos, 161 faces
    await produce(
      kafkaClient(bed.broker.brokers),
      settings.topics.photos,
      photos.filter((p) => p.value !== '').map(({ key, value }) => ({ key, value })),
    );

    const dataDir = path.join(tmp, 'data');
    const worker = spawnFacepipe(
      ['worker', '--roots', examplesDir, '--concurrency', '2', '--threads', '1'],
      env,
      path.join(tmp, 'worker.log'),
    );
    const indexer = spawnFacepipe(['indexer', '--data', dataDir], env, path.join(tmp, 'indexer.log'));
    procs.push(worker, indexer);

    await waitFor('the first photos indexed', () => (storeCounts(dataDir)?.photos ?? 0) >= 2, 180_000, 100);
    await bed.broker.halt();
    const during = storeCounts(dataDir)!.photos;
    expect(during).toBeLessThan(photos.length);
    await new Promise((r) => setTimeout(r, 3000));
    await bed.broker.resume();

    await waitFor(
      'all photos indexed after the restart',
      () => (storeCounts(dataDir)?.photos ?? 0) >= photos.length,
      300_000,
      1000,
    );
    expect(await terminate(worker)).toBe(0);
    expect(await terminate(indexer)).toBe(0);
    const snap = readStore(dataDir);
    expect(snap.counts.photos).toBe(photos.length);
    expect(snap.counts.faces).toBe(photos.reduce((s, p) => s + p.expectedFaces, 0));
    for (const p of photos) expect(snap.facesByPhoto.get(p.key)?.length, p.key).toBe(p.expectedFaces);
    // both processes were alive through the outage (they reconnected, nobody restarted them)
    expect(worker.log()).not.toMatch(/"level":60/);
  }, 400_000);
});
