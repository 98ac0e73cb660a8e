import { rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openFaceDatabase } from '../indexers/database.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import type { FaceRecord } from '../schemas/face.ts';
import { IdentityEvent } from '../schemas/identityEvent.ts';
import { IdentityService } from './identityService.ts';
import { cropRecord } from './testUtil.ts';
import { evaluate } from '../clustering/metrics.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { groupPhotoFaces, referenceCrops, uncalibratedEmbedderManifest } from '../clustering/testUtil.ts';
import { NotFoundError, RejectedError } from './errors.ts';

const manifest = uncalibratedEmbedderManifest();
const params = clusterParamsFromManifest(manifest);
const crops = referenceCrops(params.qualityRange);
const MODEL = manifest.name;
const dirs: string[] = [];
const open: FaceDatabase[] = [];

afterEach(() => {
  for (const db of open.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const record = cropRecord;

/** a database holding the 40 real crops; returns the face id of each crop, in fixture order */
function cropDatabase(): { db: FaceDatabase; ids: string[]; truthOf: Map<string, string> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-cluster-'));
  dirs.push(dir);
  const db = openFaceDatabase(dir, { modelId: MODEL, dim: manifest.embeddingDim });
  open.push(db);
  const records = crops.faces.map((f, i) => record(f.id, crops.raw[i]));
  db.upsertFaces(records);
  const ids = records.map((r) => r.faceId);
  return { db, ids, truthOf: new Map(ids.map((id, i) => [id, crops.truth[i]])) };
}

function assignmentOf(db: FaceDatabase, ids: string[]): (string | null)[] {
  return ids.map((id) => db.getFace(id)!.identityId);
}

function identityOfPerson(db: FaceDatabase, ids: string[], person: string): string {
  const id = db.getFace(ids[crops.truth.indexOf(person)])!.identityId;
  if (!id) throw new Error(`${person} has no identity`);
  return id;
}

describe('IdentityService', () => {
  it('assigns new faces online, records valid events, and recovers the 8 real identities', () => {
    const { db, ids } = cropDatabase();
    const service = new IdentityService(db, params);
    const events = service.assignNew(ids);
    for (const e of events) IdentityEvent.parse(e);
    expect(events.filter((e) => e.type === 'created').length).toBeGreaterThanOrEqual(8);
    expect(db.listIdentityEvents().length).toBe(events.length);
    const e = evaluate(crops.truth, assignmentOf(db, ids));
    expect(e.bcubed.f).toBeGreaterThanOrEqual(0.9);
    expect(service.assignNew(ids)).toEqual([]); // placed faces are not placed again
  });

  it('recluster keeps named identities with their ids and names', () => {
    const { db, ids } = cropDatabase();
    const service = new IdentityService(db, params);
    service.assignNew(ids);
    const named = ['amy', 'bernadette', 'howard'].map((p) => identityOfPerson(db, ids, p));
    named.forEach((id, i) => service.rename(id, `person ${i}`));
    const result = service.recluster();
    expect(result.clusters).toBe(8);
    expect(result.assigned + result.unassigned).toBe(40);
    for (const e of result.events) IdentityEvent.parse(e);
    ['amy', 'bernadette', 'howard'].forEach((p, i) => {
      expect(identityOfPerson(db, ids, p)).toBe(named[i]);
      expect(db.getIdentity(named[i])!.name).toBe(`person ${i}`);
    });
    expect(evaluate(crops.truth, assignmentOf(db, ids)).bcubed.f).toBeGreaterThanOrEqual(0.9);
    // a second recluster changes nothing
    expect(service.recluster().events.filter((e) => e.type !== 'renamed')).toEqual([]);
  });

  it('a stored "different people" correction is never violated by recluster or online steps', () => {
    const setup = () => {
      const { db, ids } = cropDatabase();
      const service = new IdentityService(db, params);
      service.assignNew(ids);
      const amy = identityOfPerson(db, ids, 'amy');
      // split amy's identity in two, as an early online step might have
      const amyFaces = ids.filter((_, i) => crops.truth[i] === 'amy');
      db.createIdentity('id_split');
      for (const f of amyFaces.slice(0, 2)) db.setFaceIdentity(f, 'id_split');
      return { db, service, amy, amyFaces };
    };
    // without the correction, a recluster reunites the two halves
    const control = setup();
    control.service.recluster();
    expect(new Set(control.amyFaces.map((f) => control.db.getFace(f)!.identityId)).size).toBe(1);

    const { db, service, amy, amyFaces } = setup();
    service.markDifferent(amy, 'id_split');
    service.recluster();
    const groups = () => new Set(amyFaces.map((f) => db.getFace(f)!.identityId));
    expect(db.getIdentity(amy)).toBeDefined();
    expect(db.getIdentity('id_split')).toBeDefined();
    expect(groups().has(amy) && groups().has('id_split')).toBe(true);
    // a new photo of amy arrives: it may join one half, never merge the two
    const fresh = record(
      'amy-again',
      crops.raw[crops.truth.indexOf('amy')].map((x, i) => x * (1 + 0.02 * Math.sin(i))),
    );
    db.upsertFaces([fresh]);
    const events = service.assignNew([fresh.faceId]);
    expect(events.some((e) => e.type === 'merged')).toBe(false);
    // the service's expected outcomes are typed: the API maps them to 409 and 404
    expect(() => service.merge(amy, 'id_split')).toThrow(
      expect.objectContaining({ code: 'CORRECTION_REJECTED', constructor: RejectedError }),
    );
    expect(() => service.merge(amy, amy)).toThrow(expect.objectContaining({ code: 'SAME_IDENTITY' }));
    expect(() => service.merge(amy, 'id_nobody')).toThrow(
      expect.objectContaining({ code: 'IDENTITY_NOT_FOUND', constructor: NotFoundError }),
    );
    expect(() => service.moveFace('f_nothing', null)).toThrow(
      expect.objectContaining({ code: 'FACE_NOT_FOUND' }),
    );
    service.recluster();
    expect(groups().has(amy) && groups().has('id_split')).toBe(true);
  });

  it('user moves and merges are remembered by later reclusters', () => {
    const { db, ids } = cropDatabase();
    const service = new IdentityService(db, params);
    service.assignNew(ids);
    const amy = identityOfPerson(db, ids, 'amy');
    const raj = identityOfPerson(db, ids, 'raj');
    const amyFace = ids[crops.truth.indexOf('amy')];
    const moved = service.moveFace(amyFace, null);
    expect(moved).toMatchObject([
      { type: 'face_unassigned', identityId: amy, faceId: amyFace, cause: 'user' },
    ]);
    const merged = service.merge(amy, raj);
    expect(merged[0]).toMatchObject({ type: 'merged', identityId: amy, mergedFrom: [raj], cause: 'user' });
    expect(db.getIdentity(raj)).toBeUndefined();
    service.recluster();
    expect(db.getFace(amyFace)!.identityId).not.toBe(amy); // excluded by the user
    const rajFaces = ids.filter((_, i) => crops.truth[i] === 'raj');
    for (const f of rajFaces) expect(db.getFace(f)!.identityId).toBe(amy); // pinned by the merge
    // the target's own faces are confirmed by the merge too: the recluster does not split them off
    // under a new id (the two halves are far apart, and an overlap tie could hand `amy` to raj's half)
    const amyFaces = ids.filter((f, i) => crops.truth[i] === 'amy' && f !== amyFace);
    for (const f of amyFaces) expect(db.getFace(f)!.identityId).toBe(amy);
  });

  it('faces stored while a recluster runs are assigned online right after it', () => {
    const { db, ids } = cropDatabase();
    const service = new IdentityService(db, params);
    const late = record(
      'late-photo',
      crops.raw[0].map((x, i) => x * (1 + 0.02 * Math.cos(i))),
    );
    let stored = false;
    const result = service.recluster({
      onProgress: () => {
        if (stored) return;
        stored = true;
        db.upsertFaces([late]); // ingest goes on meanwhile
      },
    });
    expect(result.lateFaces).toBe(1);
    expect(db.getFace(late.faceId)!.identityId).toBe(db.getFace(ids[0])!.identityId);
    expect(db.getFace(late.faceId)!.identityId).not.toBeNull();
  });
});

describe('IdentityService: two faces of one photo are two people', () => {
  const groups = groupPhotoFaces(params.qualityRange);
  const ruleOff = { ...params, samePhotoCannotLink: false };

  /** stores the faces of one group photo (fixture order = face index) and returns their records */
  function ingestPhoto(db: FaceDatabase, service: IdentityService, photo: string): FaceRecord[] {
    const records = groups.faces
      .map((f, i) => ({ f, i }))
      .filter(({ f }) => f.photoId === photo)
      .map(({ i }, k) => record(photo, groups.raw[i], k));
    db.upsertFaces(records);
    service.assignNew(records.map((r) => r.faceId));
    return records;
  }

  const who = (photo: string, person: string) =>
    groups.faces
      .filter((f) => f.photoId === photo)
      .findIndex((f) => groups.truth[groups.faces.indexOf(f)] === person);

  /** no identity of the store holds two faces of one photo */
  function expectOnePerPhoto(db: FaceDatabase): void {
    const held = new Set<string>();
    for (const f of db.listFaces({ kept: true })) {
      if (f.identityId === null) continue;
      expect(held.has(`${f.identityId} ${f.photoId}`)).toBe(false);
      held.add(`${f.identityId} ${f.photoId}`);
    }
  }

  /** the reported case: raj merged into howard, then group photo bbt1 (raj, leonard, howard, sheldon) */
  function mergedStore(p: typeof params) {
    const { db, ids } = cropDatabase();
    const service = new IdentityService(db, p);
    service.assignNew(ids);
    service.merge(identityOfPerson(db, ids, 'howard'), identityOfPerson(db, ids, 'raj'));
    const bbt1 = ingestPhoto(db, service, 'bbt1.jpg');
    const identityOf = (person: string) => db.getFace(bbt1[who('bbt1.jpg', person)].faceId)!.identityId;
    return { db, ids, service, bbt1, identityOf };
  }

  it('online: the raj and leonard faces of one photo never make one identity (the reported case)', () => {
    const control = mergedStore(ruleOff);
    expect(control.identityOf('raj')).not.toBeNull();
    expect(control.identityOf('raj')).toBe(control.identityOf('leonard')); // the bug, with the rule off

    const { db, ids, service, identityOf } = mergedStore(params);
    expectOnePerPhoto(db);
    expect(identityOf('leonard')).toBe(identityOfPerson(db, ids, 'leonard'));
    expect(identityOf('sheldon')).toBe(identityOfPerson(db, ids, 'sheldon'));
    expect(identityOf('raj')).not.toBe(identityOf('leonard'));
    // the next group photo, and a recluster, keep the rule too
    ingestPhoto(db, service, 'bbt4.jpg');
    expectOnePerPhoto(db);
    service.recluster();
    expectOnePerPhoto(db);
  });

  it("recluster: a user's explicit move or merge wins over the rule", () => {
    const { db, ids } = cropDatabase();
    const service = new IdentityService(db, params);
    service.assignNew(ids);
    const bbt1 = ingestPhoto(db, service, 'bbt1.jpg');
    const face = (person: string) => bbt1[who('bbt1.jpg', person)].faceId;
    expectOnePerPhoto(db);
    // the user puts bbt1's leonard face into the identity of bbt1's sheldon face (a mirror, say)
    const sheldon = db.getFace(face('sheldon'))!.identityId!;
    service.moveFace(face('leonard'), sheldon);
    // and merges the identities of bbt1's raj and howard faces
    const howard = db.getFace(face('howard'))!.identityId!;
    const raj = db.getFace(face('raj'))!.identityId!;
    service.merge(howard, raj);
    service.recluster();
    expect(db.getFace(face('leonard'))!.identityId).toBe(sheldon);
    expect(db.getFace(face('sheldon'))!.identityId).toBe(sheldon);
    expect(db.getFace(face('raj'))!.identityId).toBe(howard);
    expect(db.getFace(face('howard'))!.identityId).toBe(howard);
  });
});
