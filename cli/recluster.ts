import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { openDataDir } from '../app/dataDir.ts';
import { reclusterStore } from '../app/recluster.ts';
import { RECLUSTER_OWED } from '../app/run.ts';
import { log } from '../core/log.ts';
import { requireDataDir, modelsDirFrom } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';
import { rebuildProgressBar } from './progress.ts';

export function register(program: Command, config: FacepipeConfig): void {
  program
    .command('recluster')
    .description(
      'Batch job: recluster every stored face (ids, names and corrections kept); safe while ingest runs',
    )
    .option('--data <dir>', 'data folder', config.dataDir)
    .option(
      '--models <dir>',
      'models folder, for the model calibration (default: FACEPIPE_MODELS, then the bundled models/)',
    )
    .option('--no-progress', 'no progress bar')
    .action(async (o: { data: string; models?: string; progress: boolean }) => {
      requireDataDir(o.data);
      const store = await openDataDir(o.data, {
        modelsDir: modelsDirFrom(o.models, config),
        onRebuildProgress: rebuildProgressBar(o.progress && process.stderr.isTTY === true),
      });
      try {
        const bar =
          o.progress && process.stderr.isTTY
            ? new cliProgress.SingleBar(
                { stream: process.stderr, format: 'recluster {bar} {percentage}% | eta {eta_formatted}' },
                cliProgress.Presets.shades_classic,
              )
            : undefined;
        bar?.start(100, 0);
        // a recluster a killed `run` still owed is done by this one (unless a run owes a newer one)
        const owed = store.db.getNote(RECLUSTER_OWED);
        const summary = reclusterStore(store.db, store.identities, {
          onProgress: (done, total) => bar?.update(Math.round((100 * done) / Math.max(1, total))),
        });
        bar?.stop();
        if (owed !== undefined && store.db.getNote(RECLUSTER_OWED) === owed)
          store.db.setNote(RECLUSTER_OWED, null);
        store.db.checkpoint();
        log.info(summary, 'recluster finished');
        process.stdout.write(JSON.stringify({ dataDir: store.db.dataDir, ...summary }, null, 2) + '\n');
      } finally {
        await store.close();
      }
    });
}
