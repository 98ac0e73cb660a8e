import { describe, expect, it } from 'vitest';
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import { median, quantile, upperTailNormal } from './stats.ts';
import { rng } from './random.ts';

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

describe('upperTailNormal', () => {
  const sample = (n: number, draw: (rand: () => number) => number) => {
    const rand = rng(11);
    return Float64Array.from({ length: n }, () => draw(rand)).sort();
  };
  const gaussian = (rand: () => number) =>
    Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  /** the cosine the best of n draws stays under with probability 1 − exceed, under N(mean, sd²) */
  const bestOf = (fit: { mean: number; sd: number }, n: number, exceed: number) =>
    fit.mean - fit.sd * normalQuantile(-Math.expm1(Math.log1p(-exceed) / n), 0, 1);

  it('gives back the mean and sd of a normal sample', () => {
    const fit = upperTailNormal(sample(200_000, (r) => 0.02 + 0.15 * gaussian(r)))!;
    expect(Math.abs(fit.mean - 0.02)).toBeLessThan(0.02);
    expect(Math.abs(fit.sd - 0.15)).toBeLessThan(0.01);
    // as deep as 30 samples beyond the quantile: 10^−3.75 = 1.8e−4 for 200,000
    expect(fit.deepestTail).toBeCloseTo(10 ** -3.75, 6);
  });

  it('predicts the best of N of a light-tailed sample where the whole-sample normal does not', () => {
    // uniform on [−0.3, 0.3]: no draw ever passes 0.3, while a normal with its sd (0.173) goes on
    const xs = sample(1_000_000, (r) => 0.6 * r() - 0.3);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    const tail = upperTailNormal(xs)!;
    expect(tail.sd).toBeLessThan(sd);
    // the median of the best of 1,000 draws: 0.3 − 0.6·(1 − 0.5^(1/1000)) = 0.2996
    const truth = 0.3 - 0.6 * -Math.expm1(Math.log(0.5) / 1000);
    const errTail = Math.abs(bestOf(tail, 1000, 0.5) - truth);
    const errWhole = Math.abs(bestOf({ mean, sd }, 1000, 0.5) - truth);
    expect(errWhole).toBeGreaterThan(0.2);
    expect(errTail).toBeLessThan(errWhole / 3);
  });

  it('is null for a sample too small to show a tail', () => {
    expect(upperTailNormal(sample(500, gaussian))).toBeNull();
    expect(upperTailNormal(sample(2000, gaussian))).not.toBeNull();
  });
});
