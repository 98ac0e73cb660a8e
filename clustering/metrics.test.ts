import { describe, expect, it } from 'vitest';
import { evaluate } from './metrics.ts';

describe('metrics', () => {
  // truth: A A A B B ; pred: 1 1 2 2 2
  const truth = ['A', 'A', 'A', 'B', 'B'];
  const pred = [1, 1, 2, 2, 2];

  it('pairwise precision/recall/F by hand', () => {
    // predicted pairs: C(2,2)+C(3,2)=1+3=4; true pairs: C(3,2)+C(2,2)=4; TP: {0,1} and {3,4} = 2
    const e = evaluate(truth, pred);
    expect(e.pairwise.p).toBeCloseTo(0.5, 12);
    expect(e.pairwise.r).toBeCloseTo(0.5, 12);
    expect(e.pairwise.f).toBeCloseTo(0.5, 12);
  });

  it('BCubed precision/recall/F by hand', () => {
    // precision per item: 1, 1, 1/3, 2/3, 2/3 → 11/15; recall: 2/3, 2/3, 1/3, 1, 1 → 11/15
    const e = evaluate(truth, pred);
    expect(e.bcubed.p).toBeCloseTo(11 / 15, 12);
    expect(e.bcubed.r).toBeCloseTo(11 / 15, 12);
    expect(e.bcubed.f).toBeCloseTo(11 / 15, 12);
  });

  it('NMI by hand (arithmetic normalisation)', () => {
    // joint: (1,A)=2, (2,A)=1, (2,B)=2 over n=5
    const mi =
      (2 / 5) * Math.log((2 * 5) / (2 * 3)) +
      (1 / 5) * Math.log((1 * 5) / (3 * 3)) +
      (2 / 5) * Math.log((2 * 5) / (3 * 2));
    const h = -(3 / 5) * Math.log(3 / 5) - (2 / 5) * Math.log(2 / 5);
    expect(evaluate(truth, pred).nmi).toBeCloseTo((2 * mi) / (h + h), 12);
  });

  it('perfect clustering scores 1 everywhere', () => {
    const e = evaluate(truth, ['x', 'x', 'x', 'y', 'y']);
    expect(e).toEqual({
      pairwise: { p: 1, r: 1, f: 1 },
      bcubed: { p: 1, r: 1, f: 1 },
      nmi: 1,
      clusters: 2,
      unassigned: 0,
    });
  });

  it('unassigned faces are singletons: they cost recall, not precision', () => {
    // pred: 0,1 together; 2,3,4 unassigned
    const e = evaluate(truth, ['c', 'c', null, '', -1]);
    expect(e.unassigned).toBeCloseTo(3 / 5, 12);
    expect(e.clusters).toBe(1);
    expect(e.pairwise.p).toBe(1);
    expect(e.pairwise.r).toBeCloseTo(1 / 4, 12); // TP 1 of 4 true pairs
    expect(e.bcubed.p).toBe(1);
    // recall per item: 2/3, 2/3, 1/3, 1/2, 1/2 → (2/3+2/3+1/3+1/2+1/2)/5 = 8/15
    expect(e.bcubed.r).toBeCloseTo(8 / 15, 12);
    expect(e.bcubed.f).toBeCloseTo((2 * (8 / 15)) / (1 + 8 / 15), 12);
  });

  it('everything in one cluster', () => {
    const e = evaluate(truth, [7, 7, 7, 7, 7]);
    expect(e.pairwise.p).toBeCloseTo(4 / 10, 12); // 4 true pairs of 10
    expect(e.pairwise.r).toBe(1);
    // precision per item: 3/5 for A's, 2/5 for B's → (9/5 + 4/5)/5 = 13/25
    expect(e.bcubed.p).toBeCloseTo(13 / 25, 12);
    expect(e.bcubed.r).toBe(1);
    expect(e.nmi).toBe(0);
  });

  it('rejects labels of different lengths', () => {
    expect(() => evaluate(['a'], ['a', 'b'])).toThrow(/1 items/);
  });
});
