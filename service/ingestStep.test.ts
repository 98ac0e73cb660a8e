import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedFaceDatabase } from '../indexers/database.ts';
import { faceRecord, photoResult, tempDatabases } from '../indexers/testUtil.ts';
import { IdentityService } from './identityService.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { loadManifest } from '../pipeline/models.ts';
import {
  indexFaceRecords,
  ingestFailure,
  ingestPhoto,
  storeFaceRecords,
  type IngestTarget,
} from './ingestStep.ts';
import { thumbPath } from '../pipeline/report.ts';
import type { DeadLetter } from '../schemas/deadLetter.ts';
import type { PhotoResult } from '../schemas/photoEvent.ts';
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

const databases = tempDatabases('facepipe-stage-');
afterEach(() => databases.cleanUp());

function open(): { db: EmbeddedFaceDatabase; identities: IdentityService } {
  const { db } = databases.open({ modelId: embedder.name, dim: embedder.embeddingDim });
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

  it('reports only kept faces new to the store for assignment', () => {
    const { db } = open();
    const [a, b] = cropRecords().map((c) => c.record);
    const dropped = { ...b, kept: false, reason: 'low_magnitude' as const };
    expect(storeFaceRecords(db, [a, dropped])).toEqual([a.faceId]);
    expect(storeFaceRecords(db, [a, dropped])).toEqual([]);
    expect(storeFaceRecords(db, [a, dropped], { placeUnassigned: true })).toEqual([a.faceId]);
    expect(db.counts()).toMatchObject({ faces: 2, kept: 1, dropped: 1 });
  });
});

/** A photo result listing `faces`, as both paths build it. */
const result = (photoId: string, faces: FaceRecord[], contentHash: string): PhotoResult =>
  photoResult(photoId, faces, contentHash, embedder.name);

describe('ingestPhoto / ingestFailure (the one ingest step)', () => {
  const TINY_JPEG = Buffer.from('ffd8ffe000104a464946', 'hex').toString('base64');

  function target(): IngestTarget & { letters: DeadLetter[] } {
    const { db, identities } = open();
    const letters: DeadLetter[] = [];
    return {
      db,
      identities,
      dataDir: db.dataDir,
      letters,
      deadLetters: { record: (d) => (letters.push(d), true) },
    };
  }

  /** The identity's template recomputed from the faces the store says it holds. */
  function templateOf(t: IngestTarget, identityId: string): number[] {
    const sum = new Array<number>(embedder.embeddingDim).fill(0);
    for (const f of t.db.listFaces({ identityId, kept: true })) f.embedding.forEach((x, i) => (sum[i] += x));
    return sum;
  }

  it("replaces a changed photo's faces: the old ones leave the store, the index, the thumbnails and the template", () => {
    const t = target();
    const crops = cropRecords();
    const people = [...new Set(crops.map((c) => c.person))];
    const ofPerson = (p: string) => crops.filter((c) => c.person === p).map((c) => c.record);
    const [alice, bob] = [ofPerson(people[0]), ofPerson(people[1])];
    // four single-face photos of the first person make an identity
    for (const r of alice.slice(0, 4)) ingestPhoto(t, { photo: result(r.photoId, [r], 'h'), faces: [r] });
    // a group photo: the fifth face of that person, then the photo changes to show the second person
    const group = 'p_group';
    const before = { ...faceRecord(group, 0, alice[4].embedding, embedder.name), thumbnail: TINY_JPEG };
    const first = ingestPhoto(t, { photo: result(group, [before], 'v1'), faces: [before] });
    expect(first).toMatchObject({ kept: 1, removed: 0 });
    const identity = t.db.getFace(before.faceId)!.identityId!;
    expect(identity).not.toBeNull();
    expect(t.db.getIdentity(identity)!.faceCount).toBe(5);
    expect(existsSync(thumbPath(t.dataDir, before.faceId))).toBe(true);

    const after = { ...faceRecord(group, 1, bob[0].embedding, embedder.name), thumbnail: TINY_JPEG };
    const second = ingestPhoto(t, { photo: result(group, [after], 'v2'), faces: [after] });
    expect(second).toMatchObject({ kept: 1, removed: 1 });
    expect(t.db.getFace(before.faceId)).toBeUndefined();
    expect(t.db.facesOfPhoto(group).map((f) => f.faceId)).toEqual([after.faceId]);
    expect(t.db.search(before.embedding, 10).map((n) => n.faceId)).not.toContain(before.faceId);
    expect(existsSync(thumbPath(t.dataDir, before.faceId))).toBe(false);
    expect(existsSync(thumbPath(t.dataDir, after.faceId))).toBe(true);
    const stored = t.db.getIdentity(identity)!;
    expect(stored.faceCount).toBe(4);
    const expected = templateOf(t, identity);
    Array.from(stored.template).forEach((x, i) => expect(x).toBeCloseTo(expected[i], 3));
    expect(t.db.getPhoto(group)).toMatchObject({ status: 'done', contentHash: 'v2' });

    // the same result again (a replay) changes nothing
    const events = t.db.listIdentityEvents(0).length;
    expect(ingestPhoto(t, { photo: result(group, [after], 'v2'), faces: [after] }).events).toEqual([]);
    expect(t.db.listIdentityEvents(0)).toHaveLength(events);
  });

  it("a failure forgets the photo's faces, marks it failed and records one dead letter", () => {
    const t = target();
    const [a] = cropRecords().map((c) => c.record);
    ingestPhoto(t, { photo: result(a.photoId, [a], 'h'), faces: [a] });
    const deadLetter: DeadLetter = {
      v: 1,
      id: `file:${a.photoId}`,
      photoId: a.photoId,
      stage: 'analyze',
      code: 'CORRUPT_IMAGE',
      reason: 'truncated',
      attempts: 1,
      at: new Date(Date.now() + 1000).toISOString(),
    };
    expect(ingestFailure(t, deadLetter)).toBe(true);
    expect(t.db.getFace(a.faceId)).toBeUndefined();
    expect(t.db.getPhoto(a.photoId)).toMatchObject({ status: 'failed', error: 'CORRUPT_IMAGE: truncated' });
    expect(t.letters).toEqual([deadLetter]);
  });
});
