import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createAnalyzer, AnalyzeError } from '../../pipeline/analyze.ts';
import { faceCues, type FaceCues } from '../../pipeline/faceCues.ts';
import { collectPhotos } from '../../cli/models.ts';

/**
 * A per-face analysis cache of a labelled folder (one sub-folder per person) for iterating on
 * clustering and quality without analysing thousands of photos again. Every detection at a low
 * detector threshold is kept with its cues; the study decides thresholds afterwards. Written under
 * bench/.cache (git-ignored): the photos' terms forbid shipping anything derived from them.
 */

export interface CachedFace {
  bbox: [number, number, number, number];
  landmarks: [number, number][];
  score: number;
  magnitude: number;
  /** raw feature as base64 float32 */
  embedding: string;
  cues: FaceCues;
}

export interface CachedPhoto {
  file: string;
  label: string;
  width: number;
  height: number;
  faces: CachedFace[];
  error?: string;
}

export const CACHE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '.cache');
/** the detector threshold the cache is analysed at: below any threshold worth considering */
export const CACHE_SCORE_THRESHOLD = 0.3;

export function cacheFile(dir: string): string {
  return path.join(CACHE_DIR, `analysis-${path.basename(path.resolve(dir))}.jsonl`);
}

export async function readCache(dir: string): Promise<CachedPhoto[]> {
  const out: CachedPhoto[] = [];
  const rl = readline.createInterface({ input: createReadStream(cacheFile(dir)) });
  for await (const line of rl) if (line.trim()) out.push(JSON.parse(line) as CachedPhoto);
  return out;
}

export function decodeEmbedding(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

export async function buildCache(dir: string, concurrency = 4): Promise<string> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const file = cacheFile(dir);
  const done = new Set<string>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n'))
      if (line.trim()) done.add((JSON.parse(line) as CachedPhoto).file);
  } else writeFileSync(file, '');
  const { labelled, photos } = collectPhotos(dir);
  if (!labelled) throw new Error(`${dir} is not one folder per person`);
  const todo = photos.filter((p) => !done.has(path.relative(dir, p.file)));
  const analyzer = await createAnalyzer({
    scoreThreshold: CACHE_SCORE_THRESHOLD,
    minFaceSize: 0,
    workers: 2,
    threads: 1,
  });
  const template = analyzer.manifest.alignment.templatePoints;
  let next = 0;
  let count = 0;
  const t0 = Date.now();
  const worker = async () => {
    while (next < todo.length) {
      const p = todo[next++]!;
      const rel = path.relative(dir, p.file);
      let rec: CachedPhoto;
      try {
        const a = await analyzer.analyzeFile(p.file, rel);
        rec = {
          file: rel,
          label: p.person!,
          width: a.width,
          height: a.height,
          faces: a.faces.map((f) => ({
            bbox: f.bbox,
            landmarks: f.landmarks,
            score: f.score,
            magnitude: f.magnitude,
            embedding: Buffer.from(
              f.embedding.buffer,
              f.embedding.byteOffset,
              f.embedding.byteLength,
            ).toString('base64'),
            cues: faceCues({
              bbox: f.bbox,
              score: f.score,
              alignedRgb: f.alignedRgb,
              alignedSize: analyzer.manifest.alignment.size,
              landmarkResiduals: f.landmarkResiduals,
              templatePoints: template,
            }),
          })),
        };
      } catch (err) {
        if (!(err instanceof AnalyzeError)) throw err;
        rec = { file: rel, label: p.person!, width: 0, height: 0, faces: [], error: err.code };
      }
      appendFileSync(file, JSON.stringify(rec) + '\n');
      if (++count % 500 === 0)
        process.stderr.write(
          `${path.basename(dir)}: ${count}/${todo.length} (${((1000 * count) / (Date.now() - t0)).toFixed(1)} photos/s)\n`,
        );
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await analyzer.close();
  }
  return file;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const dir of process.argv.slice(2)) await buildCache(dir);
}
