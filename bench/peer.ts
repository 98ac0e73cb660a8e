import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { walkImages } from '../pipeline/imageFiles.ts';
import { resolveModelsDir } from '../pipeline/models.ts';
import { benchDir, ensurePeerVenv, measured, peerDir, type ProcessCost } from './peer/venv.ts';
import { median } from '../core/stats.ts';

/**
 * facepipe's analysis against the plain Python pipeline a practitioner would write
 * (bench/peer/peer_pipeline.py: cv2 decode with Pillow's ICC conversion, the same YuNet +
 * MobileFaceNet on onnxruntime, the same preprocessing contract (models/README.md: INTER_AREA
 * detection copy, block-mean pre-shrink of large faces) and detection resolution,
 * cv2.estimateAffinePartial2D + warpAffine, one photo at a time), on the same photo sets:
 * - fixtures: the bundled examples (crops and group photos);
 * - large: photos of 2000–4600 px long side made in a temporary folder by upscaling the group
 *   photos and, when the development set is present, one photo of each of its people (never kept).
 * Both run as whole processes under the same meter (bench/peer/measure.py: user + system CPU of all
 * threads, wall, peak RSS), interleaved (A B, B A, …), medians; the faces each finds are matched by
 * box overlap and their embeddings compared (cosine).
 */

const repo = path.resolve(benchDir, '..');
// the team's development photos: FACEPIPE_DATASETS, else ../shared/datasets beside the checkout
const CELEBA = path.join(
  process.env.FACEPIPE_DATASETS ?? path.resolve(repo, '../shared/datasets'),
  'celeba-dev',
);

interface FaceLine {
  photo: string;
  bbox: [number, number, number, number];
  embedding: number[];
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** The large-photo set: upscaled copies (long side 2000..4600 px) written to `dir`. */
async function makeLargeSet(dir: string): Promise<{ files: string[]; sources: string }> {
  const sources = [1, 2, 3, 4, 5].map((n) => path.join(repo, `examples/faceapi-groups/bbt${n}.jpg`));
  let from = 'the 5 bundled group photos';
  if (existsSync(CELEBA)) {
    const people = readdirSync(CELEBA)
      .filter((d) => statSync(path.join(CELEBA, d)).isDirectory())
      .sort();
    for (const person of people.slice(0, 56)) {
      const first = readdirSync(path.join(CELEBA, person)).sort()[0];
      if (first) sources.push(path.join(CELEBA, person, first));
    }
    from += ` and one photo of each of ${sources.length - 5} people of the development set`;
  } else {
    process.stderr.write(
      `bench peer: ${CELEBA} absent: the large set is made from the bundled photos only\n`,
    );
    // four sizes of each group photo instead
    sources.push(...sources.slice(0, 5), ...sources.slice(0, 5), ...sources.slice(0, 5));
  }
  const files: string[] = [];
  for (const [i, src] of sources.entries()) {
    const meta = await sharp(src).metadata();
    const long = 2000 + ((i * 97) % 2600);
    const scale = long / Math.max(meta.width!, meta.height!);
    const file = path.join(dir, `large${String(i).padStart(2, '0')}.jpg`);
    await sharp(src)
      .resize(Math.round(meta.width! * scale), Math.round(meta.height! * scale))
      .jpeg({ quality: 90 })
      .toFile(file);
    files.push(file);
  }
  return { files, sources: from };
}

function readLines(file: string): FaceLine[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as FaceLine & { error?: unknown })
    .filter((l) => !l.error && l.bbox);
}

function iou(p: number[], q: number[]): number {
  const ix = Math.max(0, Math.min(p[0]! + p[2]!, q[0]! + q[2]!) - Math.max(p[0]!, q[0]!));
  const iy = Math.max(0, Math.min(p[1]! + p[3]!, q[1]! + q[3]!) - Math.max(p[1]!, q[1]!));
  const inter = ix * iy;
  const union = p[2]! * p[3]! + q[2]! * q[3]! - inter;
  return union > 0 ? inter / union : 0;
}

function cosine(a: number[], b: number[]): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

/** Faces matched per photo by box IoU ≥ 0.5 (greedy, best first), and the embedding cosines. */
function agreement(ours: FaceLine[], peer: FaceLine[]) {
  const byPhoto = (lines: FaceLine[]) => {
    const m = new Map<string, FaceLine[]>();
    for (const l of lines) m.set(path.resolve(l.photo), [...(m.get(path.resolve(l.photo)) ?? []), l]);
    return m;
  };
  const a = byPhoto(ours);
  const b = byPhoto(peer);
  const cosines: number[] = [];
  const below: { photo: string; bbox: number[]; cosine: number }[] = [];
  let onlyOurs = 0;
  let onlyPeer = 0;
  for (const photo of new Set([...a.keys(), ...b.keys()])) {
    const fa = a.get(photo) ?? [];
    const fb = [...(b.get(photo) ?? [])];
    const pairs = fa
      .flatMap((x, i) => fb.map((y, j) => ({ i, j, o: iou(x.bbox, y.bbox) })))
      .filter((p) => p.o >= 0.5)
      .sort((p, q) => q.o - p.o);
    const usedA = new Set<number>();
    const usedB = new Set<number>();
    for (const p of pairs) {
      if (usedA.has(p.i) || usedB.has(p.j)) continue;
      usedA.add(p.i);
      usedB.add(p.j);
      const c = cosine(fa[p.i]!.embedding, fb[p.j]!.embedding);
      cosines.push(c);
      if (c < 0.99)
        below.push({ photo: path.relative(repo, photo), bbox: fa[p.i]!.bbox.map(Math.round), cosine: r3(c) });
    }
    onlyOurs += fa.length - usedA.size;
    onlyPeer += fb.length - usedB.size;
  }
  return {
    facesOurs: ours.length,
    facesPeer: peer.length,
    matched: cosines.length,
    onlyOurs,
    onlyPeer,
    sameFaces: onlyOurs === 0 && onlyPeer === 0,
    minCosine: r3(Math.min(...cosines)),
    medianCosine: r3(median(cosines)),
    facesBelow099: below.length,
    // where the two break the preprocessing contract (models/README.md), e.g. a colour profile
    // one of them does not apply, or a detection copy resampled with another filter
    below099: below,
  };
}

