import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openFaceDatabase } from '../indexers/database.ts';
import { faceRecord, tempDataDir } from '../indexers/testUtil.ts';
import { IdentityService } from '../service/identityService.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { loadManifest } from '../pipeline/models.ts';
import { thumbPath } from '../pipeline/report.ts';
import { faceIdFor, photoIdForFile } from '../schemas/face.ts';
import { migrateDataDirPhotoIds, openDataDir } from './dataDir.ts';
import { LegacyPhotoIdsError } from './photoIds.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const embedder = loadManifest(path.join(repoRoot, 'models')).embedders[0];
const crops = (
  JSON.parse(
    readFileSync(path.join(repoRoot, 'test/fixtures/reference/mobilefacenet-crops.json'), 'utf8'),
  ) as {
    faces: { file: string; embedding: number[] }[];
  }
).faces;

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A data dir as an older `facepipe publish` + indexer left it: photo ids of 20 hex after the prefix. */
function legacyDataDir(): { dir: string; files: string[]; legacyIds: string[] } {
  dir = tempDataDir('facepipe-legacy-ids-');
  const db = openFaceDatabase(dir, { modelId: embedder.name, dim: embedder.embeddingDim });
  const identities = new IdentityService(db, clusterParamsFromManifest(embedder));
  const files = crops.slice(0, 10).map((c) => path.join('/photos', c.file));
  const legacyIds = files.map(
    (f) => 'lib-p_' + createHash('sha256').update(path.resolve(f)).digest('hex').slice(0, 20),
  );
  const records = crops.slice(0, 10).map((c, i) => faceRecord(legacyIds[i], 0, c.embedding, embedder.name));
  db.upsertFaces(records);
  identities.assignNew(records.map((r) => r.faceId));
  files.forEach((f, i) =>
    db.upsertPhoto({
      photoId: legacyIds[i],
      uri: pathToFileURL(f).href,
      library: null,
      width: 150,
      height: 150,
      contentHash: 'h',
      status: 'done',
      error: null,
    }),
  );
  const pinned = db.getFace(records[0].faceId)!;
  db.addCorrection({ kind: 'face_pinned', faceId: pinned.faceId, identityId: pinned.identityId! });
  mkdirSync(path.join(dir, 'thumbs'));
  writeFileSync(thumbPath(dir, records[0].faceId), 'jpeg');
  db.close();
  return { dir, files, legacyIds };
}

describe('photo ids of an older facepipe publish', () => {
  it('are refused with the migrating command named, and migrated in place', async () => {
    const { dir, files, legacyIds } = legacyDataDir();
    const refused = openDataDir(dir);
    await expect(refused).rejects.toBeInstanceOf(LegacyPhotoIdsError);
    await expect(openDataDir(dir)).rejects.toThrow(`facepipe index migrate-ids --data ${dir}`);

    const before = await openDataDir(dir, { legacyPhotoIds: 'allow' });
    const identityOf = new Map(legacyIds.map((id) => [id, before.db.facesOfPhoto(id)[0].identityId]));
    await before.close();

    expect(await migrateDataDirPhotoIds(dir)).toEqual({ renamed: 10, superseded: 0 });
    const after = await openDataDir(dir);
    try {
      files.forEach((f, i) => {
        const photoId = photoIdForFile(f, 'lib-');
        expect(after.db.getPhoto(legacyIds[i])).toBeUndefined();
        const [face] = after.db.facesOfPhoto(photoId);
        expect(face.faceId).toBe(faceIdFor(photoId, embedder.name, face.bbox));
        expect(face.identityId).toBe(identityOf.get(legacyIds[i]));
        // the index follows: a face's own vector finds it under its new id
        expect(after.db.search(face.embedding, 1)[0].faceId).toBe(face.faceId);
      });
      const first = after.db.facesOfPhoto(photoIdForFile(files[0], 'lib-'))[0];
      expect(after.db.listCorrections()[0].correction).toMatchObject({ faceId: first.faceId });
      expect(existsSync(thumbPath(dir, first.faceId))).toBe(true);
    } finally {
      await after.close();
    }
    expect(await migrateDataDirPhotoIds(dir)).toEqual({ renamed: 0, superseded: 0 });
  });
});
