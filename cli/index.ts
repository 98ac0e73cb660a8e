import type { Command } from 'commander';
import { openExistingDatabase, type EmbeddedFaceDatabase, type RecoveryInfo } from '../indexers/database.ts';
import { nonNegativeInt, requireDataDir, modelsDirFrom } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';
import { rebuildProgressBar } from './progress.ts';

/**
 * `facepipe index verify|rebuild|compact --data DIR`: operator commands for the vector index.
 * Opening the data dir recovers the index first (replay or rebuild), as every command does.
 * Output on stdout; logs and the progress bar on stderr. Exit code 1 when verify finds the
 * index and store disagree, 2 when the data dir cannot be opened.
 */

interface DataOptions {
  data: string;
  json?: boolean;
  sample?: number;
  force?: boolean;
}

/** Opens the data dir (recovering the index), runs `fn`, closes; a failure to open exits 2. */
function withDatabase(
  dataDir: string,
  fn: (db: EmbeddedFaceDatabase) => void,
  opts: { ignoreCheckpoint?: boolean } = {},
): void {
  let db: EmbeddedFaceDatabase;
  try {
    // the bar draws only on a terminal (cli-progress stays silent otherwise)
    requireDataDir(dataDir);
    db = openExistingDatabase(dataDir, { onRebuildProgress: rebuildProgressBar(), ...opts });
  } catch (err) {
    process.stderr.write(`facepipe index: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    fn(db);
  } finally {
    db.close();
  }
}

function recoverySummary(r: RecoveryInfo): Record<string, unknown> {
  return { action: r.action, ...(r.reason ? { reason: r.reason } : {}), replayed: r.replayed, ms: r.ms };
}

export function register(program: Command, config: FacepipeConfig): void {
  const index = program
    .command('index')
    .description('the vector index of a data dir: verify, rebuild, compact, migrate-ids');

  index
    .command('migrate-ids')
    .description(
      'give the photos (and faces) of an older `facepipe publish` the current photo ids; run with no indexer running',
    )
    .requiredOption('--data <dir>', 'data directory')
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .action(async (opts: { data: string; models?: string }) => {
      const { migrateDataDirPhotoIds } = await import('../app/dataDir.ts');
      process.stdout.write(
        JSON.stringify(await migrateDataDirPhotoIds(opts.data, modelsDirFrom(opts.models, config))) + '\n',
      );
    });

  index
    .command('verify')
    .description('compare the HNSW index with the store (kept faces); exit 1 when they disagree')
    .option('--data <dir>', 'data directory', config.dataDir)
    .option('--json', 'print one JSON object')
    .option('--sample <n>', 'kept faces to search by their own vector', nonNegativeInt, 200)
    .action((opts: DataOptions) =>
      withDatabase(opts.data, (db) => {
        const report = {
          ...db.verify({ selfSearchSample: opts.sample }),
          modelId: db.modelId,
          dim: db.dim,
          recovery: recoverySummary(db.recovery),
        };
        if (opts.json) process.stdout.write(JSON.stringify(report) + '\n');
        else {
          process.stdout.write(
            `${report.ok ? 'ok' : 'NOT OK'}: store ${report.store} kept faces, index ${report.indexed} ` +
              `(missing ${report.missing}, extra ${report.extra}, tombstones ${report.tombstones}, ` +
              `self-search misses ${report.selfSearchMisses}/${report.selfSearchChecked})\nindex file ${report.indexPath}\n`,
          );
        }
        if (!report.ok) process.exitCode = 1;
      }),
    );

  index
    .command('rebuild')
    .description('rebuild the index from the store (progress bar on stderr) and checkpoint it')
    .option('--data <dir>', 'data directory', config.dataDir)
    .action((opts: DataOptions) => {
      const started = Date.now();
      // the repair command never reads the old index file: opening rebuilds from the store
      withDatabase(
        opts.data,
        (db) => {
          const report = db.verify({ selfSearchSample: 50 });
          process.stdout.write(
            JSON.stringify({
              rebuilt: true,
              indexed: report.indexed,
              ok: report.ok,
              indexPath: report.indexPath,
              seconds: (Date.now() - started) / 1000,
            }) + '\n',
          );
          if (!report.ok) process.exitCode = 1;
        },
        { ignoreCheckpoint: true },
      );
    });

  index
    .command('compact')
    .description(
      'rebuild without tombstones (deleted vectors) when they exceed the compaction share, or always with --force',
    )
    .option('--data <dir>', 'data directory', config.dataDir)
    .option('--force', 'compact even below the threshold (erases deleted vectors from the index file now)')
    .action((opts: DataOptions) =>
      withDatabase(opts.data, (db) => {
        const before = db.tombstones();
        const compacted = db.compact(Boolean(opts.force));
        process.stdout.write(
          JSON.stringify({
            compacted,
            tombstonesBefore: before,
            tombstones: db.tombstones(),
            indexed: db.size(),
          }) + '\n',
        );
      }),
    );
}
