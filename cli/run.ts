import type { Command } from 'commander';
import { runEmbedded, type RunSummary } from '../app/run.ts';
import { servePeopleView } from './serve.ts';
import { noImagesLine, positiveInt, requireFolder, modelsDirFrom } from './options.ts';
import type { FacepipeConfig } from '../app/config.ts';
import { rebuildProgressBar, runProgressBar } from './progress.ts';

export function register(program: Command, config: FacepipeConfig): void {
  program
    .command('run')
    .description(
      'The main job, embedded (no Kafka): analyse every new or changed photo under <dir>, cluster the faces into identities, write report.html',
    )
    .argument('<dir>', 'folder of photos (walked recursively)')
    .option('--data <dir>', 'data folder: store, index, thumbnails, report', config.dataDir)
    .option(
      '--export <file.csv>',
      'also write the assignment as CSV: photo,face,identity,width,height,reason (face box in pixels; why a face has no identity)',
    )
    .option('--models <dir>', 'models folder (default: FACEPIPE_MODELS, then the bundled models/)')
    .option('--concurrency <n>', 'photos analysed at once', positiveInt, 4)
    .option('--no-recluster', 'skip the batch recluster after ingest')
    .option('--include-erased', 'analyse photos erased in the people view again (their tombstones go)')
    .option('--open', 'afterwards, serve the people view on loopback and open it in the browser')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the summary as JSON')
    .action(async (dir: string, o: RunCliOptions) => {
      requireFolder(
        dir,
        '`facepipe run` takes the folder of photos to process; `facepipe analyze FILE` looks at one photo',
      );
      const summary = await runEmbedded({
        dir,
        dataDir: o.data,
        modelsDir: modelsDirFrom(o.models, config),
        provider: config.provider,
        inferenceNice: config.inferenceNice,
        pauseAt: config.pauseAt,
        onRebuildProgress: rebuildProgressBar(o.progress && process.stderr.isTTY === true),
        exportCsv: o.export,
        concurrency: o.concurrency,
        recluster: o.recluster,
        includeErased: o.includeErased === true,
        onProgress: runProgressBar(o.progress && process.stderr.isTTY === true),
      });
      if (summary.photos.found === 0) process.stderr.write(noImagesLine('run', dir));
      process.stdout.write(o.json ? JSON.stringify(summary, null, 2) + '\n' : formatSummary(summary));
      if (o.open) await servePeopleView(summary.dataDir, o.models);
    });
}

interface RunCliOptions {
  data: string;
  export?: string;
  models?: string;
  concurrency: number;
  recluster: boolean;
  includeErased?: boolean;
  open?: boolean;
  progress: boolean;
  json?: boolean;
}

export function formatSummary(s: RunSummary): string {
  const p = s.photos;
  const lines = [
    `photos:     ${p.found} found, ${p.processed} processed (${p.changed} changed), ${p.skipped} unchanged, ${p.failed} failed` +
      (p.erased ? `, ${p.erased} erased (left alone; --include-erased to analyse them)` : ''),
    `faces:      ${s.faces.kept} kept, ${s.faces.dropped} dropped (low quality) in this run`,
    `store:      ${s.store.photos} photos, ${s.store.kept} kept faces, ${s.store.dropped} dropped faces`,
    `identities: ${s.identities}`,
    `speed:      ${s.photosPerSecond} photos/s, ${s.facesPerSecond} faces/s (${s.seconds.toFixed(1)} s)`,
    `report:     ${s.report}`,
  ];
  if (s.export) lines.push(`export:     ${s.export}`);
  if (s.deadLetters) lines.push(`failed:     ${s.deadLetters}`);
  for (const k of s.skippedPaths) lines.push(`skipped:    ${k.path} (${k.code}: ${k.reason})`);
  lines.push(
    `people:     facepipe serve --data ${JSON.stringify(s.dataDir)}, then open http://127.0.0.1:8080/ (or run with --open)`,
  );
  return lines.join('\n') + '\n';
}
