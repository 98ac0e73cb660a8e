import { describe, expect, it } from 'vitest';
import { baselinesAtOneSetting } from './realphotos.ts';

/** a sweep point with the given BCubed figures */
const point = (threshold: number, p: number, r: number, f: number) => ({
  threshold,
  bcubed: { p, r, f },
  pairwise: { p, r, f },
  identitiesFound: 1,
  identitiesTrue: 1,
  unassigned: 0,
});

describe('baselines at one setting for every collection', () => {
  it('takes the threshold with the best mean F, and the best that keeps the precision floor on each', () => {
    // A is best at 0.5 alone, B at 0.6 alone; 0.5 breaks the floor on B
    const sets = [
      { folder: 'A', baselineSweeps: { cw: [point(0.5, 0.99, 0.95, 0.97), point(0.6, 0.995, 0.85, 0.92)] } },
      { folder: 'B', baselineSweeps: { cw: [point(0.5, 0.9, 0.99, 0.943), point(0.6, 0.99, 0.95, 0.97)] } },
    ];
    const cw = baselinesAtOneSetting(sets).cw!;
    expect(cw.any!.threshold).toBe(0.5);
    expect(cw.any!.meanF).toBeCloseTo((0.97 + 0.943) / 2, 3);
    expect(cw.atPrecisionFloor!.threshold).toBe(0.6);
    expect(cw.atPrecisionFloor!.per.map((x) => x.folder)).toEqual(['A', 'B']);
    expect(cw.atPrecisionFloor!.per[1]!.p).toBe(0.99);
  });

  it('says none when no shared setting keeps the floor', () => {
    const sets = [
      { folder: 'A', baselineSweeps: { hac: [point(0.5, 0.9, 0.9, 0.9)] } },
      { folder: 'B', baselineSweeps: { hac: [point(0.5, 0.99, 0.9, 0.94)] } },
    ];
    expect(baselinesAtOneSetting(sets).hac!.atPrecisionFloor).toBeNull();
    expect(baselinesAtOneSetting(sets).hac!.any!.threshold).toBe(0.5);
  });
});
