/**
 * THE ingest step: what happens to one analysed photo, whichever path brought it (the embedded
 * `facepipe run` job and the Kafka indexer both call `ingestPhoto` / `ingestFailure`, and neither has
 * code of its own for any of this):
 *
 *   1. thumbnails of the photo's faces are written (`<data>/thumbs/<faceId>.jpg`, from the JPEG the
 *      analysis made);
 *   2. one store transaction replaces the photo's faces: faces the photo no longer has are forgotten
 *      (rows, vectors, their share of identity templates), the new set is upserted and indexed;
 *   3. the kept faces to place are assigned to identities online (they are in the index now);
 *   4. the photo row is written last, status `done`: it is the marker a re-run and a replay trust.
 *
 * A failure is one `DeadLetter`: the photo's faces are forgotten, its row says `failed` with the
 * code, and the record goes to the path's dead-letter sink (the embedded file, the stream state).
 * The embedded path writes the same DeadLetter records as the Kafka path (without the message).
 *
 * Replays and crashes: face ids are deterministic (schemas/face.ts), so a replay is an upsert. A
 * photo already `done` with the same content only assigns faces new to the store (a replay changes
 * nothing); otherwise every unassigned kept face of the photo is placed, which also finishes an
 * ingest a crash cut between steps 2 and 4.
 */
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../core/files.ts';
import path from 'node:path';
import { removeThumbnails, thumbPath } from '../pipeline/report.ts';
import type { FaceRecord } from '../schemas/face.ts';
import type { IdentityEvent } from '../schemas/identityEvent.ts';
import type { PhotoResult } from '../schemas/photoEvent.ts';
import type { DeadLetter } from '../schemas/deadLetter.ts';
import type { FaceDatabase } from '../indexers/types.ts';

/** What the ingest step needs of the identity service (service/identityService.ts). */
export interface IdentityAssigner {
  assignNew(faceIds: string[]): IdentityEvent[];
  /** forgets faces: rows, vectors and their share of identity templates */
  forgetFaces(faceIds: string[]): IdentityEvent[];
}

/** Where a path keeps its dead letters; returns false for one it already had. */
export interface DeadLetterSink {
  record(deadLetter: DeadLetter): boolean;
}

export interface IngestTarget {
  db: FaceDatabase;
  identities: IdentityAssigner;
  /** data dir: thumbnails go to `<dataDir>/thumbs/` */
  dataDir: string;
  deadLetters: DeadLetterSink;
}

/** One analysed photo: its result (the photo row, the complete list of its faces) and the faces. */
export interface AnalysedPhoto {
  photo: PhotoResult;
  /** the photo's face records; a record whose id is not in `photo.faceIds` is ignored */
  faces: FaceRecord[];
}

export interface IngestOutcome {
  photoId: string;
  kept: number;
  dropped: number;
  /** faces the photo had before and no longer has (a changed photo) */
  removed: number;
  events: IdentityEvent[];
}

function writeThumbnails(dataDir: string, records: FaceRecord[]): void {
  for (const r of records) {
    if (!r.thumbnail) continue;
    const file = thumbPath(dataDir, r.faceId);
    mkdirSync(path.dirname(file), { recursive: true });
    // whole or not at all: a full disk leaves no half-written thumbnail (nor its temp file)
    writeFileAtomic(file, Buffer.from(r.thumbnail, 'base64'));
  }
}

/** Last record wins for a face id repeated within one call (a replay inside one batch). */
function uniqueByFaceId(records: FaceRecord[]): FaceRecord[] {
  const byId = new Map<string, FaceRecord>();
  for (const r of records) byId.set(r.faceId, r);
  return [...byId.values()];
}

/** The store keeps no thumbnail bytes: they are files beside it. */
function withoutThumbnail(r: FaceRecord): FaceRecord {
  if (r.thumbnail === undefined) return r;
  const { thumbnail: _thumbnail, ...rest } = r;
  return rest;
}

/**
 * Stores and indexes `records` in one transaction; returns the kept faces to place: the ones new to
 * the store, or with `placeUnassigned` every kept one that has no identity yet.
 */
