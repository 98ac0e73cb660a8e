import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HtmlValidate } from 'html-validate';
import { bcubedF } from '../../clustering/metrics.ts';
import type { RunSummary } from '../../app/run.ts';
import { cropIdentity, cropsDir, examplesArg, parseCsv, runCliJson } from './helpers.ts';

// `facepipe run examples` end to end, as a user runs it: one real process per run.
describe('facepipe run on the fixtures', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-run-'));
  const data = path.join(tmp, 'data');
  const csv = path.join(tmp, 'out.csv');
  let first: RunSummary;
  let second: RunSummary;
  let firstCsv: string;

  beforeAll(async () => {
    first = await runCliJson<RunSummary>(['run', examplesArg, '--data', data, '--export', csv, '--json']);
    firstCsv = readFileSync(csv, 'utf8');
    second = await runCliJson<RunSummary>(['run', examplesArg, '--data', data, '--export', csv, '--json']);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('processes every photo and finds the 8 identities of the 40 crops (BCubed F ≥ 0.9)', () => {
    expect(first.photos.found).toBe(45); // 40 crops + 5 group photos
    expect(first.photos.processed).toBe(45);
    expect(first.photos.failed).toBe(0);
    expect(first.recluster.ran).toBe(true);
    const rows = parseCsv(firstCsv);
    expect(rows[0]).toEqual(['photo', 'face', 'identity', 'width', 'height', 'reason']);
    // a face without an identity says why (stored by the recluster, or the drop reason); one with none
    for (const r of rows.slice(1))
      if (r[2] === '')
        expect(['low_quality', 'ambiguous', 'no_match', 'low_magnitude', 'too_small', 'low_score']).toContain(
          r[5],
        );
      else expect(r[5]).toBe('');
    const crops = rows.slice(1).filter((r) => cropIdentity(r[0]!) !== undefined);
    expect(crops).toHaveLength(40); // exactly one face per crop
    expect(crops.every((r) => r[0]!.startsWith(examplesArg))).toBe(true); // the path as given
    const truth = crops.map((r) => cropIdentity(r[0]!)!);
    const predicted = crops.map((r) => r[2]!);
    expect(bcubedF(truth, predicted)).toBeGreaterThanOrEqual(0.9);
    expect(new Set(predicted.filter(Boolean)).size).toBeGreaterThanOrEqual(8);
  });

  it('writes a valid HTML report with one thumbnail per kept face and the dropped faces apart', async () => {
    const html = readFileSync(first.report, 'utf8');
    const validator = new HtmlValidate({ extends: ['html-validate:recommended'] });
    const report = await validator.validateString(html);
    expect(report.results.flatMap((r) => r.messages.map((m) => `${m.ruleId}: ${m.message}`))).toEqual([]);
    expect(report.valid).toBe(true);

    const [keptPart, droppedPart] = html.split('<h2>Dropped low-quality faces');
    const keptThumbs = [...keptPart!.matchAll(/<img class="thumb" src="thumbs\/([^"]+)\.jpg"/g)].map(
      (m) => m[1]!,
    );
    expect(keptThumbs).toHaveLength(first.store.kept);
    expect(new Set(keptThumbs).size).toBe(first.store.kept);
    for (const id of keptThumbs) expect(existsSync(path.join(data, 'thumbs', `${id}.jpg`))).toBe(true);
    const identityRows = [...keptPart!.matchAll(/<tr id="identity-[^"]+" data-identity="([^"]+)"/g)];
    expect(identityRows).toHaveLength(first.identities);
    const droppedRows = [
      ...droppedPart!.matchAll(
        /<tr data-dropped-face="[^"]+"><td>.*?<\/td><td>.*?<\/td><td>\d+<\/td><td>(\d+\.\d)<\/td>/g,
      ),
    ];
    expect(droppedRows).toHaveLength(first.store.dropped);
  });

  it('`facepipe eval --truth-from-folders` scores the main job on its own export', async () => {
    const report = await runCliJson<{
      bcubed: { p: number; f: number };
      clusters: number;
      scoring: { scored: number; largestFaceOf: number; notInTruth: number; missingFromPrediction: number };
    }>(['eval', '--truth-from-folders', path.join(examplesArg, 'faceapi-crops'), '--pred', csv]);
    // the 40 crops are the truth; the 5 group photos of the export are left out, and said so
    expect(report.scoring).toEqual({
      unit: 'photo (its largest face)',
      scored: 40,
      largestFaceOf: 0,
      missingFromPrediction: 0,
      notInTruth: 5,
    });
    expect(report.bcubed.f).toBeGreaterThanOrEqual(0.9);
    expect(report.clusters).toBeGreaterThanOrEqual(8);
  });

  it('reprocesses nothing on a second run and keeps the identity ids', () => {
    expect(second.photos.processed).toBe(0);
    expect(second.photos.skipped).toBe(45);
    expect(second.recluster.ran).toBe(false);
    expect(second.store).toEqual(first.store);
    expect(readFileSync(csv, 'utf8')).toBe(firstCsv);
  });
});

describe('facepipe run on a folder that changes', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-resume-'));
  const photos = path.join(tmp, 'photos');
  const data = path.join(tmp, 'data');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('records a bad photo and carries on; re-analyses only a photo whose content changed', async () => {
    mkdirSync(photos);
    copyFileSync(path.join(cropsDir, 'amy/1.png'), path.join(photos, 'a.png'));
    copyFileSync(path.join(cropsDir, 'raj/1.png'), path.join(photos, 'b.png'));
    writeFileSync(path.join(photos, 'broken.jpg'), 'this is not a JPEG');
    const run = (extra: string[] = []) =>
      runCliJson<RunSummary>(['run', photos, '--data', data, '--json', ...extra]);

    const first = await run();
    expect(first.photos).toMatchObject({ found: 3, processed: 2, failed: 1 });
    const deadLetters = readFileSync(path.join(data, 'dead-letter.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toMatchObject({ code: 'NOT_AN_IMAGE', uri: path.join(photos, 'broken.jpg') });

    copyFileSync(path.join(cropsDir, 'penny/1.png'), path.join(photos, 'b.png'));
    const second = await run();
    expect(second.photos).toMatchObject({ found: 3, processed: 1, changed: 1, skipped: 2, failed: 0 });
    expect(second.store.faces).toBe(2); // raj's face is gone, penny's took its place

    // `facepipe status` counts the embedded path's dead letters (once per photo, not per run)
    const status = await runCliJson<{
      photos: number;
      deadLetters: number;
      deadLettersByCode: Record<string, number>;
    }>(['status', '--data', data, '--json']);
    expect(status).toMatchObject({ deadLetters: 1, deadLettersByCode: { NOT_AN_IMAGE: 1 } });
  });
});
