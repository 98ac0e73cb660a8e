/**
 * Streaming commands: `facepipe worker`, `facepipe indexer`, `facepipe publish`, `facepipe status`.
 * Kafka settings come from the environment (pipeline/kafka/config.ts) with --brokers to override.
 *
 * Dead letters: the indexer consumes the dead-letter topic too and records each one (once per
 * original message) in `<data>/stream.sqlite`; `facepipe status` counts them from there, so the
 * count is what the indexer of that data dir has seen; the embedded path's `<data>/dead-letter.jsonl`
 * (`facepipe run`) is counted too, once per photo and code.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { PhotoEvent, type PhotoEventInput } from '../schemas/photoEvent.ts';
import { photoIdForFile } from '../schemas/face.ts';
import { kafkaSettings, type KafkaOverrides } from '../pipeline/kafka/config.ts';
import { createKafka, createProducer, ensureTopics } from '../pipeline/kafka/client.ts';
import { DEFAULT_FETCH_POLICY, type FetchPolicy } from '../pipeline/fetchPhoto.ts';
import { StreamState } from '../pipeline/kafka/streamState.ts';
import { log } from '../core/log.ts';
import { FaceStore, STORE_FILE } from '../indexers/store.ts';
import { PeopleStore } from '../indexers/store/people.ts';
import { DEAD_LETTER_FILE } from '../app/run.ts';
import { NoStoreError } from '../indexers/database.ts';
import { isImageFile, walkImages } from '../pipeline/imageFiles.ts';
import { positiveInt, requireDataDir, modelsDirFrom } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';
import { rebuildProgressBar } from './progress.ts';

interface KafkaCliOptions {
  brokers?: string;
  topicPrefix?: string;
}

function overridesFrom(o: KafkaCliOptions & { partitions?: number }): KafkaOverrides {
  return {
    ...(o.brokers ? { brokers: o.brokers } : {}),
    ...(o.topicPrefix !== undefined ? { prefix: o.topicPrefix } : {}),
    ...(o.partitions ? { partitions: o.partitions } : {}),
  };
}

function listFrom(v: string | undefined): string[] {
  return (v ?? '')
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Resolves on the first SIGTERM/SIGINT; a second one exits at once. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    let seen = false;
    const on = (sig: string) => {
      if (seen) process.exit(130);
      seen = true;
      resolve(sig);
    };
    process.on('SIGTERM', () => on('SIGTERM'));
    process.on('SIGINT', () => on('SIGINT'));
  });
}

export function register(program: Command, config: FacepipeConfig): void {
  const withKafka = (c: Command) =>
    c
      .option(
        '--brokers <list>',
        'Kafka bootstrap servers, comma-separated (default: KAFKA_BROKERS or 127.0.0.1:9092)',
      )
      .option('--topic-prefix <p>', 'prefix of topic and group names (default: FACEPIPE_TOPIC_PREFIX)');

  withKafka(program.command('worker'))
    .description('Ingest worker: consume PhotoEvents, analyse, publish FaceRecords (runs until SIGTERM)')
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .option(
      '--roots <dirs>',
      'folders file:// URIs may point into, comma-separated (default: FACEPIPE_FILE_ROOTS)',
    )
    .option(
      '--allow-hosts <hosts>',
      'hosts http(s):// URIs may reach: name, name:port or *.domain (default: FACEPIPE_ALLOWED_HOSTS)',
    )
    .option('--max-bytes <n>', 'largest photo fetched, bytes', positiveInt, DEFAULT_FETCH_POLICY.maxBytes)
    .option('--fetch-timeout-ms <n>', 'http(s) time limit', positiveInt, DEFAULT_FETCH_POLICY.timeoutMs)
    .option(
      '--concurrency <n>',
      'photos in flight at once (bounded: a slow model slows consumption)',
      positiveInt,
      8,
    )
    .option('--attempts <n>', 'tries of a transient failure before it becomes a dead letter', positiveInt, 3)
    .option('--provider <p>', 'cpu or cuda (default: FACEPIPE_PROVIDER or cpu)', config.provider)
    .option('--threads <n>', 'inference threads per session', positiveInt)
    .option('--data <dir>', 'data folder whose erased photos (tombstones) this worker leaves alone')
    .option('--include-erased', 'analyse erased photos anyway')
    .action(async (o: WorkerCliOptions) => runWorker(o, config));

  withKafka(program.command('indexer'))
    .description(
      'Indexer: consume FaceRecords into the store, HNSW index and identities; publish identity events (runs until SIGTERM)',
    )
    .requiredOption('--data <dir>', 'data folder (store and index)')
    .option(
      '--models <dir>',
      'models folder, for a new data dir (model id, dimension, clustering calibration)',
    )
    .option('--checkpoint-ms <n>', 'persist the HNSW index at most this often', positiveInt, 30_000)
    .action(async (o: IndexerCliOptions) => runIndexer(o, config));

  withKafka(program.command('publish'))
    .description('Publish one PhotoEvent (file:// URI) per image file to the photos topic')
    .argument('<paths...>', 'image files or folders (walked recursively)')
    .option('--library <name>', 'library the photos belong to')
    .option('--tenant <name>', 'tenant')
    .option(
      '--id-prefix <p>',
      'prefix of the photo ids (ids are the prefix + the id `facepipe run` gives the file: a hash of its absolute path)',
      '',
    )
    .option('--partitions <n>', 'partitions of the topics if they must be created', positiveInt)
    .option('--data <dir>', 'data folder whose erased photos (tombstones) are not published')
    .option('--include-erased', 'publish erased photos anyway')
    .action(async (paths: string[], o: PublishCliOptions) => {
      const n = await publishFiles(paths, o, config);
      process.stderr.write(`published ${n} photo events\n`);
    });

  withKafka(program.command('status'))
    .description('Counts of a data dir: photos, faces, kept, dropped, identities, dead letters')
    .option('--data <dir>', 'data folder', config.dataDir)
    .option('--json', 'print one JSON object')
    .action((o: { data: string; json?: boolean }) => {
      requireDataDir(o.data);
      // no store is not "zero of everything": say so instead of printing zeros
      if (!existsSync(path.join(o.data, STORE_FILE))) throw new NoStoreError(o.data);
      const s = streamStatus(o.data);
      if (o.json) process.stdout.write(JSON.stringify(s) + '\n');
      else
        for (const [k, v] of Object.entries(s))
          process.stdout.write(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
    });
}

// ───────────────────────────── worker ─────────────────────────────

interface WorkerCliOptions extends KafkaCliOptions {
  models?: string;
  roots?: string;
  allowHosts?: string;
  maxBytes: number;
  fetchTimeoutMs: number;
  concurrency: number;
  attempts: number;
  provider: string;
  threads?: number;
  data?: string;
  includeErased?: boolean;
}

export function fetchPolicyFrom(
  o: Pick<WorkerCliOptions, 'roots' | 'allowHosts' | 'maxBytes' | 'fetchTimeoutMs'>,
  fromEnv: FacepipeConfig['fetch'],
): FetchPolicy {
  return {
    fileRoots: (o.roots !== undefined ? listFrom(o.roots) : fromEnv.fileRoots).map((r) => path.resolve(r)),
    allowedHosts: o.allowHosts !== undefined ? listFrom(o.allowHosts) : fromEnv.allowedHosts,
    maxBytes: o.maxBytes,
    timeoutMs: o.fetchTimeoutMs,
  };
}

async function runWorker(o: WorkerCliOptions, config: FacepipeConfig): Promise<void> {
  if (o.provider !== 'cpu' && o.provider !== 'cuda') throw new Error('--provider must be cpu or cuda');
  const { createAnalyzer } = await import('../pipeline/analyze.ts');
  const { startIngestWorker } = await import('../app/worker.ts');
  const settings = kafkaSettings('worker', overridesFrom(o), config.kafka);
  const policy = fetchPolicyFrom(o, config.fetch);
  const analyzer = await createAnalyzer({
    modelsDir: modelsDirFrom(o.models, config),
    provider: o.provider,
    inferenceNice: config.inferenceNice,
    ...(o.threads ? { threads: o.threads } : {}),
  });
  log.info(
    {
      model: analyzer.modelId,
      provider: analyzer.provider,
      roots: policy.fileRoots,
      hosts: policy.allowedHosts,
    },
    'worker starting',
  );
  const tombstones = o.data && !o.includeErased ? openTombstones(o.data) : undefined;
  const stopped = untilSignal();
  const worker = await startIngestWorker({
    settings,
    analyzer,
    fetchPolicy: policy,
    maxInFlight: o.concurrency,
    maxAttempts: o.attempts,
    ...(tombstones ? { erased: (p) => tombstones.erased(p) !== undefined } : {}),
  });
  const sig = await stopped;
  log.info({ signal: sig }, 'draining in-flight photos');
  await worker.stop();
  await analyzer.close();
  process.exit(0);
}

// ───────────────────────────── indexer ─────────────────────────────

interface IndexerCliOptions extends KafkaCliOptions {
  data: string;
  models?: string;
  checkpointMs: number;
}

async function runIndexer(o: IndexerCliOptions, config: FacepipeConfig): Promise<void> {
  const { openDataDir } = await import('../app/dataDir.ts');
  const { startIndexer } = await import('../app/indexer.ts');
  const settings = kafkaSettings('indexer', overridesFrom(o), config.kafka);
  const opened = await openDataDir(o.data, {
    modelsDir: modelsDirFrom(o.models, config),
    create: true,
    onRebuildProgress: rebuildProgressBar(),
  });
  const { db, identities } = opened;
  const state = new StreamState(o.data);
  const stopped = untilSignal();
  const indexer = await startIndexer({ settings, db, identities, state, checkpointEveryMs: o.checkpointMs });
  const sig = await stopped;
  log.info({ signal: sig }, 'indexer stopping');
  await indexer.stop();
  await opened.close();
  state.close();
  process.exit(0);
}

// ───────────────────────────── publish ─────────────────────────────

interface PublishCliOptions extends KafkaCliOptions {
  data?: string;
  includeErased?: boolean;
  library?: string;
  tenant?: string;
  idPrefix: string;
  partitions?: number;
}

/** Image files under the given paths (files as given, folders walked), sorted. */
export function imageFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`no such file or folder: ${p}`);
    if (statSync(p).isDirectory()) out.push(...walkImages(p).map((f) => path.resolve(f)));
    else if (isImageFile(p)) out.push(path.resolve(p));
  }
  return out;
}

