import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';

/** Small order statistics shared by the calibration, the model report and the benchmarks. */

/** Linear-interpolated quantile (q in 0..1) of an ASCENDING array; NaN for an empty one. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** The median of any array (the mean of the two middle values for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  return quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
}

/** A normal N(mean, sd²) fitted to a sample's upper tail; `deepestTail`: the smallest upper-tail probability it used. */
export interface UpperTailNormal {
  mean: number;
  sd: number;
  deepestTail: number;
}

/** upper-tail probabilities the tail fit reads: 10^−1, 10^−1.25, … (four points a decade) */
const TAIL_START_LOG10 = -1;
const TAIL_STEP_LOG10 = 0.25;

/**
 * The normal that matches a sample's UPPER TAIL: least squares of the sample's quantiles at the
 * upper-tail probabilities u = 10^−1, 10^−1.25, … on the standard normal's z = Φ⁻¹(1 − u), as deep
 * as at least `minBeyond` samples lie beyond the quantile (so each point is measured, not guessed).
 * A bar that a best-of-N statistic must clear reads the distribution at u ≈ α/N, far out in the
 * tail; a normal with the whole sample's mean and sd gets that wrong when the tail is lighter (or
 * heavier) than a normal's, and more wrong the larger N is. Each decade weighs the same. Null with
 * fewer than three points (a sample of under about 950 values).
 */
export function upperTailNormal(sorted: ArrayLike<number>, minBeyond = 30): UpperTailNormal | null {
  const points: { z: number; x: number }[] = [];
  let deepestTail = Number.NaN;
  for (let e = TAIL_START_LOG10; ; e -= TAIL_STEP_LOG10) {
    const u = 10 ** e;
    if (u * sorted.length < minBeyond) break;
    points.push({ z: -normalQuantile(u, 0, 1), x: quantile(sorted, 1 - u) });
    deepestTail = u;
  }
  if (points.length < 3) return null;
  const mz = points.reduce((s, p) => s + p.z, 0) / points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / points.length;
  let szz = 0;
  let szx = 0;
  for (const p of points) {
    szz += (p.z - mz) ** 2;
    szx += (p.z - mz) * (p.x - mx);
  }
  const sd = szx / szz;
  return { mean: mx - sd * mz, sd, deepestTail };
}
