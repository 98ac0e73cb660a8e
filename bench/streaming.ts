/**
 * Streaming benchmark: photos/s end to end through Kafka (photos topic → ingest workers → faces
 * topic → indexer → store) with 1 and 2 workers, against the embedded in-process path
 * (`runEmbedded`, no Kafka) on the same photos; plus consumer lag of both consumer groups sampled
 * over each Kafka run. Start-up (model loading, group joins) is excluded: the clock starts when
 * the photos are produced to already-running workers, and stops when the store holds them all.
 *
 * Uses the local test broker (devkit/kafkaBroker.ts), or KAFKA_BROKERS when set.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { runEmbedded } from '../app/run.ts';
import { kafkaSettings, type KafkaSettings } from '../pipeline/kafka/config.ts';
import { createKafka, ensureTopics } from '../pipeline/kafka/client.ts';
import { startBroker } from '../devkit/kafkaBroker.ts';
import {
  GROUP_PHOTOS,
  FACES_PER_GROUP_PHOTO,
  groupsDir,
  kafkaClient,
  kill9,
  photoEventFor,
  produce,
  spawnFacepipe,
  storeCounts,
  terminate,
  uniquePrefix,
  waitFor,
  type Proc,
} from '../devkit/kafkaHarness.ts';
import { median } from '../core/stats.ts';

const PARTITIONS = 4;

interface LagSample {
  t: number;
  photosLag: number;
  facesLag: number;
}

interface KafkaRunFigures {
  workers: number;
  photos: number;
  faces: number;
  seconds: number;
  photosPerSecond: number;
  facesPerSecond: number;
  lag: {
    maxPhotos: number;
    medianPhotos: number;
    maxFaces: number;
    medianFaces: number;
    samples: LagSample[];
  };
}

/** no samples: 0 (a run that measured nothing) */
const medianOrZero = (xs: number[]): number => (xs.length === 0 ? 0 : median(xs));

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/** `copies` copies of the five group photos as files, so the embedded path sees the same set. */
function makePhotoFolder(root: string, copies: number): { files: string[]; faces: number } {
  const dir = path.join(root, 'photos');
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  let faces = 0;
  for (let c = 0; c < copies; c++) {
    for (const name of GROUP_PHOTOS) {
      const f = path.join(dir, `${name}-${c}.jpg`);
      copyFileSync(path.join(groupsDir, `${name}.jpg`), f);
      files.push(f);
      faces += FACES_PER_GROUP_PHOTO[name];
    }
  }
  return { files, faces };
}

async function groupLag(kafka: Kafka, groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // committed first, then the ends: the other order can see a commit past the end it read
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    const at = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? []);
    return ends.reduce(
      (s, e) => s + Math.max(0, Number(e.high) - Math.max(Number(e.low), at.get(e.partition) ?? -1)),
      0,
    );
  } finally {
    await admin.disconnect();
  }
}

