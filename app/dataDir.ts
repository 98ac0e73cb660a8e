/**
 * The one way to open a data dir, for every program (run, indexer, serve, recluster): the store +
 * HNSW index (indexers/), the embedder manifest entry of the store's model (its calibration drives
 * clustering), the identity service over them, and — for serve — an analyzer of the same model.
 *
 * A new data dir is created only when the caller says so (`create`: run and the indexer); serve and
 * recluster need one that exists. An existing store keeps its own model id and dimension, whatever
 * the default embedder is.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { openExistingDatabase, openFaceDatabase, type EmbeddedFaceDatabase } from '../indexers/database.ts';
import { FaceStore, STORE_FILE } from '../indexers/store.ts';
import { IdentityService } from '../service/identityService.ts';
import { clusterParamsFromManifest, type ClusterParams } from '../clustering/params.ts';
import { createAnalyzer, type Analyzer } from '../pipeline/analyze.ts';
import { loadManifest, resolveModelsDir, selectModels, type EmbedderManifest } from '../pipeline/models.ts';
import { legacyPhotoIds, LegacyPhotoIdsError, renameLegacyPhotos, type PhotoIdRename } from './photoIds.ts';
import { removeThumbnails } from '../pipeline/report.ts';
import { FacepipeError } from '../core/errors.ts';

export const DEFAULT_DATA_DIR = './facepipe-data';

export interface OpenedDataDir {
  db: EmbeddedFaceDatabase;
  identities: IdentityService;
  params: ClusterParams;
  manifest: EmbedderManifest;
  analyzer?: Analyzer;
  close(): Promise<void>;
}

export interface OpenDataDirOptions {
  modelsDir?: string;
  /** create the data dir when it has no store yet (for `embedder`, default: the manifest's default) */
  create?: boolean;
  /** the embedder the caller writes faces of: a new store is made for it, an existing one must hold it */
  embedder?: string;
  /** also create an analyzer of the store's model (serve: search by image) */
  analyzer?: boolean;
  analyzerMaxPixels?: number;
  analyzerMaxBytes?: number;
  provider?: 'cpu' | 'cuda';
  inferenceNice?: number;
  /** how far a rebuild of the index from the store is, when one is needed (the CLI draws a bar) */
  onRebuildProgress?: (done: number, total: number) => void;
  /** 'allow' opens a data dir that still has legacy photo ids (the migration itself) */
  legacyPhotoIds?: 'refuse' | 'allow';
}

export class DataDirError extends FacepipeError {
  constructor(message: string) {
    super('NO_DATA', message);
  }
}

export async function openDataDir(dataDir: string, opts: OpenDataDirOptions = {}): Promise<OpenedDataDir> {
  const dir = path.resolve(dataDir);
  const modelsDir = resolveModelsDir(opts.modelsDir);
  const manifest = loadManifest(modelsDir);
  const exists = existsSync(path.join(dir, STORE_FILE));
  let db: EmbeddedFaceDatabase;
  // a folder without a store: the store layer says so ("no facepipe store in …", a user mistake)
  if (exists || (existsSync(dir) && !opts.create))
    db = openExistingDatabase(dir, { onRebuildProgress: opts.onRebuildProgress });
  else if (opts.create) {
    const chosen = selectModels(manifest, opts.embedder ? { embedder: opts.embedder } : {}).embedder;
    db = openFaceDatabase(dir, {
      modelId: chosen.name,
      dim: chosen.embeddingDim,
      onRebuildProgress: opts.onRebuildProgress,
    });
  } else if (!existsSync(dir))
    throw new DataDirError(
      `data folder not found: ${dir} (run \`facepipe run <photos> --data ${dataDir}\` first)`,
    );
  // a folder without a store: the database says so, with what to run
  else db = openExistingDatabase(dir, { onRebuildProgress: opts.onRebuildProgress });
  try {
    if (opts.legacyPhotoIds !== 'allow') {
      const legacy = legacyPhotoIds(db);
      if (legacy.length > 0) throw new LegacyPhotoIdsError(dataDir, legacy.length);
    }
    if (opts.embedder && opts.embedder !== db.modelId)
      throw new DataDirError(
        `the store in ${dir} holds faces of model "${db.modelId}", not "${opts.embedder}": use another --data`,
      );
    // the calibration must be the store's model's, whatever the default embedder is
    const embedder = manifest.embedders.find((e) => e.name === db.modelId);
    if (!embedder)
      throw new DataDirError(
        `the store in ${dir} holds model "${db.modelId}", which is not in ${manifest.files.join(', ')}`,
      );
    const params = clusterParamsFromManifest(embedder);
    const analyzer = opts.analyzer
      ? await createAnalyzer({
          modelsDir,
          embedder: db.modelId,
          maxPixels: opts.analyzerMaxPixels,
          maxBytes: opts.analyzerMaxBytes,
          provider: opts.provider,
          inferenceNice: opts.inferenceNice,
        })
      : undefined;
    return {
      db,
      identities: new IdentityService(db, params),
      params,
      manifest: embedder,
      analyzer,
      close: async () => {
        db.close();
        await analyzer?.close();
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * `facepipe index migrate-ids`: renames every legacy photo id of the data dir (and its faces' ids
 * and thumbnails). A legacy photo whose current id is already in the store (the file was
 * published again since) is superseded by it and forgotten. Run it with no indexer running.
 */
export async function migrateDataDirPhotoIds(
  dataDir: string,
  modelsDir?: string,
): Promise<{ renamed: number; superseded: number }> {
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false });
  let superseded: string[];
  let renamed: PhotoIdRename[];
  try {
    ({ renamed, superseded } = renameLegacyPhotos(store, dataDir));
  } finally {
    store.close();
  }
  if (superseded.length > 0) {
    const opened = await openDataDir(dataDir, { modelsDir, legacyPhotoIds: 'allow' });
    try {
      for (const photoId of superseded) {
        const faces = opened.db.facesOfPhoto(photoId).map((f) => f.faceId);
        opened.identities.forgetFaces(faces);
        opened.db.forgetPhoto(photoId);
        removeThumbnails(dataDir, faces);
      }
    } finally {
      await opened.close();
    }
  }
  return { renamed: renamed.length, superseded: superseded.length };
}
