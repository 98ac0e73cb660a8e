import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';
import { kafkaSettings } from '../pipeline/kafka/config.ts';

describe('the one configuration', () => {
  it('has defaults for every variable', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      dataDir: './facepipe-data',
      provider: 'cpu',
      logLevel: 'info',
      inferenceNice: 10,
      serve: { port: 8080, host: '127.0.0.1' },
      fetch: { fileRoots: [], allowedHosts: [] },
    });
    expect(c.modelsDir).toBeUndefined();
    // the defaults the README documents
    const s = kafkaSettings('worker', {}, c.kafka);
    expect([s.brokers, s.topics.photos, s.topics.deadLetters, s.partitions, s.groups.worker]).toEqual([
      ['127.0.0.1:9092'],
      'photos',
      'dead-letters',
      6,
      'facepipe-ingest',
    ]);
  });

  it('reads and types what is set; the command line still wins for Kafka', () => {
    const c = loadConfig({
      FACEPIPE_DATA: '/srv/faces',
      FACEPIPE_MODELS: '/srv/models',
      FACEPIPE_PROVIDER: 'CUDA',
      FACEPIPE_LOG_LEVEL: 'warn',
      FACEPIPE_INFERENCE_NICE: '0',
      FACEPIPE_PORT: '0',
      FACEPIPE_TOKEN: 's3cret',
      FACEPIPE_MAX_PIXELS: '1000',
      FACEPIPE_FILE_ROOTS: '/a, /b',
      FACEPIPE_ALLOWED_HOSTS: 'img.example.com,*.cdn.example',
      KAFKA_BROKERS: 'k1:9092,k2:9092',
      FACEPIPE_TOPIC_PREFIX: 'lib1-',
      FACEPIPE_TOPIC_FACES: 'vectors',
      FACEPIPE_PARTITIONS: '12',
      FACEPIPE_SESSION_TIMEOUT_MS: '6000',
      FACEPIPE_KAFKA_LOG_LEVEL: 'debug',
      UNRELATED: 'x',
    });
    expect(c).toMatchObject({
      dataDir: '/srv/faces',
      modelsDir: '/srv/models',
      provider: 'cuda',
      logLevel: 'warn',
      inferenceNice: 0,
      serve: { port: 0, token: 's3cret', maxPixels: 1000 },
      fetch: { fileRoots: ['/a', '/b'], allowedHosts: ['img.example.com', '*.cdn.example'] },
    });
    const s = kafkaSettings('indexer', {}, c.kafka);
    expect(s).toMatchObject({
      brokers: ['k1:9092', 'k2:9092'],
      topics: { faces: 'lib1-vectors', photos: 'lib1-photos' },
      partitions: 12,
      groups: { indexer: 'lib1-facepipe-indexer' },
      sessionTimeoutMs: 6000,
      logLevel: 'debug',
    });
    expect(kafkaSettings('indexer', { brokers: 'b:1', prefix: '' }, c.kafka)).toMatchObject({
      brokers: ['b:1'],
      topics: { faces: 'vectors' },
    });
  });

  it('refuses a bad value with one line naming the variable', () => {
    const bad = (env: Record<string, string>) => () => loadConfig(env);
    expect(bad({ FACEPIPE_PORT: 'eighty' })).toThrow(ConfigError);
    expect(bad({ FACEPIPE_PORT: '70000' })).toThrow(/^FACEPIPE_PORT=70000 is invalid/);
    expect(bad({ FACEPIPE_PROVIDER: 'tpu' })).toThrow(/^FACEPIPE_PROVIDER=tpu is invalid/);
    expect(bad({ FACEPIPE_LOG_LEVEL: 'loud' })).toThrow(/^FACEPIPE_LOG_LEVEL/);
    expect(bad({ FACEPIPE_PARTITIONS: '0' })).toThrow(/^FACEPIPE_PARTITIONS/);
    expect(bad({ FACEPIPE_PORT: 'eighty' })).toThrow(expect.objectContaining({ code: 'CONFIG' }));
  });
});
