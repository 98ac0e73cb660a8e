import { describe, expect, it } from 'vitest';
import { generateSynthetic, syntheticOfSize } from './synthetic.ts';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);

describe('synthetic MagFace-like generator', () => {
  const set = generateSynthetic({ seed: 3, identities: 40, dim: 64, lowQualityShare: 0.3 });

  it('is seeded: the same options give the same faces', () => {
    const again = generateSynthetic({ seed: 3, identities: 40, dim: 64, lowQualityShare: 0.3 });
    expect(again.faces.map((f) => f.magnitude)).toEqual(set.faces.map((f) => f.magnitude));
    expect([...again.faces[5].unit]).toEqual([...set.faces[5].unit]);
    expect(generateSynthetic({ seed: 4, identities: 40, dim: 64 }).faces[0].magnitude).not.toBe(
      set.faces[0].magnitude,
    );
  });

  it('gives unit directions, magnitudes that rise with quality, and the asked low-quality share', () => {
    for (const f of set.faces) expect(Math.hypot(...f.unit)).toBeCloseTo(1, 5);
    const low = set.faces.filter((_, i) => set.trueQuality[i] < 0.2);
    const high = set.faces.filter((_, i) => set.trueQuality[i] >= 0.25);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(low.map((f) => f.magnitude))).toBeLessThan(mean(high.map((f) => f.magnitude)) - 10);
    expect(low.length / set.faces.length).toBeGreaterThan(0.22);
    expect(low.length / set.faces.length).toBeLessThan(0.38);
  });

  it('spreads low-quality faces further from their identity than good ones', () => {
    // mean cosine to other faces of the same identity, by quality
    const byLabel = new Map<number, number[]>();
    set.truth.forEach((l, i) => byLabel.set(l, [...(byLabel.get(l) ?? []), i]));
    const meanSame = (pick: (i: number) => boolean) => {
      let s = 0;
      let n = 0;
      for (const members of byLabel.values())
        for (const i of members) {
          if (!pick(i)) continue;
          for (const j of members) {
            if (j === i || set.trueQuality[j] <= 0.6) continue;
            s += dot(set.faces[i].unit, set.faces[j].unit);
            n++;
          }
        }
      return s / n;
    };
    expect(meanSame((i) => set.trueQuality[i] > 0.6)).toBeGreaterThan(
      meanSame((i) => set.trueQuality[i] < 0.2) + 0.2,
    );
  });

  it('adds distractors seen once and reaches about the asked size', () => {
    const s = syntheticOfSize(2000, { seed: 1, dim: 32, distractorShare: 0.1 });
    expect(s.faces.length).toBeGreaterThan(1900);
    expect(s.faces.length).toBeLessThan(2100);
    const counts = new Map<number, number>();
    for (const l of s.truth) counts.set(l, (counts.get(l) ?? 0) + 1);
    const once = [...counts.values()].filter((c) => c === 1).length;
    expect(once).toBeGreaterThanOrEqual(0.1 * s.faces.length * 0.9);
    expect(Math.max(...counts.values())).toBeGreaterThan(20); // long tail
  });
});
