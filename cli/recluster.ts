import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { FaceDatabase } from '../indexers/types.ts';
import type { IdentityService } from '../clustering/identityService.ts';
import { openStore } from '../api/open.ts';
import { DEFAULT_DATA_DIR } from '../pipeline/embedded.ts';
import { log } from '../pipeline/log.ts';
import { requireDataDir } from './options.ts';

export interface ReclusterSummary {
  dataDir: string;
  /** store sequence of the snapshot the batch worked on */
  snapshotSeq: number;
  facesClustered: number;
  assigned: number;
  unassigned: number;
  /** faces stored by another writer while the batch ran, assigned online right after it */
  lateFaces: number;
  identitiesBefore: number;
  identitiesAfter: number;
  /** identity events recorded in the store's event log, by type */
  events: Record<string, number>;
  seconds: number;
}

/**
 * The batch job: recluster every kept face with the quality-aware method, keeping ids and names
 * (stable-id mapping) and honouring stored corrections; the events it causes are recorded in the
 * store's identity-event log. Safe while ingest continues (another process writing the same data
 * folder): the batch clusters the snapshot of faces present when it starts; faces stored after it
 * are left alone by the batch's write and then assigned online by the same rules as ingest, so no
 * face that arrives meanwhile ends up unassigned or pointing at a removed identity.
 */
export function reclusterStore(
  db: FaceDatabase,
  identities: IdentityService,
  opts: { onProgress?: (done: number, total: number) => void } = {},
): Omit<ReclusterSummary, 'dataDir'> {
  const started = Date.now();
  const before = db.listIdentities().length;
  const result = identities.recluster({ onProgress: opts.onProgress });
  const events: Record<string, number> = {};
  for (const e of result.events) events[e.type] = (events[e.type] ?? 0) + 1;
  return {
    snapshotSeq: result.snapshotSeq,
    facesClustered: result.assigned + result.unassigned,
    assigned: result.assigned,
    unassigned: result.unassigned,
    lateFaces: result.lateFaces,
    identitiesBefore: before,
    identitiesAfter: db.listIdentities().length,
    events,
    seconds: (Date.now() - started) / 1000,
  };
}

export function register(program: Command): void {
  program
    .command('recluster')
    .description(
      'Batch job: recluster every stored face (ids, names and corrections kept); safe while ingest runs',
    )
    .option('--data <dir>', 'data folder', process.env.FACEPIPE_DATA ?? DEFAULT_DATA_DIR)
    .option(
      '--models <dir>',
      'models folder, for the model calibration (default: FACEPIPE_MODELS, then the bundled models/)',
    )
    .option('--no-progress', 'no progress bar')
    .action(async (o: { data: string; models?: string; progress: boolean }) => {
      requireDataDir(o.data);
      const store = await openStore(o.data, { modelsDir: o.models });
      try {
        const bar =
          o.progress && process.stderr.isTTY
            ? new cliProgress.SingleBar(
                { stream: process.stderr, format: 'recluster {bar} {percentage}% | eta {eta_formatted}' },
                cliProgress.Presets.shades_classic,
              )
            : undefined;
        bar?.start(100, 0);
        const summary = reclusterStore(store.db, store.identities, {
          onProgress: (done, total) => bar?.update(Math.round((100 * done) / Math.max(1, total))),
        });
        bar?.stop();
        store.db.checkpoint();
        log.info(summary, 'recluster finished');
        process.stdout.write(JSON.stringify({ dataDir: store.db.dataDir, ...summary }, null, 2) + '\n');
      } finally {
        await store.close();
      }
    });
}