/** The tombstones of a data dir, read-only (another process may be writing the store). */
function openTombstones(dataDir: string): PeopleStore | undefined {
  const file = path.join(dataDir, STORE_FILE);
  if (!existsSync(file)) return undefined;
  return new PeopleStore(new FaceStore(file, { create: false, readonly: true }).db);
}

/** The files a user has not erased in `dataDir` (its tombstones: by photo id, path or content). */
export function withoutErased(files: string[], dataDir: string, idPrefix = ''): string[] {
  const file = path.join(dataDir, STORE_FILE);
  if (!existsSync(file)) return files;
  const store = new FaceStore(file, { create: false, readonly: true });
  try {
    const tombstones = new PeopleStore(store.db);
    return files.filter((f) => {
      const contentHash = createHash('sha256').update(readFileSync(f)).digest('hex');
      const erased = tombstones.erased({
        photoId: photoIdForFile(f, idPrefix),
        uri: pathToFileURL(f).href,
        contentHash,
      });
      if (erased) log.info({ file: f }, 'not published: erased by a user (--include-erased to publish it)');
      return !erased;
    });
  } finally {
    store.close();
  }
}

export async function publishFiles(
  paths: string[],
  o: PublishCliOptions,
  config: FacepipeConfig,
): Promise<number> {
  const all = imageFiles(paths);
  const files = o.data && !o.includeErased ? withoutErased(all, o.data, o.idPrefix) : all;
  const settings = kafkaSettings('publish', overridesFrom(o), config.kafka);
  const kafka = createKafka(settings);
  await ensureTopics(kafka, settings);
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    const now = new Date().toISOString();
    const events = files.map((f) => {
      const e: PhotoEventInput = {
        photoId: photoIdForFile(f, o.idPrefix),
        source: { kind: 'uri', uri: pathToFileURL(f).href },
        ...(o.library ? { library: o.library } : {}),
        ...(o.tenant ? { tenant: o.tenant } : {}),
        createdAt: now,
      };
      return PhotoEvent.parse(e);
    });
    for (let i = 0; i < events.length; i += 500) {
      const chunk = events.slice(i, i + 500);
      await producer.send({
        topic: settings.topics.photos,
        acks: -1,
        messages: chunk.map((e) => ({ key: e.photoId, value: JSON.stringify(e) })),
      });
      for (const e of chunk)
        process.stdout.write(
          JSON.stringify({ photoId: e.photoId, uri: (e.source as { uri: string }).uri }) + '\n',
        );
    }
    return events.length;
  } finally {
    await producer.disconnect();
  }
}

