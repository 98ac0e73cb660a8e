/**
 * One ingest step for both paths, checked end to end with the real programs: `facepipe run` (the
 * embedded job) and `facepipe publish` → `facepipe worker` → `facepipe indexer` on a real Kafka
 * broker (devkit/kafkaBroker.ts), each into its own data dir from the same folder of photos.
 *
 * 1. Both data dirs hold the same photo ids, face ids, identity ids, identity assignment and dead
 *    letters (after the streaming dir's `facepipe recluster`; `run` reclusters at its end).
 * 2. A photo that changes and is published again loses its old faces everywhere: the store, the
 *    HNSW index, every search of the lookup service (`facepipe serve` on the indexer's data dir),
 *    and the identity templates, which no longer count them.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { StreamState } from '../../pipeline/kafka/streamState.ts';
import { kafkaSettings } from '../../pipeline/kafka/config.ts';
import { createKafka, ensureTopics } from '../../pipeline/kafka/client.ts';
import { DeadLetter } from '../../schemas/deadLetter.ts';
import { photoIdForFile } from '../../schemas/face.ts';
import { groupsDir, spawnFacepipe, terminate, uniquePrefix, waitFor } from '../../devkit/kafkaHarness.ts';
import { cropsDir, runCli, runCliJson, startServe } from '../e2e/helpers.ts';
import { kafkaTestBed } from './testBed.ts';

const bed = kafkaTestBed('parity-test');
const { tmp, procs } = bed;

/** A streaming setup of its own: topics, a worker and an indexer writing `dataDir`. */
async function streaming(name: string, roots: string) {
  const prefix = uniquePrefix(name);
  const settings = kafkaSettings('admin', { brokers: bed.broker.brokers, prefix, partitions: 3 });
  await ensureTopics(createKafka(settings), settings);
  const env = { KAFKA_BROKERS: bed.broker.brokers, FACEPIPE_TOPIC_PREFIX: prefix, FACEPIPE_PARTITIONS: '3' };
  const dataDir = path.join(tmp, `${name}-data`);
  const log = (n: string) => path.join(tmp, `${name}-${n}.log`);
  const worker = spawnFacepipe(['worker', '--roots', roots], env, log('worker'));
  const indexer = spawnFacepipe(
    ['indexer', '--data', dataDir, '--checkpoint-ms', '1000'],
    env,
    log('indexer'),
  );
  procs.push(worker, indexer);
  return {
    dataDir,
    worker,
    indexer,
    publish: async (paths: string[]) => {
      const r = await runCli(['publish', ...paths], { env });
      expect(r.code, r.stderr).toBe(0);
    },
  };
}

interface DataDirView {
  photos: Map<string, string>;
  faces: Map<string, string | null>;
  identities: string[];
  deadLetters: string[];
}

/** What a data dir holds, read-only through the store's own class. */
function view(dataDir: string, deadLetters: DeadLetter[]): DataDirView {
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
  try {
    return {
      photos: new Map(store.photos.listPhotos().map((p) => [p.photoId, p.status])),
      faces: new Map(store.faces.listFaces().map((f) => [f.faceId, f.kept ? f.identityId : 'dropped'])),
      identities: store.identities
        .listIdentities()
        .filter((i) => i.faceCount > 0)
        .map((i) => i.identityId)
        .sort(),
      deadLetters: deadLetters.map((d) => `${d.photoId} ${d.stage} ${d.code}`).sort(),
    };
  } finally {
    store.close();
  }
}

function photoCount(dataDir: string): number {
  try {
    const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
    try {
      return store.photos.listPhotos().length;
    } finally {
      store.close();
    }
  } catch {
    return 0;
  }
}

