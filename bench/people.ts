import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { openFaceDatabase } from '../indexers/database.ts';
import type { FaceRecord } from '../schemas/face.ts';
import { IdentityService } from '../service/identityService.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { buildServer } from '../api/server.ts';
import { rng } from '../core/random.ts';
import { thumbPath } from '../pipeline/report.ts';
import { loadManifest, resolveModelsDir, type EmbedderManifest } from '../pipeline/models.ts';
import { noisyFace, percentiles, syntheticRecord, timeEach, unitVector } from './lookup.ts';

/**
 * The people grid at 10,000 identities (3 faces each, every face with a thumbnail on disk): the
 * server time of its first page (in process, fastify inject; and over loopback HTTP), and the
 * browser load time of that page (Debian chromium through playwright-core: navigation start to the
 * load event, every cover image included), cold (fresh browser context) and warm (ETag revalidation).
 * The target: the first page renders in under 1 s.
 */
const DIM = 192;
const FACES_PER_IDENTITY = 3;
const CHROMIUM = process.env.FACEPIPE_CHROMIUM ?? '/usr/bin/chromium';

export async function run(opts: { full: boolean }): Promise<Record<string, unknown>> {
  const identities = Number(process.env.FACEPIPE_BENCH_PEOPLE ?? 10_000);
  const rounds = opts.full ? 50 : 20;
  const manifest = loadManifest(resolveModelsDir()).embedders[0]!;
  const params = clusterParamsFromManifest(manifest);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-bench-people-'));
  const rand = rng(7);
  try {
    const db = openFaceDatabase(dir, { modelId: 'synthetic-192', dim: DIM });
    const t0 = Date.now();
    await fill(db, identities, rand, manifest.quality);
    const fillSeconds = (Date.now() - t0) / 1000;
    db.checkpoint();
    const app = await buildServer({ db, identities: new IdentityService(db, params), params });
    const inject = async (url: string) => {
      const res = await app.inject({ method: 'GET', url });
      if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
    };
    for (let i = 0; i < 5; i++) await inject('/'); // warm-up (JIT, prepared statements)
    const firstPage = await timeAsync(rounds, () => inject('/'));
    const unnamedFirst = await timeAsync(rounds, () => inject('/?unnamed=1'));
    const deepPage = await timeAsync(rounds, () => inject('/?page=150'));
    const byName = await timeAsync(rounds, () => inject('/?q=person%2012'));
    const grid = db.people.personPage({ limit: 48, offset: 0 });
    const sqlOnly = timeEach(Array.from({ length: rounds }), () =>
      db.people.personPage({ limit: 48, offset: 0 }),
    );

    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const http = await timeAsync(rounds, async () => {
      const res = await fetch(url + '/');
      await res.arrayBuffer();
    });
    const browserLoad = await measureBrowser(url, rounds);
    await app.close();
    db.close();
    return {
      identities,
      faces: identities * FACES_PER_IDENTITY,
      pageSize: grid.people.length,
      fillSeconds,
      serverFirstPageMs: firstPage,
      serverUnnamedFirstMs: unnamedFirst,
      serverPage150Ms: deepPage,
      serverFilterByNameMs: byName,
      gridQueryMs: sqlOnly,
      httpFirstPageMs: http,
      browser: browserLoad,
      targetMs: 1000,
      note: 'server = GET / rendered in process (fastify inject); browser = navigation start → load event incl. 48 cover thumbnails',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fill(
  db: ReturnType<typeof openFaceDatabase>,
  identities: number,
  rand: () => number,
  calibration: EmbedderManifest['quality'],
): Promise<void> {
  // one real JPEG crop, copied for every face: the grid serves files from disk like a real data dir
  const jpeg = path.join(db.dataDir, 'sample.jpg');
  await sharp({ create: { width: 112, height: 112, channels: 3, background: { r: 180, g: 140, b: 120 } } })
    .jpeg({ quality: 85 })
    .toFile(jpeg);
  mkdirSync(path.join(db.dataDir, 'thumbs'), { recursive: true });
  const BATCH = 3000;
  const total = identities * FACES_PER_IDENTITY;
  const centres = Array.from({ length: identities }, () => unitVector(rand));
  for (let start = 0; start < total; start += BATCH) {
    const records: FaceRecord[] = [];
    for (let i = start; i < Math.min(total, start + BATCH); i++) {
      records.push(
        syntheticRecord(i, noisyFace(centres[Math.floor(i / FACES_PER_IDENTITY)]!, rand), calibration),
      );
      copyFileSync(jpeg, thumbPath(db.dataDir, `f_${i}`));
    }
    db.transaction(() => {
      db.upsertFaces(records);
      for (const r of records) {
        const n = Math.floor(Number(r.faceId.slice(2)) / FACES_PER_IDENTITY);
        const id = `i_${n}`;
        // sizes vary so "largest first" has work to do; a third are named
        if (!db.getIdentity(id)) db.createIdentity(id, n % 3 === 0 ? `Person ${n}` : null);
        if (Number(r.faceId.slice(2)) % FACES_PER_IDENTITY < 1 + (n % FACES_PER_IDENTITY))
          db.setFaceIdentity(r.faceId, id);
      }
    });
  }
}

async function timeAsync(rounds: number, fn: () => Promise<unknown>) {
  const ms: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return percentiles(ms);
}

async function measureBrowser(url: string, rounds: number): Promise<Record<string, unknown>> {
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    process.stderr.write('bench people: playwright-core not installed, browser timing skipped\n');
    return { skipped: 'playwright-core not installed' };
  }
  const { existsSync } = await import('node:fs');
  if (!existsSync(CHROMIUM)) {
    process.stderr.write(`bench people: no chromium at ${CHROMIUM}, browser timing skipped\n`);
    return { skipped: `no chromium at ${CHROMIUM}` };
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-background-networking'],
  });
  try {
    const loadMs = async (page: import('playwright-core').Page) => {
      await page.goto(url + '/', { waitUntil: 'load' });
      // evaluated in the page (a string: this file is compiled without the DOM's types)
      return page.evaluate<{ load: number; images: number }>(
        `(() => { const n = performance.getEntriesByType('navigation')[0];
          return { load: n.loadEventEnd - n.startTime, images: document.images.length }; })()`,
      );
    };
    const cold: number[] = [];
    const warm: number[] = [];
    let images = 0;
    for (let i = 0; i < Math.min(rounds, 10); i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const first = await loadMs(page);
      images = first.images;
      cold.push(first.load);
      warm.push((await loadMs(page)).load);
      await context.close();
    }
    return { coldLoadMs: percentiles(cold), warmLoadMs: percentiles(warm), imagesOnPage: images };
  } finally {
    await browser.close();
  }
}

// `node bin/run-ts.mjs bench/people.ts [--full]` runs it alone.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run({ full: process.argv.includes('--full') }).then((r) =>
    process.stdout.write(JSON.stringify(r, null, 2) + '\n'),
  );
}