// ───────────────────────────── status ─────────────────────────────

export interface StreamStatus {
  photos: number;
  faces: number;
  kept: number;
  dropped: number;
  identities: number;
  deadLetters: number;
  deadLettersByCode: Record<string, number>;
}

/** Reads the counts without opening the index (safe while an indexer runs on the same dir). */
export function streamStatus(dataDir: string): StreamStatus {
  const { counts, donePhotos } = storeSummary(dataDir);
  const letters: LetterKey[] = [];
  if (StreamState.exists(dataDir)) {
    const state = new StreamState(dataDir, { readonly: true });
    try {
      for (const d of state.listDeadLetters())
        letters.push({ photoId: d.photoId ?? null, id: d.id, code: d.code, stage: d.stage });
    } finally {
      state.close();
    }
  }
  letters.push(...embeddedDeadLetters(dataDir));
  // once per photo and code; not at all for a photo done since (a re-run or a re-publish that
  // succeeded), nor for a skipped folder that can be read now
  const seen = new Set<string>();
  const deadLettersByCode: Record<string, number> = {};
  for (const l of letters) {
    if (l.photoId !== null && donePhotos.has(l.photoId)) continue;
    if (l.stage === 'walk' && l.uri !== undefined && readableNow(l.uri)) continue;
    const key = `${l.photoId ?? l.uri ?? l.id}\u0000${l.code}`;
    if (seen.has(key)) continue;
    seen.add(key);
    deadLettersByCode[l.code] = (deadLettersByCode[l.code] ?? 0) + 1;
  }
  const deadLetters = Object.values(deadLettersByCode).reduce((a, b) => a + b, 0);
  return { ...counts, deadLetters, deadLettersByCode };
}