describe('one ingest step for both paths', () => {
  it('run and Kafka give the same photo ids, face ids, identity ids, assignment and dead letters', async () => {
    const photos = path.join(tmp, 'library');
    mkdirSync(photos);
    for (const g of ['bbt1', 'bbt2', 'bbt4', 'bbt5'])
      copyFileSync(path.join(groupsDir, `${g}.jpg`), path.join(photos, `${g}.jpg`));
    for (const person of ['amy', 'penny', 'raj'])
      for (const n of [1, 2])
        copyFileSync(path.join(cropsDir, person, `${n}.png`), path.join(photos, `${person}-${n}.png`));
    writeFileSync(path.join(photos, 'not-an-image.jpg'), 'this is text, not a photo');
    writeFileSync(
      path.join(photos, 'truncated.jpg'),
      readFileSync(path.join(groupsDir, 'bbt3.jpg')).subarray(0, 300),
    );
    const expectedPhotos = 4 + 6 + 2;

    // the embedded job
    const embeddedDir = path.join(tmp, 'embedded-data');
    const summary = await runCliJson<{ photos: { failed: number } }>([
      'run',
      photos,
      '--data',
      embeddedDir,
      '--json',
    ]);
    expect(summary.photos.failed).toBe(2);
    const embeddedLetters = readFileSync(path.join(embeddedDir, 'dead-letter.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => DeadLetter.parse(JSON.parse(l)));

    // the streaming path, then its batch recluster (what `run` does at its end)
    const s = await streaming('parity', photos);
    await s.publish([photos]);
    await waitFor(
      'the indexer to record every photo',
      () => photoCount(s.dataDir) === expectedPhotos,
      240_000,
    );
    expect(await terminate(s.indexer)).toBe(0);
    expect(await terminate(s.worker)).toBe(0);
    await runCliJson(['recluster', '--data', s.dataDir]);
    const state = new StreamState(s.dataDir, { readonly: true });
    const streamLetters = state.listDeadLetters();
    state.close();

    const embedded = view(embeddedDir, embeddedLetters);
    const stream = view(s.dataDir, streamLetters);
    expect(embedded.photos.size).toBe(expectedPhotos);
    expect([...stream.photos].sort()).toEqual([...embedded.photos].sort());
    // photo ids are the file's id on both paths
    expect(embedded.photos.get(photoIdForFile(path.join(photos, 'bbt1.jpg')))).toBe('done');
    expect(embedded.faces.size).toBeGreaterThan(20);
    expect([...stream.faces.keys()].sort()).toEqual([...embedded.faces.keys()].sort());
    expect(embedded.identities.length).toBeGreaterThan(2);
    expect(stream.identities).toEqual(embedded.identities);
    expect(new Map([...stream.faces].sort())).toEqual(new Map([...embedded.faces].sort()));
    expect(embedded.deadLetters).toEqual(
      [
        `${photoIdForFile(path.join(photos, 'not-an-image.jpg'))} analyze NOT_AN_IMAGE`,
        `${photoIdForFile(path.join(photos, 'truncated.jpg'))} analyze CORRUPT_IMAGE`,
      ].sort(),
    );
    expect(stream.deadLetters).toEqual(embedded.deadLetters);
  });

  it('a changed photo republished over Kafka loses its old faces in the store, the index, every search and the templates', async () => {
    const photos = path.join(tmp, 'changing');
    mkdirSync(photos);
    for (const g of ['bbt1', 'bbt2', 'bbt4', 'bbt5'])
      copyFileSync(path.join(groupsDir, `${g}.jpg`), path.join(photos, `${g}.jpg`));
    const changing = path.join(photos, 'changing.jpg');
    copyFileSync(path.join(groupsDir, 'bbt2.jpg'), changing);
    const photoId = photoIdForFile(changing);
    const s = await streaming('changed', photos);
    await s.publish([photos]);
    await waitFor('the first version', () => photoCount(s.dataDir) === 5, 240_000);

    const read = () => new FaceStore(path.join(s.dataDir, STORE_FILE), { create: false, readonly: true });
    let store = read();
    const oldFaces = store.faces.facesOfPhoto(photoId).filter((f) => f.kept);
    const firstHash = store.photos.getPhoto(photoId)!.contentHash;
    store.close();
    expect(oldFaces.length).toBe(3);
    const oldIdentities = new Set(oldFaces.map((f) => f.identityId).filter((i): i is string => i !== null));
    expect(oldIdentities.size).toBeGreaterThan(0);

    // the file changes (another photo's bytes at the same path) and is published again
    copyFileSync(path.join(groupsDir, 'bbt3.jpg'), changing);
    await s.publish([changing]);
    await waitFor('the second version', () => {
      const st = read();
      try {
        return st.photos.getPhoto(photoId)?.contentHash !== firstHash;
      } finally {
        st.close();
      }
    });

    // the store: the photo holds exactly its new faces; the old ones are gone
    store = read();
    try {
      const now = store.faces.facesOfPhoto(photoId);
      expect(now.length).toBe(5);
      for (const f of oldFaces) expect(store.faces.getFace(f.faceId), f.faceId).toBeUndefined();
      // templates: each identity's template is the sum of the faces it holds now, old ones not among them
      for (const identity of store.identities.listIdentities()) {
        const members = store.faces.listFaces({ identityId: identity.identityId, kept: true });
        expect(identity.faceCount).toBe(members.length);
        for (const f of oldFaces) expect(members.some((m) => m.faceId === f.faceId)).toBe(false);
        const sum = new Float64Array(identity.template.length);
        for (const m of members) m.embedding.forEach((x, i) => (sum[i] += x));
        identity.template.forEach((x, i) => expect(x).toBeCloseTo(sum[i], 2));
      }
    } finally {
      store.close();
    }

    // every search of the lookup service over the same data dir (it follows the indexer)
    const serve = await startServe(['--data', s.dataDir]);
    try {
      for (const f of oldFaces) {
        const byFace = await fetch(`${serve.url}/search/face/${f.faceId}?k=5`);
        expect(byFace.status).toBe(404);
        expect((await fetch(`${serve.url}/faces/${f.faceId}`)).status).toBe(404);
        const byVector = await fetch(`${serve.url}/search/embedding`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ embedding: Array.from(f.embedding), k: 20 }),
        });
        expect(byVector.status).toBe(200);
        const found = JSON.stringify(await byVector.json());
        for (const old of oldFaces) expect(found).not.toContain(old.faceId);
      }
      const image = new FormData();
      image.append('image', new Blob([readFileSync(path.join(groupsDir, 'bbt2.jpg'))]), 'bbt2.jpg');
      const byImage = await fetch(`${serve.url}/search/image?k=20`, { method: 'POST', body: image });
      expect(byImage.status).toBe(200);
      const found = JSON.stringify(await byImage.json());
      for (const old of oldFaces) expect(found).not.toContain(old.faceId);
    } finally {
      await serve.stop();
    }
    expect(await terminate(s.indexer)).toBe(0);
    expect(await terminate(s.worker)).toBe(0);
  });
});
