import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { faceRecord, photoResult, tempDatabases } from '../indexers/testUtil.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { fixturesDir, uncalibratedEmbedderManifest } from '../clustering/testUtil.ts';
import { IdentityService } from '../service/identityService.ts';
import type { IngestTarget } from '../service/ingestStep.ts';
import type { DeadLetter } from '../schemas/deadLetter.ts';
import { applyItems, WaitingPhotos, type IndexerItem } from './indexer.ts';

// The Kafka indexer's last word on a photo: the worker checked the tombstones before it
// published, but a user may erase the photo while its faces are still on the topic.

const manifest = uncalibratedEmbedderManifest();
const embeddings = (
  JSON.parse(readFileSync(path.join(fixturesDir, 'reference', 'mobilefacenet-crops.json'), 'utf8')) as {
    faces: { embedding: number[] }[];
  }
).faces.map((f) => f.embedding);

const databases = tempDatabases('facepipe-indexer-');
afterEach(() => databases.cleanUp());

function target(): IngestTarget {
  const { db, dir } = databases.open({ modelId: manifest.name, dim: manifest.embeddingDim });
  const letters: DeadLetter[] = [];
  return {
    db,
    identities: new IdentityService(db, clusterParamsFromManifest(manifest)),
    dataDir: dir,
    deadLetters: { record: (d) => (letters.push(d), true) },
  };
}

/** A photo's messages as the worker publishes them: its faces, then its PhotoResult. */
function photoItems(
  photoId: string,
  contentHash: string,
  firstOffset: number,
  faceCount: number,
): IndexerItem[] {
  const faces = Array.from({ length: faceCount }, (_, i) =>
    faceRecord(photoId, i, embeddings[(firstOffset + i) % embeddings.length]!, manifest.name),
  );
  const photo = photoResult(photoId, faces, contentHash, manifest.name);
  return [
    ...faces.map((face, i): IndexerItem => ({ kind: 'face', offset: String(firstOffset + i), face })),
    { kind: 'photo', offset: String(firstOffset + faceCount), photo },
  ];
}

describe('the indexer and erased photos', () => {
  it('does not index a photo erased (by id or by content) while its faces were on the topic', () => {
    const t = target();
    t.db.people.addTombstone({
      photoId: 'p_erased',
      uri: '/photos/p_erased.jpg',
      contentHash: null,
      cause: 'test',
    });
    t.db.people.addTombstone({
      photoId: 'p_other',
      uri: '/elsewhere/copy.jpg',
      contentHash: 'h_copy',
      cause: 'test',
    });
    const waiting = new WaitingPhotos();
    const items = [
      ...photoItems('p_erased', 'h_erased', 0, 2),
      ...photoItems('p_copy', 'h_copy', 10, 1),
      ...photoItems('p_kept', 'h_kept', 20, 2),
    ];
    const counts = applyItems(t, waiting, 0, items);

    expect(counts).toMatchObject({ photos: 1, erased: 2, faces: 5 });
    expect(t.db.getPhoto('p_erased')).toBeUndefined();
    expect(t.db.getPhoto('p_copy')).toBeUndefined();
    expect(t.db.facesOfPhoto('p_erased')).toEqual([]);
    expect(t.db.facesOfPhoto('p_copy')).toEqual([]);
    expect(t.db.getPhoto('p_kept')?.status).toBe('done');
    expect(t.db.facesOfPhoto('p_kept')).toHaveLength(2);
    // nothing of the erased photos waits either: their offsets may be committed
    expect(waiting.resolvable(0, '22')).toBe('22');
  });
});
