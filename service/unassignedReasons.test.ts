import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openFaceDatabase } from '../indexers/database.ts';
import { STORE_FILE } from '../indexers/store.ts';
import { RECLUSTER_OWED_NOTE } from '../indexers/store/migrations.ts';
import type { EmbeddedFaceDatabase } from '../indexers/database.ts';
import type { FaceRecord } from '../schemas/face.ts';
import { qualityOf } from '../clustering/params.ts';
import { referenceCrops } from '../clustering/testUtil.ts';
import { IdentityService } from './identityService.ts';
import { indexFaceRecords } from './ingestStep.ts';
import { cropRecord, manifest, params } from './testUtil.ts';

// Why a kept face has no identity is stored with the face by every step that places faces: the
// online step, the batch recluster and user actions (userActions.test.ts). Real store, real
// clustering (at the uncalibrated defaults), the 40 real crops plus three constructed faces whose
// reason is known by construction.
const crops = referenceCrops(params.qualityRange);
const dirs: string[] = [];
const open: EmbeddedFaceDatabase[] = [];

afterEach(() => {
  for (const db of open.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openDb(dir: string): EmbeddedFaceDatabase {
  const db = openFaceDatabase(dir, { modelId: manifest.name, dim: manifest.embeddingDim });
  open.push(db);
  return db;
}

function closeDb(db: EmbeddedFaceDatabase): void {
  db.close();
  open.splice(open.indexOf(db), 1);
}

/** the store as a facepipe from before reasons were kept left it: schema version 2, no such column */
function downgradeToVersion2(dir: string): void {
  const raw = new Database(path.join(dir, STORE_FILE));
  raw.exec('ALTER TABLE faces DROP COLUMN unassigned_reason');
  raw.pragma('user_version = 2');
  raw.close();
}

function newDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-reasons-'));
  dirs.push(dir);
  return dir;
}

/** unit direction of a crop person's template (the sum of their five raw features) */
function personDirection(person: string): number[] {
  const sum = new Array<number>(manifest.embeddingDim).fill(0);
  crops.raw.forEach((raw, i) => {
    if (crops.truth[i] === person) raw.forEach((x, d) => (sum[d]! += x));
  });
  return unit(sum);
}

function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** the raw magnitude that maps to quality q */
function magnitudeFor(q: number): number {
  const [lo, hi] = params.qualityRange;
  return lo + q * (hi - lo);
}

/**
 * Three faces whose reason is known by construction: halfway between Amy and Penny with low
 * quality (ambiguous), a low-quality face pointing away from everyone (low_quality), and a good
 * face pointing away from everyone (no_match: nobody close, and alone it cannot start an identity).
 */
function constructedFaces(direction: (person: string) => number[] = personDirection): {
  records: FaceRecord[];
  expected: Map<string, string>;
} {
  const amy = direction('amy');
  const penny = direction('penny');
  const between = unit(amy.map((x, d) => x + penny[d]!));
  const mean = new Array<number>(manifest.embeddingDim).fill(0);
  for (const f of crops.faces) f.unit.forEach((x, d) => (mean[d]! += x));
  const away = unit(mean.map((x) => -x));
  const low = Math.max(magnitudeFor(0.1), params.dropBelowMagnitude * 1.05);
  const high = magnitudeFor(0.95);
  expect(qualityOf(low, params.qualityRange)).toBeLessThan(params.coreQuality);
  expect(qualityOf(high, params.qualityRange)).toBeGreaterThanOrEqual(params.coreQuality);
  const faces: [string, number[], number, string][] = [
    ['p_between', between, low, 'ambiguous'],
    ['p_lowaway', away, low, 'low_quality'],
    ['p_stranger', away.map((x, d) => (d % 2 === 0 ? x : -x)), high, 'no_match'],
  ];
  const records = faces.map(([photo, dir, mag]) =>
    cropRecord(
      photo,
      dir.map((x) => x * mag),
    ),
  );
  for (const r of records) expect(r.kept).toBe(true);
  return {
    records,
    expected: new Map(records.map((r, i) => [r.faceId, faces[i]![3]])),
  };
}

/**
 * Through the ingest step every transport shares (store, index, online assignment): the 40 crops,
 * then the three constructed faces ("between" is built from the identity templates the online step
 * made, so its tie is exact); returns the reason expected for each constructed face.
 */
function fillOnline(db: EmbeddedFaceDatabase, service: IdentityService): Map<string, string> {
  const cropRecords = crops.faces.map((f, i) => cropRecord(f.id, crops.raw[i]!));
  indexFaceRecords(db, service, cropRecords);
  const templateOf = (person: string) => {
    const face = db.getFace(cropRecords[crops.truth.indexOf(person)]!.faceId)!;
    return unit([...db.getIdentity(face.identityId!)!.template]);
  };
  const { records, expected } = constructedFaces(templateOf);
  indexFaceRecords(db, service, records);
  return expected;
}

/** the 40 crops and the three constructed faces, stored and not placed yet */
function fill(db: EmbeddedFaceDatabase): { ids: string[]; expected: Map<string, string> } {
  const cropRecords = crops.faces.map((f, i) => cropRecord(f.id, crops.raw[i]!));
  const { records, expected } = constructedFaces();
  db.upsertFaces([...cropRecords, ...records]);
  return { ids: [...cropRecords, ...records].map((r) => r.faceId), expected };
}

/** every kept face: null while it has an identity, a reason when it has none */
function expectReasonsConsistent(db: EmbeddedFaceDatabase): void {
  for (const f of db.listFaces({ kept: true }))
    if (f.identityId === null) expect(f.unassignedReason).not.toBeNull();
    else expect(f.unassignedReason).toBeNull();
}

describe('why a kept face has no identity, stored', () => {
  it('the online step of ingest stores it; it survives a restart', () => {
    const dir = newDir();
    let db = openDb(dir);
    const expected = fillOnline(db, new IdentityService(db, params));
    for (const [faceId, reason] of expected)
      expect(db.getFace(faceId)).toMatchObject({ identityId: null, unassignedReason: reason });
    expectReasonsConsistent(db);
    const before = db.listFaces().map((f) => [f.faceId, f.unassignedReason]);

    closeDb(db);
    db = openDb(dir);
    expect(db.listFaces().map((f) => [f.faceId, f.unassignedReason])).toEqual(before);
  });

  it('the batch recluster stores its reasons, for faces it takes out and faces that stay out', () => {
    const db = openDb(newDir());
    const { ids, expected } = fill(db);
    const service = new IdentityService(db, params);
    // a first recluster, then a face placed by hand that the next one takes out: it gets a reason too
    service.recluster();
    for (const [faceId, reason] of expected) expect(db.getFace(faceId)!.unassignedReason).toBe(reason);
    const amyIdentity = db.getFace(ids[crops.truth.indexOf('amy')]!)!.identityId!;
    const stranger = [...expected].find(([, r]) => r === 'no_match')![0];
    db.setFaceIdentity(stranger, amyIdentity);
    expect(db.getFace(stranger)!.unassignedReason).toBeNull();

    const result = service.recluster();
    expect(result.unassigned).toBe(expected.size);
    for (const [faceId, reason] of expected)
      expect(db.getFace(faceId)).toMatchObject({ identityId: null, unassignedReason: reason });
    expectReasonsConsistent(db);
  });

  it('a store from before reasons were kept migrates: the reasons come with the recluster it owes', () => {
    const dir = newDir();
    let db = openDb(dir);
    const { expected } = fill(db);
    new IdentityService(db, params).recluster();
    closeDb(db);
    downgradeToVersion2(dir);

    db = openDb(dir);
    expect(db.getNote(RECLUSTER_OWED_NOTE)).toBeDefined();
    for (const faceId of expected.keys())
      expect(db.getFace(faceId)).toMatchObject({ identityId: null, unassignedReason: null });
    new IdentityService(db, params).recluster();
    for (const [faceId, reason] of expected) expect(db.getFace(faceId)!.unassignedReason).toBe(reason);
    expectReasonsConsistent(db);
  });

  it('a migrated store with every face placed owes no recluster', () => {
    const dir = newDir();
    let db = openDb(dir);
    const records = crops.faces.map((f, i) => cropRecord(f.id, crops.raw[i]!));
    db.upsertFaces(records);
    const service = new IdentityService(db, params);
    service.recluster();
    expect(db.listFaces({ kept: true }).every((f) => f.identityId !== null)).toBe(true);
    closeDb(db);
    downgradeToVersion2(dir);
    db = openDb(dir);
    expect(db.getNote(RECLUSTER_OWED_NOTE)).toBeUndefined();
  });
});
