import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { rng } from '../core/random.ts';
import { loadManifest, resolveModelsDir } from '../pipeline/models.ts';
import {
  buildCache,
  CACHE_DIR,
  CACHE_SCORE_THRESHOLD,
  cacheFile,
  readCache,
  type CachedFace,
} from './realphotos/analysisCache.ts';

/**
 * The detector's false-positive rate on the development sets, counted by hand
 * (`npm run bench -- --only=detectorfp`). No box labels exist, so:
 * 1. candidates: every detection that is NOT the largest of its photo (the largest is the labelled
 *    main person), with a short side of at least the manifest's minFaceSize (smaller ones never
 *    reach clustering), from the per-face analysis cache (bench/.cache, detector threshold 0.3,
 *    one box per face as shipped; built with the real analyzer when missing);
 * 2. a seeded sample stratified by detector score (PER_BAND per band, both sets pooled);
 * 3. one contact sheet per band (bench/.cache/detectorfp/, git-ignored: the photos' terms forbid
 *    shipping anything derived from them): each tile the box (red) with a quarter of its size
 *    around it, numbered;
 * 4. a person looks at the sheets and writes the tiles that show no face into
 *    bench/results/detectorfp-handcount.json, with a fingerprint of the sample they looked at; this
 *    benchmark reads it back and turns it into a rate per band (Wilson 95% interval), the expected
 *    non-faces among all candidates, and what each higher threshold would remove and cost.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const SETS = ['celeba-dev', 'lfw-dev'];
/** detector-score bands [lo, hi); the first lies below the shipped threshold (for comparison) */
export const BANDS: [number, number][] = [
  [CACHE_SCORE_THRESHOLD, 0.5],
  [0.5, 0.6],
  [0.6, 0.7],
  [0.7, 0.8],
  [0.8, 1.01],
];
const PER_BAND = 30;
const SEED = 20261201;
const TILE = 200;
const COLUMNS = 5;
export const SHEET_DIR = path.join(CACHE_DIR, 'detectorfp');
export const HAND_COUNT_FILE = path.join(here, 'results', 'detectorfp-handcount.json');

interface Candidate {
  set: string;
  dir: string;
  file: string;
  face: CachedFace;
}

/** what a person recorded after looking at one band's sheet */
interface BandCount {
  band: [number, number];
  /** sha256 (16 hex) of the sample's tile keys, in sheet order: the count is for exactly these */
  fingerprint: string;
  sampled: number;
  /** 1-based tile numbers that show no face (a chin, an ear, hair, a hand, background, a pattern) */
  nonFaces: number[];
  /** tiles too blurred, dark or cut to tell: counted as non-faces in the upper ("strict") rate */
  unsure: number[];
}

interface HandCount {
  method: string;
  countedBy: string;
  date: string;
  bands: BandCount[];
}

/** the development sets: in FACEPIPE_DATASETS when set, else the team's shared/datasets beside the checkout */
function datasetDirs(): string[] {
  const given = process.env.FACEPIPE_DATASETS;
  const roots = given
    ? [given]
    : [
        path.resolve(here, '..', '..', 'shared', 'datasets'),
        path.resolve(here, '..', '..', '..', 'shared', 'datasets'),
      ];
  const root = roots.find((r) => SETS.some((s) => existsSync(path.join(r, s))));
  return root ? SETS.map((s) => path.join(root, s)).filter((d) => existsSync(d)) : [];
}

