import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parseAssignments, splitCsvLine } from '../clustering/csv.ts';
import { evaluate, type Evaluation, type Label } from '../clustering/metrics.ts';
import { walkImages } from '../pipeline/imageFiles.ts';
import { requireFolder, UsageError } from './options.ts';

/**
 * `facepipe eval`: scores a grouping against the truth, reading what users have.
 *
 * Predictions: `run --export` CSV (`photo,face,identity[,width,height]`: each photo is scored by
 * its largest face, as a photo's label names its main person), or `id,cluster`.
 * Truth: `photo,identity` CSV (also `path,identity`; relative paths are relative to the truth
 * file's folder), `--truth-from-folders DIR` (each photo's parent folder is its identity), or
 * `id,cluster`. Photos are matched by absolute path; predicted photos not in the truth are left
 * out, truth photos with no predicted face count as unassigned — both are counted in the output.
 */

interface Table {
  header: string[];
  rows: string[][];
  file: string;
  text: string;
}

function readTable(file: string): Table {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = splitCsvLine(lines.shift() ?? '').map((h) => h.trim().toLowerCase());
  return { header, rows: lines.map(splitCsvLine), file, text };
}

const hasColumns = (t: Table, ...names: string[]): boolean => names.every((n, i) => t.header[i] === n);

function column(t: Table, row: string[], index: number, line: number): string {
  const v = row[index];
  if (v === undefined) throw new UsageError(`${t.file}:${line}: expected ${t.header.length} fields`);
  return v;
}

/** One label per key: a photo's absolute path, or an `id,cluster` id. */
type Labels = Map<string, string | null>;

interface Predictions {
  labels: Labels;
  /** faces per predicted photo (a photo with several is scored by its largest one) */
  faceCounts: Map<string, number>;
}

