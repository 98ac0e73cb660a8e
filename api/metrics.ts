import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FaceDatabase } from '../indexers/types.ts';

/**
 * Prometheus metrics of the lookup service. Each server gets its own registry, so several servers
 * (tests) can live in one process without "metric already registered" clashes.
 */
export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  latency: Histogram<'method' | 'route'>;
  searches: Counter<'kind'>;
  /** ingest counters: photos and faces that went through the analysis + index stages in this process */
  ingestPhotos: Counter<'status'>;
  ingestFaces: Counter<'kept'>;
}

export function createMetrics(db: FaceDatabase, opts: { defaultMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'facepipe_' });
  const requests = new Counter({
    name: 'facepipe_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'facepipe_http_request_duration_seconds',
    help: 'HTTP request latency in seconds',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const searches = new Counter({
    name: 'facepipe_searches_total',
    help: 'searches by kind (image, embedding, face)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const ingestPhotos = new Counter({
    name: 'facepipe_ingest_photos_total',
    help: 'photos ingested by this process, by status (done, failed, skipped)',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const ingestFaces = new Counter({
    name: 'facepipe_ingest_faces_total',
    help: 'faces ingested by this process, kept or dropped by the quality gate',
    labelNames: ['kept'] as const,
    registers: [registry],
  });
  registerStoreGauges(registry, db);
  return { registry, requests, latency, searches, ingestPhotos, ingestFaces };
}

/** Gauges read from the store at scrape time, so they are right whoever wrote the data. */
function registerStoreGauges(registry: Registry, db: FaceDatabase): void {
  new Gauge({
    name: 'facepipe_index_size',
    help: 'vectors currently searchable in the HNSW index',
    registers: [registry],
    collect() {
      this.set(db.size());
    },
  });
  new Gauge({
    name: 'facepipe_store_items',
    help: 'items in the store: photos, faces (kept and dropped), identities',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      const c = db.counts();
      this.set({ kind: 'photos' }, c.photos);
      this.set({ kind: 'faces_kept' }, c.kept);
      this.set({ kind: 'faces_dropped' }, c.dropped);
      this.set({ kind: 'identities' }, c.identities);
    },
  });
}

/** Counts and times every request by its route pattern (not the raw URL: ids would explode the labels). */
export function instrument(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { method: request.method, route };
    metrics.requests.inc({ ...labels, status: String(reply.statusCode) });
    metrics.latency.observe(labels, reply.elapsedTime / 1000);
  });
}