export async function run(): Promise<Record<string, unknown>> {
  const dirs = datasetDirs();
  if (dirs.length === 0) {
    const reason = `the development sets (${SETS.join(', ')}) are not there: set FACEPIPE_DATASETS or place them in shared/datasets beside the checkout`;
    process.stderr.write(`bench detectorfp: skipped (${reason})\n`);
    return { skipped: true, reason };
  }
  for (const dir of dirs) if (!existsSync(cacheFile(dir))) await buildCache(dir);
  const detector = loadManifest(resolveModelsDir()).detectors[0]!;
  const { score: shipped, minFaceSize } = detector.thresholds;

  const candidates: Candidate[] = [];
  const largestByBand = BANDS.map(() => 0);
  const smallSkipped = { count: 0 };
  for (const dir of dirs) {
    const set = path.basename(dir);
    for (const photo of await readCache(dir)) {
      const largest = largestFace(photo.faces);
      for (const face of photo.faces) {
        const b = bandOf(face.score);
        if (b < 0) continue;
        if (face === largest) largestByBand[b]!++;
        else if (Math.min(face.bbox[2], face.bbox[3]) < minFaceSize) smallSkipped.count++;
        else candidates.push({ set, dir, file: photo.file, face });
      }
    }
  }
  const population = BANDS.map((_, b) => candidates.filter((c) => bandOf(c.face.score) === b));
  const samples = population.map((list) => seededSample(list, PER_BAND, SEED));
  mkdirSync(SHEET_DIR, { recursive: true });
  const sheets: string[] = [];
  for (const [b, sample] of samples.entries()) sheets.push(await contactSheet(sample, BANDS[b]!));
  const fingerprints = samples.map(fingerprint);

  const hand = readHandCount();
  const bands = BANDS.map((band, b) => {
    const counted = hand?.bands.find((h) => h.band[0] === band[0] && h.band[1] === band[1]);
    const matches = counted?.fingerprint === fingerprints[b];
    const n = samples[b]!.length;
    const nonFaces = matches ? counted.nonFaces.length : null;
    const unsure = matches ? counted.unsure.length : null;
    const rate = nonFaces === null || n === 0 ? null : nonFaces / n;
    const strict = nonFaces === null || unsure === null || n === 0 ? null : (nonFaces + unsure) / n;
    return {
      band: bandLabel(band),
      belowShippedThreshold: band[1] <= shipped,
      candidates: population[b]!.length,
      candidatesPerSet: Object.fromEntries(
        dirs.map((d) => [path.basename(d), population[b]!.filter((c) => c.dir === d).length]),
      ),
      largestFacesInBand: largestByBand[b],
      sampled: n,
      sheet: path.relative(path.join(here, '..'), sheets[b]!),
      fingerprint: fingerprints[b],
      handCount: counted ? (matches ? 'matches this sample' : 'for another sample: not used') : 'missing',
      nonFaces,
      nonFaceRate: rate === null ? null : round(rate, 3),
      nonFaceRate95: nonFaces === null ? null : wilson(nonFaces, n).map((x) => round(x, 3)),
      unsure,
      /** the unsure tiles counted as non-faces too: an upper estimate */
      strictNonFaceRate: strict === null ? null : round(strict, 3),
      /** of the sampled non-faces, how many the magnitude gate keeps (the rest are dropped anyway) */
      nonFacesPassingMagnitudeGate:
        matches && counted
          ? counted.nonFaces.filter((t) => passesGate(samples[b]![t - 1]!.face.magnitude)).length
          : null,
      expectedNonFaces: rate === null ? null : Math.round(rate * population[b]!.length),
      expectedNonFacesStrict: strict === null ? null : Math.round(strict * population[b]!.length),
    };
  });
  const figures = {
    method:
      'candidates = every detection but the largest of its photo, short side ≥ minFaceSize, score ≥ 0.3 (cache); ' +
      `a seeded sample of ${PER_BAND} per score band, both sets pooled; non-faces counted by hand on the contact sheets`,
    shippedThreshold: shipped,
    minFaceSize,
    nmsContainment: detector.thresholds.nmsContainment,
    seed: SEED,
    sets: dirs.map((d) => path.basename(d)),
    candidatesBelowMinFaceSize: smallSkipped.count,
    handCount: hand ? { countedBy: hand.countedBy, date: hand.date, method: hand.method } : null,
    bands,
    raisingTheThreshold: thresholdEffects(bands, shipped),
  };
  printSummary(figures);
  return figures;
}

