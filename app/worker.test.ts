import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnalyzer, type Analyzer } from '../pipeline/analyze.ts';
import { DEFAULT_FETCH_POLICY } from '../pipeline/fetchPhoto.ts';
import { kafkaSettings } from '../pipeline/kafka/config.ts';
import { openFaceDatabase, type EmbeddedFaceDatabase } from '../indexers/database.ts';
import { eraseFileAsUser } from '../indexers/testUtil.ts';
import { photoIdForFile } from '../schemas/face.ts';
import { handlePhotoMessage, type PhotoHandlerDeps } from './worker.ts';

// The worker leaves photos a user erased alone: a tombstone in the data dir (by photo id, path or
// content) means the photo is fetched (to know its content) but never analysed nor published.
const crops = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/faceapi-crops');

describe('worker and erased photos', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-worker-erased-'));
  let analyzer: Analyzer;
  let db: EmbeddedFaceDatabase;
  let deps: PhotoHandlerDeps;
  const erasedFile = path.join(crops, 'amy', '1.png');

  beforeAll(async () => {
    analyzer = await createAnalyzer();
    db = openFaceDatabase(path.join(tmp, 'data'), {
      modelId: analyzer.modelId,
      dim: analyzer.dim,
    });
    eraseFileAsUser(db, erasedFile);
    deps = {
      analyzer,
      fetchPolicy: { ...DEFAULT_FETCH_POLICY, fileRoots: [crops, tmp] },
      topics: kafkaSettings('worker').topics,
      maxAttempts: 1,
      retryBackoffMs: 1,
      workerId: 'test',
      erased: (p) => db.people.erased(p) !== undefined,
    };
  });

  afterAll(async () => {
    db?.close();
    await analyzer?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const message = (file: string) => ({
    topic: 'photos',
    partition: 0,
    offset: '0',
    key: null,
    value: Buffer.from(
      JSON.stringify({
        photoId: photoIdForFile(file),
        source: { kind: 'uri', uri: pathToFileURL(file).href },
        createdAt: new Date().toISOString(),
      }),
    ),
  });

  it('publishes nothing for an erased photo, nor for a copy of it elsewhere', async () => {
    const erased = await handlePhotoMessage(message(erasedFile), deps);
    expect(erased.outcome).toBe('erased');
    expect(erased.messages).toEqual([]);
    const copy = path.join(tmp, 'copy-of-amy-1.png');
    copyFileSync(erasedFile, copy);
    const copied = await handlePhotoMessage(message(copy), deps);
    expect(copied.outcome).toBe('erased');
    expect(copied.messages).toEqual([]);
  });

  it('analyses other photos, and the erased one when asked to (no tombstone check)', async () => {
    const other = await handlePhotoMessage(message(path.join(crops, 'amy', '2.png')), deps);
    expect(other.outcome).toBe('faces');
    expect(other.messages.length).toBe(2); // one face, then the photo result
    const included = await handlePhotoMessage(message(erasedFile), { ...deps, erased: undefined });
    expect(included.outcome).toBe('faces');
    expect(included.faces).toBe(1);
  });
});