interface LetterKey {
  photoId: string | null;
  id?: string;
  uri?: string;
  code: string;
  stage?: string;
}

/** A folder or link the walk skipped that is fine now (permissions fixed, link target back). */
function readableNow(p: string): boolean {
  try {
    if (statSync(p).isDirectory()) readdirSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Dead letters of the embedded path (`facepipe run`), one JSON line per failed photo in `<data>/dead-letter.jsonl`. */
function embeddedDeadLetters(dataDir: string): LetterKey[] {
  const file = path.join(dataDir, DEAD_LETTER_FILE);
  if (!existsSync(file)) return [];
  const out: LetterKey[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let record: { photoId?: string | null; code?: string; uri?: string; stage?: string };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      continue; // a torn last line after a crash
    }
    out.push({
      photoId: record.photoId ?? null,
      uri: record.uri,
      code: record.code ?? 'UNKNOWN',
      stage: record.stage,
    });
  }
  return out;
}

function storeSummary(dataDir: string): {
  counts: Omit<StreamStatus, 'deadLetters' | 'deadLettersByCode'>;
  donePhotos: Set<string>;
} {
  const empty = { photos: 0, faces: 0, kept: 0, dropped: 0, identities: 0 };
  const file = path.join(dataDir, STORE_FILE);
  if (!existsSync(file)) return { counts: empty, donePhotos: new Set() };
  // the store's own class, read-only: no index recovery, no writes
  const store = new FaceStore(file, { create: false, readonly: true });
  try {
    const donePhotos = new Set(
      store.photos
        .listPhotos()
        .filter((p) => p.status === 'done')
        .map((p) => p.photoId),
    );
    return { counts: store.counts(), donePhotos };
  } finally {
    store.close();
  }
}