/** the largest box of a photo (the labelled main person) */
function largestFace(faces: CachedFace[]): CachedFace | undefined {
  let best: CachedFace | undefined;
  for (const f of faces) if (!best || f.bbox[2] * f.bbox[3] > best.bbox[2] * best.bbox[3]) best = f;
  return best;
}

function bandOf(score: number): number {
  return BANDS.findIndex(([lo, hi]) => score >= lo && score < hi);
}

function bandLabel([lo, hi]: [number, number]): string {
  return `${lo.toFixed(2)}–${Math.min(hi, 1).toFixed(2)}`;
}

/** `k` items drawn without replacement (seeded Fisher–Yates), in their original order */
function seededSample<T>(items: T[], k: number, seed: number): T[] {
  const idx = items.map((_, i) => i);
  const next = rng(seed);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx
    .slice(0, k)
    .sort((a, b) => a - b)
    .map((i) => items[i]!);
}

function tileKey(c: Candidate): string {
  return `${c.set}/${c.file}#${c.face.bbox.map((v) => Math.round(v)).join(',')}`;
}

function fingerprint(sample: Candidate[]): string {
  return createHash('sha256').update(sample.map(tileKey).join('\n')).digest('hex').slice(0, 16);
}

/** One band's tiles, numbered from 1 in sample order: the box in red with context around it. */
async function contactSheet(sample: Candidate[], band: [number, number]): Promise<string> {
  const label = 22;
  const rows = Math.max(1, Math.ceil(sample.length / COLUMNS));
  const tiles = await Promise.all(
    sample.map(async (c, i) => ({
      input: await tile(c, i + 1),
      left: (i % COLUMNS) * TILE,
      top: 30 + Math.floor(i / COLUMNS) * (TILE + label),
    })),
  );
  const width = COLUMNS * TILE;
  const height = 30 + rows * (TILE + label);
  const captions = sample
    .map((c, i) => {
      const x = (i % COLUMNS) * TILE + 4;
      const y = 30 + Math.floor(i / COLUMNS) * (TILE + label) + TILE + 16;
      return `<text x="${x}" y="${y}">#${i + 1}  ${c.face.score.toFixed(2)}  ${c.set.slice(0, 6)}</text>`;
    })
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><style>text{font:14px 'DejaVu Sans',sans-serif;fill:#111}</style><text x="6" y="21" style="font-weight:bold">detector score ${bandLabel(band)}: ${sample.length} non-largest detections</text>${captions}</svg>`;
  const out = path.join(SHEET_DIR, `band-${bandLabel(band).replace('–', '-')}.png`);
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }, ...tiles])
    .png()
    .toFile(out);
  return out;
}

