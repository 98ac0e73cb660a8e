import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openFaceDatabase, type EmbeddedFaceDatabase } from '../indexers/database.ts';
import { faceRecord, tempDataDir } from '../indexers/testUtil.ts';
import { IdentityService } from './identityService.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { loadManifest } from '../pipeline/models.ts';
import { indexFaceRecords, recordPhoto, storeFaceRecords } from './ingestStep.ts';
import type { FaceRecord } from '../schemas/face.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const embedder = loadManifest(path.join(repoRoot, 'models')).embedders[0];

/** The 40 reference crops' real MobileFaceNet embeddings (8 people × 5), one photo each. */
function cropRecords(): { record: FaceRecord; person: string }[] {
  const ref = JSON.parse(
    readFileSync(path.join(repoRoot, 'test/fixtures/reference/mobilefacenet-crops.json'), 'utf8'),
  ) as {
    faces: { file: string; identity: string; embedding: number[] }[];
  };
  return ref.faces.map((f) => ({
    record: faceRecord(`crop:${f.file}`, 0, f.embedding, embedder.name),
    person: f.identity,
  }));
}

let db: EmbeddedFaceDatabase | undefined;
let dir: string | undefined;
afterEach(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  db = undefined;
});

function open(): { db: EmbeddedFaceDatabase; identities: IdentityService } {
  dir = tempDataDir('facepipe-stage-');
  db = openFaceDatabase(dir, { modelId: embedder.name, dim: embedder.embeddingDim });
  return { db, identities: new IdentityService(db, clusterParamsFromManifest(embedder)) };
}

const assignment = (d: EmbeddedFaceDatabase) => new Map(d.listFaces().map((f) => [f.faceId, f.identityId]));

describe('indexFaceRecords (the step every transport shares)', () => {
  it('stores, indexes and assigns new faces; a replay of any part changes nothing', () => {
    const { db, identities } = open();
    const crops = cropRecords();
    const records = crops.map((c) => c.record);
    const first = indexFaceRecords(db, identities, records.slice(0, 20));
    expect(first.length).toBeGreaterThan(0);
    const second = indexFaceRecords(db, identities, records); // 20 replayed + 20 new
    expect(
      second.every((e) => !records.slice(0, 20).some((r) => r.faceId === e.faceId && e.type === 'created')),
    ).toBe(true);
    const before = {
      counts: db.counts(),
      assignment: assignment(db),
      events: db.listIdentityEvents(0).length,
    };
    expect(before.counts.faces).toBe(40);

    // the whole stream again, and a batch with a face repeated inside it
    expect(indexFaceRecords(db, identities, records)).toEqual([]);
    expect(indexFaceRecords(db, identities, [records[3], records[3], records[30]])).toEqual([]);
    expect(db.counts()).toEqual(before.counts);
    expect(assignment(db)).toEqual(before.assignment);
    expect(db.listIdentityEvents(0)).toHaveLength(before.events);

    // identities follow the people: faces of one identity are one person
    const personOf = new Map(crops.map((c) => [c.record.faceId, c.person]));
    const people = new Map<string, Set<string>>();
    for (const [faceId, identityId] of before.assignment) {
      if (identityId)
        people.set(identityId, (people.get(identityId) ?? new Set()).add(personOf.get(faceId)!));
    }
    expect(people.size).toBeGreaterThan(0);
    for (const set of people.values()) expect(set.size).toBe(1);
  });

  it('reports only kept faces new to the store for assignment, and records photos', () => {
    const { db } = open();
    const [a, b] = cropRecords().map((c) => c.record);
    const dropped = { ...b, kept: false, reason: 'low_magnitude' as const };
    expect(storeFaceRecords(db, [a, dropped])).toEqual([a.faceId]);
    expect(storeFaceRecords(db, [a, dropped])).toEqual([]);
    recordPhoto(db, {
      v: 1,
      photoId: a.photoId,
      uri: 'file:///x.png',
      width: 150,
      height: 150,
      contentHash: 'ab',
      modelId: embedder.name,
      faceIds: [a.faceId],
      at: new Date().toISOString(),
    });
    expect(db.getPhoto(a.photoId)?.status).toBe('done');
    expect(db.counts()).toMatchObject({ photos: 1, faces: 2, kept: 1, dropped: 1 });
  });
});
