import { existsSync } from 'node:fs';
import path from 'node:path';
import { openExistingDatabase } from '../indexers/database.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import { IdentityService } from '../clustering/identityService.ts';
import { clusterParamsFromManifest, type ClusterParams } from '../clustering/params.ts';
import { createAnalyzer, type Analyzer } from '../pipeline/analyze.ts';
import { loadManifest, resolveModelsDir, selectModels, type EmbedderManifest } from '../pipeline/models.ts';

export interface OpenedStore {
  db: FaceDatabase;
  identities: IdentityService;
  params: ClusterParams;
  manifest: EmbedderManifest;
  analyzer?: Analyzer;
  close(): Promise<void>;
}

export class DataDirError extends Error {
  readonly code = 'NO_DATA';
}

/**
 * Opens an existing data folder for the commands that only get --data (serve, recluster): the model
 * id comes from the store, its calibration from the models folder's manifest entry of that name.
 */
export async function openStore(
  dataDir: string,
  opts: {
    modelsDir?: string;
    analyzer?: boolean;
    analyzerMaxPixels?: number;
    analyzerMaxBytes?: number;
  } = {},
): Promise<OpenedStore> {
  const dir = path.resolve(dataDir);
  if (!existsSync(dir))
    throw new DataDirError(
      `data folder not found: ${dir} (run \`facepipe run <photos> --data ${dataDir}\` first)`,
    );
  const db = openExistingDatabase(dir);
  try {
    const modelsDir = resolveModelsDir(opts.modelsDir);
    const { embedder } = selectModels(loadManifest(modelsDir), { embedder: db.modelId });
    const params = clusterParamsFromManifest(embedder);
    const analyzer = opts.analyzer
      ? await createAnalyzer({
          modelsDir,
          embedder: db.modelId,
          maxPixels: opts.analyzerMaxPixels,
          maxBytes: opts.analyzerMaxBytes,
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
