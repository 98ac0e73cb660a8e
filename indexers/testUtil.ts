import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { faceIdFor, photoIdForFile, type FaceRecord } from '../schemas/face.ts';
import { openFaceDatabase, type EmbeddedFaceDatabase, type OpenOptions } from './database.ts';
import { erasePhotos } from './erasure.ts';
import type { FaceDatabase } from './types.ts';
import type { PhotoResult } from '../schemas/photoEvent.ts';

/** Deterministic pseudo-random generator, so test data is the same on every run. */
export { rng } from '../core/random.ts';

/** A random raw feature of the given dimension with magnitude in [10, 30). */
export function randomFeature(rand: () => number, dim: number): number[] {
  const v = Array.from({ length: dim }, () => gaussian(rand));
  const norm = Math.hypot(...v);
  const magnitude = 10 + 20 * rand();
  return v.map((x) => (x / norm) * magnitude);
}

export function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** A face record as the pipeline would produce it. */
export function faceRecord(
  photoId: string,
  faceIndex: number,
  embedding: number[],
  modelId: string,
  kept = true,
): FaceRecord {
  const bbox: [number, number, number, number] = [faceIndex * 100, 10, 80, 80];
  const magnitude = Math.hypot(...embedding);
  return {
    v: 1,
    faceId: faceIdFor(photoId, modelId, bbox),
    photoId,
    faceIndex,
    bbox,
    landmarks: [
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ],
    score: 0.9,
    embedding,
    magnitude,
    quality: kept ? 0.8 : 0.1,
    kept,
    reason: kept ? undefined : 'low_magnitude',
    modelId,
  };
}

/** The PhotoResult that lists `faces`, as both ingest paths (run, Kafka) build it. */
export function photoResult(
  photoId: string,
  faces: FaceRecord[],
  contentHash: string,
  modelId: string,
): PhotoResult {
  return {
    v: 1,
    photoId,
    uri: `file:///photos/${photoId}.png`,
    width: 640,
    height: 480,
    contentHash,
    modelId,
    faceIds: faces.map((f) => f.faceId),
    at: new Date().toISOString(),
  };
}

export function tempDataDir(prefix = 'facepipe-index-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Databases in fresh temp data dirs, one or more per test: `cleanUp` (the test file's afterEach)
 * closes each and removes its dir.
 */
export function tempDatabases(prefix: string): {
  open(options: OpenOptions): { db: EmbeddedFaceDatabase; dir: string };
  cleanUp(): void;
} {
  let opened: { db: EmbeddedFaceDatabase; dir: string }[] = [];
  return {
    open(options) {
      const dir = tempDataDir(prefix);
      const one = { db: openFaceDatabase(dir, options), dir };
      opened.push(one);
      return one;
    },
    cleanUp() {
      for (const { db, dir } of opened) {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      }
      opened = [];
    },
  };
}

/**
 * Stores a done photo of this file and erases it as a user would: its tombstone then names the
 * photo by id, by path and by content (what the worker and `publish` check).
 */
export function eraseFileAsUser(db: FaceDatabase, file: string): string {
  const photoId = photoIdForFile(file);
  db.upsertPhoto({
    photoId,
    uri: pathToFileURL(file).href,
    library: null,
    width: null,
    height: null,
    contentHash: createHash('sha256').update(readFileSync(file)).digest('hex'),
    status: 'done',
    error: null,
  });
  erasePhotos(db, [photoId], 'user');
  return photoId;
}

/** A logger that records its lines (the database's log lines are part of its contract). */
export function recordingLogger(): {
  lines: { level: string; msg: string; obj: object }[];
  info: (o: object, m: string) => void;
  warn: (o: object, m: string) => void;
} {
  const lines: { level: string; msg: string; obj: object }[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
  };
}
