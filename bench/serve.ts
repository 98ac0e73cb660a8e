import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FaceStore, STORE_FILE } from '../indexers/store.ts';
import { DEFAULT_LIMITS } from '../api/context.ts';

/**
 * Load on the lookup service as users run it: a real `facepipe serve` process over the store that
 * `facepipe run examples` writes (real embeddings), on loopback only. Closed loop: C connections,
 * each sending its next request when the previous answer is in, for a fixed time (and at most a
 * fixed count); a client told 503 waits its Retry-After before the next. Per scenario: answered requests per second, p50/p99 latency of the 200s, 503s
 * (search by image is bounded: beyond --max-image-searches it answers 503 at once) and errors
 * (any other status, or a failed connection).
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONNECTIONS = [10, 50];
/** the service's Retry-After on a 503, honoured by the load's clients */
const RETRY_AFTER_MS = 1000;

interface LoadResult {
  connections: number;
  seconds: number;
  requests: number;
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  busy503: number;
  errors: number;
}

export async function run(opts: { full: boolean }): Promise<Record<string, unknown>> {
  const seconds = opts.full ? 30 : 10;
  const maxRequests = opts.full ? 200_000 : 50_000;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-bench-serve-'));
  const data = path.join(tmp, 'data');
  let server: ChildProcess | undefined;
  try {
    const made = spawnSync(
      process.execPath,
      ['bin/facepipe.mjs', 'run', 'examples', '--data', data, '--json'],
      {
        cwd: repoRoot,
        env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' },
        encoding: 'utf8',
      },
    );
    if (made.status !== 0) throw new Error(`facepipe run failed: ${made.stderr}`);
    const store = new FaceStore(path.join(data, STORE_FILE), { create: false, readonly: true });
    const embeddings = store.faces.listFaces({ kept: true }).map((f) => Array.from(f.embedding));
    store.close();
    const started = await startServe(data);
    server = started.child;
    const { port, maxImageSearches } = started;
    // no Nagle delay: a request's headers and body are separate writes
    const agentFor = (c: number) => new Agent({ keepAlive: true, maxSockets: c, noDelay: true });

    const embeddingBodies = embeddings.map((e) => Buffer.from(JSON.stringify({ embedding: e, k: 10 })));
    const image = readFileSync(path.join(repoRoot, 'examples', 'faceapi-groups', 'bbt2.jpg'));
    const boundary = 'facepipebench';
    const imageBody = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="bbt2.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
      ),
      image,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);

    const embedding: LoadResult[] = [];
    const byImage: LoadResult[] = [];
    for (const c of CONNECTIONS) {
      const agent = agentFor(c);
      let i = 0;
      embedding.push(
        await load(c, seconds, maxRequests, () =>
          post(
            agent,
            port,
            '/search/embedding',
            'application/json',
            embeddingBodies[i++ % embeddingBodies.length]!,
          ),
        ),
      );
      agent.destroy();
    }
    for (const c of CONNECTIONS) {
      const agent = agentFor(c);
      byImage.push(
        await load(c, seconds, maxRequests, () =>
          post(agent, port, '/search/image', `multipart/form-data; boundary=${boundary}`, imageBody),
        ),
      );
      agent.destroy();
    }
    return {
      store: { faces: embeddings.length, source: 'facepipe run examples' },
      host: '127.0.0.1',
      // the machine is shared: its load when the figures were taken (1, 5, 15 min)
      loadAverage: os.loadavg().map(round),
      maxImageSearches,
      searchByEmbedding: embedding,
      searchByImage: byImage,
    };
  } finally {
    server?.kill('SIGTERM');
    if (server) await new Promise((r) => server!.once('exit', r));
    rmSync(tmp, { recursive: true, force: true });
  }
}

function startServe(data: string): Promise<{ child: ChildProcess; port: number; maxImageSearches: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/facepipe.mjs', 'serve', '--data', data, '--port', '0'], {
      cwd: repoRoot,
      env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' },
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      child.removeAllListeners('exit');
      const port = Number(new URL((JSON.parse(line) as { listening: string }).listening).port);
      // the bound the service runs with: its default, the bench passes none
      resolve({ child, port, maxImageSearches: DEFAULT_LIMITS.maxImageSearches });
    });
  });
}

/** One request; resolves with its status (0 when the connection failed). */
function post(agent: Agent, port: number, route: string, type: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: route,
        method: 'POST',
        agent,
        headers: { 'content-type': type, 'content-length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function load(
  connections: number,
  seconds: number,
  maxRequests: number,
  send: () => Promise<number>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let requests = 0;
  let busy = 0;
  let errors = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < until && requests < maxRequests) {
      requests++;
      const t = performance.now();
      const status = await send();
      if (status === 200) latencies.push(performance.now() - t);
      else if (status === 503) {
        // a well-behaved client waits as told (Retry-After: 1) instead of hammering the upload
        busy++;
        await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
      } else errors++;
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pick = (q: number) =>
    round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN);
  return {
    connections,
    seconds: round(elapsed),
    requests,
    okPerSecond: round(latencies.length / elapsed),
    p50Ms: pick(0.5),
    p99Ms: pick(0.99),
    busy503: busy,
    errors,
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
