import { describe, expect, it } from 'vitest';
import { median, quantile } from './stats.ts';

describe('order statistics', () => {
  it('interpolates quantiles of a sorted array', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([10, 20], 0.05)).toBeCloseTo(10.5);
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('takes the median of an unsorted array without changing it', () => {
    const xs = [5, 1, 4, 2];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 4, 2]);
    expect(median([3, 9, 1])).toBe(3);
  });
});