function idClusterLabels(t: Table): Labels {
  try {
    return parseAssignments(t.text, t.file);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `run --export` rows → one label per photo: its largest face's identity (empty = unassigned). */
function exportPredictions(t: Table): Predictions {
  const sized = t.header[3] === 'width' && t.header[4] === 'height';
  const byPhoto = new Map<string, { identity: string; area: number; faces: number }>();
  t.rows.forEach((row, i) => {
    const line = i + 2;
    const photo = path.resolve(column(t, row, 0, line));
    const identity = column(t, row, 2, line);
    const area = sized ? Number(column(t, row, 3, line)) * Number(column(t, row, 4, line)) : 0;
    const seen = byPhoto.get(photo);
    if (!seen) byPhoto.set(photo, { identity, area, faces: 1 });
    else {
      if (!sized) {
        throw new UsageError(
          `${t.file}:${line}: ${row[0]} has several faces but the export has no width,height columns ` +
            `to find the largest: export again with this version of \`facepipe run --export\``,
        );
      }
      seen.faces++;
      if (area > seen.area) Object.assign(seen, { identity, area });
    }
  });
  const labels: Labels = new Map();
  const faceCounts = new Map<string, number>();
  for (const [photo, p] of byPhoto) {
    labels.set(photo, p.identity === '' ? null : p.identity);
    faceCounts.set(photo, p.faces);
  }
  return { labels, faceCounts };
}

function readPredictions(file: string): Predictions & { keyedBy: 'photo' | 'id' } {
  const t = readTable(file);
  if (hasColumns(t, 'photo', 'face', 'identity')) return { ...exportPredictions(t), keyedBy: 'photo' };
  if (hasColumns(t, 'id', 'cluster'))
    return { labels: idClusterLabels(t), faceCounts: new Map(), keyedBy: 'id' };
  throw new UsageError(
    `${file}: expected the header "photo,face,identity" (facepipe run --export) or "id,cluster", got "${t.header.join(',')}"`,
  );
}

function readTruth(file: string): { labels: Labels; keyedBy: 'photo' | 'id' } {
  const t = readTable(file);
  if (hasColumns(t, 'id', 'cluster')) return { labels: idClusterLabels(t), keyedBy: 'id' };
  if (hasColumns(t, 'photo', 'identity') || hasColumns(t, 'path', 'identity')) {
    const base = path.dirname(path.resolve(file));
    const labels: Labels = new Map();
    t.rows.forEach((row, i) => {
      const photo = path.resolve(base, column(t, row, 0, i + 2));
      labels.set(photo, column(t, row, 1, i + 2) || null);
    });
    return { labels, keyedBy: 'photo' };
  }
  throw new UsageError(
    `${file}: expected the header "photo,identity", "path,identity" or "id,cluster", got "${t.header.join(',')}"`,
  );
}

/** Every photo under `dir`, labelled with the name of the folder it is in. */
export function truthFromFolders(dir: string): Labels {
  requireFolder(dir, '--truth-from-folders takes a folder with one sub-folder per person');
  const labels: Labels = new Map();
  for (const file of walkImages(dir)) {
    const abs = path.resolve(file);
    labels.set(abs, path.basename(path.dirname(abs)));
  }
  if (labels.size === 0) throw new UsageError(`no photos under ${dir} (--truth-from-folders)`);
  return labels;
}

export interface EvalReport extends Evaluation {
  scoring: {
    /** what each scored item is */
    unit: 'photo (its largest face)' | 'id';
    scored: number;
    /** scored photos with several faces in the prediction, each scored by its largest face */
    largestFaceOf: number;
    /** truth items with no prediction (no face found, or not processed): counted unassigned */
    missingFromPrediction: number;
    /** predicted items the truth does not name: left out */
    notInTruth: number;
  };
}

export function evaluateLabelled(truth: Labels, predictions: Predictions, unit: 'photo' | 'id'): EvalReport {
  const t: Label[] = [];
  const p: Label[] = [];
  let missing = 0;
  let largestFaceOf = 0;
  for (const [key, label] of truth) {
    t.push(label);
    if (!predictions.labels.has(key)) missing++;
    if ((predictions.faceCounts.get(key) ?? 0) > 1) largestFaceOf++;
    p.push(predictions.labels.get(key) ?? null);
  }
  let notInTruth = 0;
  for (const key of predictions.labels.keys()) if (!truth.has(key)) notInTruth++;
  if (t.length === 0) throw new UsageError('the truth names nothing to score');
  if (missing === t.length) {
    throw new UsageError(
      `no ${unit} of the truth is in the prediction: were they made from the same photos (paths are matched as absolute paths)?`,
    );
  }
  return {
    ...evaluate(t, p),
    scoring: {
      unit: unit === 'photo' ? 'photo (its largest face)' : 'id',
      scored: t.length,
      largestFaceOf,
      missingFromPrediction: missing,
      notInTruth,
    },
  };
}

export function evaluateFiles(opts: { truth?: string; truthFromFolders?: string; pred: string }): EvalReport {
  if (Boolean(opts.truth) === Boolean(opts.truthFromFolders)) {
    throw new UsageError('give the truth once: --truth FILE or --truth-from-folders DIR');
  }
  const pred = readPredictions(opts.pred);
  const truth = opts.truth
    ? readTruth(opts.truth)
    : { labels: truthFromFolders(opts.truthFromFolders!), keyedBy: 'photo' as const };
  if (truth.keyedBy !== pred.keyedBy) {
    throw new UsageError(
      truth.keyedBy === 'photo'
        ? `${opts.pred} is an id,cluster file but the truth names photos: use the CSV of \`facepipe run --export\``
        : `${opts.truth} is an id,cluster file but ${opts.pred} names photos: give a photo,identity truth`,
    );
  }
  return evaluateLabelled(truth.labels, pred, truth.keyedBy);
}

export function register(program: Command): void {
  program
    .command('eval')
    .description(
      'score a grouping against the truth: pairwise/BCubed P/R/F, NMI, cluster count, unassigned share (one JSON object)',
    )
    .requiredOption(
      '--pred <file>',
      'the CSV of `facepipe run --export` (photo,face,identity: each photo scored by its largest face) or id,cluster',
    )
    .option('--truth <file>', 'photo,identity (or path,identity) CSV, or id,cluster')
    .option(
      '--truth-from-folders <dir>',
      'the truth from the layout: each photo’s parent folder is its identity',
    )
    .action((opts: { truth?: string; truthFromFolders?: string; pred: string }) => {
      const report = evaluateFiles(opts);
      if (report.scoring.largestFaceOf > 0) {
        process.stderr.write(
          `facepipe eval: ${report.scoring.largestFaceOf} photos have several faces; each is scored by its largest face\n`,
        );
      }
      process.stdout.write(JSON.stringify(report) + '\n');
    });
}