async function kafkaRun(
  brokers: string,
  root: string,
  files: string[],
  faces: number,
  workers: number,
): Promise<KafkaRunFigures> {
  const prefix = uniquePrefix(`bench${workers}`);
  const settings: KafkaSettings = kafkaSettings('bench', { brokers, prefix, partitions: PARTITIONS });
  await ensureTopics(createKafka(settings), settings);
  const env = { KAFKA_BROKERS: brokers, FACEPIPE_TOPIC_PREFIX: prefix, FACEPIPE_LOG_LEVEL: 'info' };
  const dataDir = path.join(root, `${prefix}data`);
  const procs: Proc[] = [];
  const running = (p: Proc, line: string) => waitFor(`${line}`, () => p.log().includes(line), 180_000, 200);
  try {
    const indexer = spawnFacepipe(
      ['indexer', '--data', dataDir],
      env,
      path.join(root, `${prefix}indexer.log`),
    );
    procs.push(indexer);
    for (let i = 0; i < workers; i++) {
      procs.push(
        spawnFacepipe(
          ['worker', '--roots', root, '--concurrency', '4'],
          env,
          path.join(root, `${prefix}worker-${i}.log`),
        ),
      );
    }
    await Promise.all([
      running(indexer, 'indexer running'),
      ...procs.slice(1).map((p) => running(p, 'ingest worker running')),
    ]);
    // give the group a moment to settle its partitions among the workers
    await new Promise((r) => setTimeout(r, 2000));

    const kafka = kafkaClient(brokers);
    const events = files.map((f, i) => ({ key: `${prefix}${i}`, value: photoEventFor(`${prefix}${i}`, f) }));
    const t0 = Date.now();
    await produce(kafka, settings.topics.photos, events);
    const samples: LagSample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [photosLag, facesLag] = await Promise.all([
          groupLag(kafka, settings.groups.worker, settings.topics.photos),
          groupLag(kafka, settings.groups.indexer, settings.topics.faces),
        ]).catch(() => [NaN, NaN]);
        samples.push({ t: round((Date.now() - t0) / 1000, 1), photosLag, facesLag });
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    await waitFor(
      'all photos in the store',
      () => (storeCounts(dataDir)?.photos ?? 0) >= files.length,
      900_000,
      100,
    );
    const seconds = (Date.now() - t0) / 1000;
    sampling = false;
    await sampler;
    const counts = storeCounts(dataDir)!;
    if (counts.faces !== faces)
      throw new Error(`expected ${faces} faces in the store, found ${counts.faces}`);
    const ok = samples.filter((s) => Number.isFinite(s.photosLag));
    const step = Math.max(1, Math.ceil(ok.length / 20));
    return {
      workers,
      photos: files.length,
      faces,
      seconds: round(seconds),
      photosPerSecond: round(files.length / seconds),
      facesPerSecond: round(faces / seconds),
      lag: {
        maxPhotos: Math.max(0, ...ok.map((s) => s.photosLag)),
        medianPhotos: medianOrZero(ok.map((s) => s.photosLag)),
        maxFaces: Math.max(0, ...ok.map((s) => s.facesLag)),
        medianFaces: medianOrZero(ok.map((s) => s.facesLag)),
        samples: ok.filter((_, i) => i % step === 0),
      },
    };
  } finally {
    for (const p of procs) {
      if ((await terminate(p, 30_000)) !== 0) await kill9(p);
    }
  }
}

export async function run(opts: { full: boolean }): Promise<Record<string, unknown>> {
  const copies = opts.full ? 40 : 10; // 200 or 50 photos
  const repeats = 3;
  const root = mkdtempSync(path.join(os.tmpdir(), 'facepipe-bench-streaming-'));
  const broker = await startBroker();
  try {
    const { files, faces } = makePhotoFolder(root, copies);

    const embeddedRates: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const summary = await runEmbedded({
        dir: path.join(root, 'photos'),
        dataDir: path.join(root, `embedded-${r}`),
        recluster: false,
      });
      if (summary.store.faces !== faces)
        throw new Error(`embedded: expected ${faces} faces, found ${summary.store.faces}`);
      embeddedRates.push(summary.photosPerSecond);
    }
    const byWorkers: Record<string, KafkaRunFigures> = {};
    for (const workers of [1, 2]) {
      const runs: KafkaRunFigures[] = [];
      for (let r = 0; r < repeats; r++)
        runs.push(await kafkaRun(broker.brokers, root, files, faces, workers));
      runs.sort((a, b) => a.photosPerSecond - b.photosPerSecond);
      byWorkers[String(workers)] = runs[Math.floor(runs.length / 2)];
    }
    const embedded = medianOrZero(embeddedRates);
    return {
      photos: files.length,
      faces,
      partitions: PARTITIONS,
      cpus: os.availableParallelism(),
      embeddedPhotosPerSecond: round(embedded),
      kafka1PhotosPerSecond: byWorkers['1'].photosPerSecond,
      kafka2PhotosPerSecond: byWorkers['2'].photosPerSecond,
      ratioKafka1ToEmbedded: round(byWorkers['1'].photosPerSecond / embedded),
      ratioKafka2ToEmbedded: round(byWorkers['2'].photosPerSecond / embedded),
      kafka: byWorkers,
      note: 'end to end: produce → worker(s) → faces topic → indexer → store; start-up excluded; the embedded figure also writes thumbnails',
    };
  } finally {
    await broker.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
