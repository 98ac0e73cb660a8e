import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { DEFAULT_DATA_DIR, openDataDir } from '../app/dataDir.ts';
import { reclusterStore } from '../app/recluster.ts';
import { log } from '../core/log.ts';
import { requireDataDir } from './options.ts';

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
      const store = await openDataDir(o.data, { modelsDir: o.models });
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
