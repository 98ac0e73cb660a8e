/**
 * Opens what the indexer writes to: the data dir's FaceDatabase (created for the configured
 * embedder when new; an existing store keeps its own model id and dimension) and the identity
 * service doing online assignment with the embedder manifest's calibration.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  openExistingDatabase,
  openFaceDatabase,
  type EmbeddedFaceDatabase,
} from '../../indexers/database.ts';
import { STORE_FILE } from '../../indexers/store.ts';
import { IdentityService } from '../../clustering/identityService.ts';
import { clusterParamsFromManifest } from '../../clustering/params.ts';
import { loadManifest, resolveModelsDir, selectModels, type EmbedderManifest } from '../models.ts';

export interface IndexerStore {
  db: EmbeddedFaceDatabase;
  identities: IdentityService;
  embedder: EmbedderManifest;
}

export function openIndexerStore(dataDir: string, modelsDir?: string, embedderName?: string): IndexerStore {
  const manifest = loadManifest(resolveModelsDir(modelsDir));
  const exists = existsSync(path.join(dataDir, STORE_FILE));
  const chosen = selectModels(manifest, embedderName ? { embedder: embedderName } : {}).embedder;
  const db = exists
    ? openExistingDatabase(dataDir)
    : openFaceDatabase(dataDir, { modelId: chosen.name, dim: chosen.embeddingDim });
  // the calibration must be the store's model's, whatever the default embedder is
  const embedder = manifest.embedders.find((e) => e.name === db.modelId);
  if (!embedder) {
    db.close();
    throw new Error(
      `the store in ${dataDir} holds model "${db.modelId}", which is not in ${manifest.files.join(', ')}`,
    );
  }
  const identities = new IdentityService(db, clusterParamsFromManifest(embedder));
  return { db, identities, embedder };
}