async function compareOn(name: string, files: string[], reps: number, work: string) {
  const models = resolveModelsDir();
  const listFile = path.join(work, `${name}.files`);
  const ourCmd = [
    'node',
    path.join(repo, 'bin/facepipe.mjs'),
    'analyze',
    '--embeddings',
    '--models',
    models,
    ...files,
  ];
  const peerCmd = [
    path.join(benchDir, '.venv/bin/python'),
    path.join(peerDir, 'peer_pipeline.py'),
    '--models',
    models,
    ...files,
  ];
  const runs: { ours: ProcessCost[]; peer: ProcessCost[] } = { ours: [], peer: [] };
  const oursOut = path.join(work, `${name}.ours.jsonl`);
  const peerOut = path.join(work, `${name}.peer.jsonl`);
  for (let r = 0; r < reps; r++) {
    // interleaved: A B, B A, … so that a change in the machine's load falls on both
    const order = r % 2 === 0 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const who of order) {
      const cost =
        who === 'ours'
          ? measured(ourCmd, oursOut, listFile + '.cost', repo)
          : measured(peerCmd, peerOut, listFile + '.cost', repo);
      if (cost.rc !== 0) throw new Error(`bench peer: ${who} exited ${cost.rc} on ${name}`);
      runs[who].push(cost);
      process.stderr.write(
        `bench peer: ${name} ${who} cpu ${(cost.user + cost.sys).toFixed(2)} s wall ${cost.wall.toFixed(2)} s rss ${(cost.maxRssKiB / 1024).toFixed(0)} MiB\n`,
      );
    }
  }
  const cpu = (c: ProcessCost) => c.user + c.sys;
  const ratioOf = (f: (c: ProcessCost) => number) =>
    r3(median(runs.ours.map((c, i) => f(c) / f(runs.peer[i]!))));
  const side = (cs: ProcessCost[]) => ({
    cpuSeconds: r3(median(cs.map(cpu))),
    cpuMsPerPhoto: r3((1000 * median(cs.map(cpu))) / files.length),
    userSeconds: r3(median(cs.map((c) => c.user))),
    sysSeconds: r3(median(cs.map((c) => c.sys))),
    wallSeconds: r3(median(cs.map((c) => c.wall))),
    peakRssMiB: r3(median(cs.map((c) => c.maxRssKiB / 1024))),
  });
  return {
    photos: files.length,
    reps,
    facepipe: side(runs.ours),
    peer: side(runs.peer),
    // medians of the per-pair ratios (each pair ran back to back)
    ratio: { cpu: ratioOf(cpu), wall: ratioOf((c) => c.wall), peakMemory: ratioOf((c) => c.maxRssKiB) },
    agreement: agreement(readLines(oursOut), readLines(peerOut)),
  };
}

export async function run(opts: { full: boolean }): Promise<Record<string, unknown>> {
  ensurePeerVenv();
  const reps = Number(process.env.FACEPIPE_BENCH_REPS ?? (opts.full ? 5 : 3));
  const work = mkdtempSync(path.join(os.tmpdir(), 'facepipe-peer-'));
  try {
    const fixtures = walkImages(path.join(repo, 'examples'));
    const largeDir = path.join(work, 'large');
    mkdirSync(largeDir);
    const large = await makeLargeSet(largeDir);
    const sizes = await Promise.all(large.files.map((f) => sharp(f).metadata()));
    const fixtureFigures = await compareOn('fixtures', fixtures, reps, work);
    const largeFigures = await compareOn('large', large.files, reps, work);
    const acceptance = {
      cpuPerPhotoFixtures: fixtureFigures.ratio.cpu <= 1.0,
      cpuPerPhotoLarge: largeFigures.ratio.cpu <= 1.0,
      peakMemoryLarge: largeFigures.ratio.peakMemory <= 1.2,
      sameFaces: fixtureFigures.agreement.sameFaces && largeFigures.agreement.sameFaces,
      cosineAtLeast099:
        fixtureFigures.agreement.facesBelow099 === 0 && largeFigures.agreement.facesBelow099 === 0,
    };
    return {
      peer: 'bench/peer/peer_pipeline.py (opencv-python-headless, onnxruntime, numpy, pillow from PyPI, default threads)',
      cores: os.availableParallelism(),
      fixtures: fixtureFigures,
      large: {
        madeFrom: large.sources,
        largestPx: Math.max(...sizes.map((m) => Math.max(m.width!, m.height!))),
        ...largeFigures,
      },
      acceptance,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
