import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openFaceDatabase } from '../indexers/database.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import { faceIdFor, type FaceRecord } from '../schemas/face.ts';
import { clusterParamsFromManifest, qualityOf } from '../clustering/params.ts';
import { referenceCrops, uncalibratedEmbedderManifest } from '../clustering/testUtil.ts';
import { IdentityService } from './identityService.ts';
import { UserActions } from './userActions.ts';

// the mechanics of user actions are tested at the uncalibrated defaults (as the identity service's
// are): the 40 crops then form their 8 people, whatever the shipped operating point is tuned to
export const manifest = uncalibratedEmbedderManifest();
export const params = clusterParamsFromManifest(manifest);
const crops = referenceCrops(params.qualityRange);
const MODEL = manifest.name;

/** A face record of one of the crop embeddings, as the pipeline would store it. */
export function cropRecord(photoId: string, raw: number[], faceIndex = 0): FaceRecord {
  const bbox: [number, number, number, number] = [10 + 110 * faceIndex, 10, 100, 100];
  const magnitude = Math.hypot(...raw);
  return {
    v: 1,
    faceId: faceIdFor(photoId, MODEL, bbox),
    photoId,
    faceIndex,
    bbox,
    landmarks: [
      [40, 50],
      [70, 50],
      [55, 70],
      [42, 90],
      [70, 90],
    ],
    score: 0.9,
    embedding: raw,
    magnitude,
    quality: qualityOf(magnitude, params.qualityRange),
    kept: magnitude >= params.dropBelowMagnitude,
    modelId: MODEL,
  };
}

export interface ClusteredCrops {
  dir: string;
  db: FaceDatabase;
  identities: IdentityService;
  actions: UserActions;
  /** crop person (amy, …) → the identity holding their crops */
  who: Map<string, string>;
  close(): void;
}

/** A data dir holding the 40 real crops of the examples (one photo each), reclustered. */
export function clusteredCrops(): ClusteredCrops {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-crops-'));
  const db = openFaceDatabase(dir, { modelId: MODEL, dim: manifest.embeddingDim });
  const records = crops.faces.map((f, i) => cropRecord(f.id, crops.raw[i]!));
  db.upsertFaces(records);
  for (const r of records)
    db.upsertPhoto({
      photoId: r.photoId,
      uri: `/photos/${r.photoId}.png`,
      library: null,
      width: 112,
      height: 112,
      contentHash: `h_${r.photoId}`,
      status: 'done',
      error: null,
    });
  const identities = new IdentityService(db, params);
  identities.recluster();
  const who = new Map<string, string>();
  records.forEach((r, i) => who.set(crops.truth[i]!, db.getFace(r.faceId)!.identityId!));
  return {
    dir,
    db,
    identities,
    actions: new UserActions(db, identities),
    who,
    close: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
