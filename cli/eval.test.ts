import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateFiles } from './eval.ts';
import { UsageError } from './options.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(tmp, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

// photos as a user's library: one folder per person
const photo = (rel: string) => path.join(tmp, 'lib', rel);
for (const rel of ['ann/1.jpg', 'ann/2.jpg', 'ann/3.jpg', 'bob/1.jpg', 'bob/2.jpg']) file(`lib/${rel}`, 'x');

describe('facepipe eval reads what users have', () => {
  const exportCsv = file(
    'export.csv',
    [
      'photo,face,identity,width,height',
      `${photo('ann/1.jpg')},0,A,100,120`,
      // ann/2 shows bob small in the background: the photo is scored by its largest face (ann's)
      `${photo('ann/2.jpg')},0,B,20,24`,
      `${photo('ann/2.jpg')},1,A,90,110`,
      `${photo('ann/3.jpg')},0,,80,90`, // dropped or unassigned
      `${photo('bob/1.jpg')},0,B,70,80`,
      // bob/2 had no face found: not in the export
      `${path.join(tmp, 'elsewhere/x.jpg')},0,C,50,50`, // not in the truth
    ].join('\n') + '\n',
  );

  it('an export against --truth-from-folders: largest face per photo, missing and extra photos counted', () => {
    const r = evaluateFiles({ truthFromFolders: path.join(tmp, 'lib'), pred: exportCsv });
    expect(r.scoring).toEqual({
      unit: 'photo (its largest face)',
      scored: 5,
      largestFaceOf: 1,
      missingFromPrediction: 1,
      notInTruth: 1,
    });
    // predicted: ann1=A, ann2=A, ann3=∅, bob1=B, bob2=∅ → no false merge, ann split by one
    expect(r.bcubed.p).toBe(1);
    expect(r.clusters).toBe(2);
    expect(r.unassigned).toBeCloseTo(2 / 5);
  });

  it('an export against a photo,identity truth file whose paths are relative to its folder', () => {
    const truth = file('lib/truth.csv', 'path,identity\nann/1.jpg,ann\nann/2.jpg,ann\nbob/1.jpg,bob\n');
    const r = evaluateFiles({ truth, pred: exportCsv });
    expect(r.scoring).toMatchObject({ scored: 3, missingFromPrediction: 0, notInTruth: 2 });
    expect(r.bcubed).toEqual({ p: 1, r: 1, f: 1 });
  });

  it('id,cluster against id,cluster, as before', () => {
    const truth = file('t.csv', 'id,cluster\na,1\nb,1\nc,2\n');
    const pred = file('p.csv', 'id,cluster\na,x\nb,y\nc,y\n');
    const r = evaluateFiles({ truth, pred });
    expect(r.scoring.unit).toBe('id');
    expect(r.bcubed.p).toBeCloseTo((1 + 0.5 + 0.5) / 3);
  });

  it('refuses what it cannot score with one readable line', () => {
    const oldExport = file(
      'old.csv',
      `photo,face,identity\n${photo('ann/2.jpg')},0,B\n${photo('ann/2.jpg')},1,A\n`,
    );
    const cases: [Parameters<typeof evaluateFiles>[0], RegExp][] = [
      [{ truthFromFolders: path.join(tmp, 'lib'), pred: oldExport }, /no width,height columns/],
      [
        { truthFromFolders: path.join(tmp, 'lib'), pred: file('bad.csv', 'a,b\n1,2\n') },
        /expected the header/,
      ],
      [{ pred: exportCsv }, /--truth FILE or --truth-from-folders DIR/],
      [{ truth: file('t2.csv', 'id,cluster\na,1\n'), pred: exportCsv }, /names photos/],
      [{ truthFromFolders: path.join(tmp, 'nope'), pred: exportCsv }, /no such folder/],
      [{ truth: path.join(tmp, 'nope.csv'), pred: exportCsv }, /cannot read/],
    ];
    for (const [opts, message] of cases) {
      expect(() => evaluateFiles(opts)).toThrow(UsageError);
      expect(() => evaluateFiles(opts)).toThrow(message);
    }
  });
});