export function storeFaceRecords(
  db: FaceDatabase,
  records: FaceRecord[],
  opts: { placeUnassigned?: boolean } = {},
): string[] {
  if (records.length === 0) return [];
  const unique = uniqueByFaceId(records).map(withoutThumbnail);
  return db.transaction(() => {
    const toPlace = unique
      .filter((r) => {
        if (!r.kept) return false;
        const stored = db.getFace(r.faceId);
        return stored === undefined || (opts.placeUnassigned === true && stored.identityId === null);
      })
      .map((r) => r.faceId);
    db.upsertFaces(unique);
    return toPlace;
  });
}

/**
 * Stores face records and assigns the kept ones new to the store; returns the identity events.
 * The inner part of `ingestPhoto`, for writers that have faces without a photo (tests, tools).
 */
export function indexFaceRecords(
  db: FaceDatabase,
  identities: Pick<IdentityAssigner, 'assignNew'>,
  records: FaceRecord[],
): IdentityEvent[] {
  const fresh = storeFaceRecords(db, records);
  return fresh.length > 0 ? identities.assignNew(fresh) : [];
}

/** Ingests one analysed photo (steps 1–4 above). */
export function ingestPhoto(target: IngestTarget, analysed: AnalysedPhoto): IngestOutcome {
  const { db, identities, dataDir } = target;
  const { photo } = analysed;
  const listed = new Set(photo.faceIds);
  const records = uniqueByFaceId(analysed.faces).filter((r) => listed.has(r.faceId));
  const before = db.getPhoto(photo.photoId);
  const replay = before?.status === 'done' && before.contentHash === photo.contentHash;

  writeThumbnails(dataDir, records);
  const { toPlace, stale, forgetEvents } = db.transaction(() => {
    const stale = db
      .facesOfPhoto(photo.photoId)
      .map((f) => f.faceId)
      .filter((id) => !listed.has(id));
    const forgetEvents = identities.forgetFaces(stale);
    const toPlace = storeFaceRecords(db, records, { placeUnassigned: !replay });
    return { toPlace, stale, forgetEvents };
  });
  removeThumbnails(dataDir, stale);
  const events = [...forgetEvents, ...(toPlace.length > 0 ? identities.assignNew(toPlace) : [])];
  db.upsertPhoto({
    photoId: photo.photoId,
    uri: photo.uri,
    library: photo.library ?? null,
    width: photo.width,
    height: photo.height,
    contentHash: photo.contentHash,
    status: 'done',
    error: null,
    processedAt: photo.at,
  });
  const kept = records.filter((r) => r.kept).length;
  return { photoId: photo.photoId, kept, dropped: records.length - kept, removed: stale.length, events };
}

/**
 * Records a photo that could not be processed: its faces are forgotten (what it showed before is no
 * longer what the file holds), its row says `failed` with the code, and the dead letter goes to the
 * sink. A dead letter without a photo id (a message that could not be parsed) only goes to the sink.
 */
export function ingestFailure(
  target: IngestTarget,
  deadLetter: DeadLetter,
  photo: { uri?: string; contentHash?: string | null } = {},
): boolean {
  const { db, identities, dataDir } = target;
  const photoId = deadLetter.photoId;
  const before = photoId === undefined ? undefined : db.getPhoto(photoId);
  // a dead letter older than the photo's last good result (the topics are read in any order
  // against each other) is only recorded: the photo is what its newer result says
  const superseded = before?.status === 'done' && before.processedAt > deadLetter.at;
  // an index-stage dead letter is about one message (an unreadable record), not the photo
  if (photoId === undefined || superseded || deadLetter.stage === 'index')
    return target.deadLetters.record(deadLetter);
  const faces = db.facesOfPhoto(photoId).map((f) => f.faceId);
  // the row and the dead letter together or neither: the sink records inside the transaction, so
  // a sink that cannot write (a full disk) rolls the row back
  const recorded = db.transaction(() => {
    identities.forgetFaces(faces);
    db.upsertPhoto({
      photoId,
      uri: photo.uri ?? deadLetter.uri ?? before?.uri ?? photoId,
      library: before?.library ?? null,
      width: null,
      height: null,
      contentHash: photo.contentHash ?? null,
      status: 'failed',
      error: `${deadLetter.code}: ${deadLetter.reason}`,
    });
    return target.deadLetters.record(deadLetter);
  });
  removeThumbnails(dataDir, faces);
  return recorded;
}