/** the detection with a quarter of its size around it, scaled to TILE, the box drawn in red */
async function tile(c: Candidate, n: number): Promise<Buffer> {
  // decoded once, EXIF-oriented as the analyzer saw it (the boxes are in those pixels)
  const { data, info } = await sharp(path.join(c.dir, c.file))
    .rotate()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width, height } = info;
  const img = sharp(data, { raw: { width, height, channels: info.channels } });
  const [x, y, w, h] = c.face.bbox;
  const side = Math.max(w, h) * 1.5;
  const left = Math.max(0, Math.round(x + w / 2 - side / 2));
  const top = Math.max(0, Math.round(y + h / 2 - side / 2));
  const cw = Math.max(1, Math.min(width - left, Math.round(side)));
  const ch = Math.max(1, Math.min(height - top, Math.round(side)));
  const scale = TILE / Math.max(cw, ch);
  const crop = await img
    .extract({ left, top, width: cw, height: ch })
    .resize(Math.max(1, Math.round(cw * scale)), Math.max(1, Math.round(ch * scale)))
    .png()
    .toBuffer();
  const box = `<svg xmlns="http://www.w3.org/2000/svg" width="${TILE}" height="${TILE}"><rect x="${(x - left) * scale}" y="${(y - top) * scale}" width="${w * scale}" height="${h * scale}" fill="none" stroke="#e00" stroke-width="2"/><text x="4" y="16" style="font:bold 14px 'DejaVu Sans',sans-serif;fill:#ff0;stroke:#000;stroke-width:0.6">${n}</text></svg>`;
  return sharp({ create: { width: TILE, height: TILE, channels: 3, background: '#777777' } })
    .composite([
      { input: crop, left: 0, top: 0 },
      { input: Buffer.from(box), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
}

function readHandCount(): HandCount | undefined {
  if (!existsSync(HAND_COUNT_FILE)) return undefined;
  return JSON.parse(readFileSync(HAND_COUNT_FILE, 'utf8')) as HandCount;
}

let gate: number | undefined;
function passesGate(magnitude: number): boolean {
  gate ??= loadManifest(resolveModelsDir()).embedders[0]!.quality.dropBelowMagnitude;
  return magnitude >= gate;
}

/** Wilson score interval (95%) of k successes in n */
function wilson(k: number, n: number): [number, number] {
  const z = 1.96;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

type BandFigure = {
  band: string;
  belowShippedThreshold: boolean;
  candidates: number;
  largestFacesInBand: number | undefined;
  expectedNonFaces: number | null;
  expectedNonFacesStrict: number | null;
};

/**
 * For each threshold above the shipped one (the band edges): the non-faces it would remove from
 * what reaches clustering, against the real faces it would lose (other people's faces, and the
 * largest faces of photos, whose label the benchmark scores); with the unsure tiles counted as
 * faces (`counted`) and as non-faces (`strict`).
 */
function thresholdEffects(bands: BandFigure[], shipped: number) {
  const above = bands.filter((b) => !b.belowShippedThreshold);
  const totalCandidates = above.reduce((s, b) => s + b.candidates, 0);
  const sum = (list: BandFigure[], f: (b: BandFigure) => number | null) =>
    list.reduce<number | null>((s, b) => (s === null || f(b) === null ? null : s + f(b)!), 0);
  const allDetections = totalCandidates + above.reduce((s, b) => s + (b.largestFacesInBand ?? 0), 0);
  const estimate = (nonFaces: (b: BandFigure) => number | null) => {
    const total = sum(above, nonFaces);
    return {
      nonFaceShareAtShipped: total === null ? null : round(total / Math.max(1, totalCandidates), 3),
      /** the same non-faces over every detection at the shipped threshold, largest faces included */
      nonFaceShareOfAllDetections: total === null ? null : round(total / Math.max(1, allDetections), 4),
      higher: above.slice(1).map((next, i) => {
        const cut = above.slice(0, i + 1);
        const removed = sum(cut, nonFaces);
        const cutCandidates = cut.reduce((s, b) => s + b.candidates, 0);
        return {
          threshold: Number(next.band.split('–')[0]),
          removedNonFaces: removed,
          removedOtherFaces: removed === null ? null : cutCandidates - removed,
          lostLargestFaces: cut.reduce((s, b) => s + (b.largestFacesInBand ?? 0), 0),
          nonFaceShareAfter:
            total === null || removed === null
              ? null
              : round((total - removed) / Math.max(1, totalCandidates - cutCandidates), 3),
        };
      }),
    };
  };
  return {
    shipped,
    counted: estimate((b) => b.expectedNonFaces),
    strict: estimate((b) => b.expectedNonFacesStrict),
  };
}

function printSummary(f: {
  bands: (BandFigure & {
    sampled: number;
    nonFaces: number | null;
    nonFaceRate95: number[] | null;
    handCount: string;
  })[];
}): void {
  for (const b of f.bands)
    process.stderr.write(
      `bench detectorfp: score ${b.band}: ${b.candidates} candidates, ${b.sampled} sampled, ` +
        (b.nonFaces === null
          ? `hand count ${b.handCount}\n`
          : `${b.nonFaces} non-faces (95% ${b.nonFaceRate95!.join('–')}), ~${b.expectedNonFaces} in all\n`),
    );
}

function round(x: number, digits: number): number {
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}
