import { describe, expect, it } from 'vitest';
import { clusterBatch } from './batch.ts';
import { decideOnline, type OnlineContext } from './online.ts';
import { attachBar, clusterParamsFromManifest, type ClusterParams } from './params.ts';
import { fitImpostorCosine, type LabelledCollection } from './calibration.ts';
import type { ClusterFace } from './types.ts';
import { rng } from '../core/random.ts';

/**
 * The attach bar that follows the number of identities (`attachFalseRate` α): a face of someone the
 * collection has no identity for is compared with every identity, so the bar is the cosine the best
 * of N impostors stays under with probability 1 − α. On constructed faces: the same hard face joins
 * its person in a collection of a few people and stays out in one of hundreds.
 */

const DIM = 256;
const rand = rng(5);

function gaussianUnit(): Float32Array {
  const v = new Float32Array(DIM);
  for (let i = 0; i < DIM; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const t = 2 * Math.PI * rand();
    v[i] = r * Math.cos(t);
    v[i + 1] = r * Math.sin(t);
  }
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** unit vector at cosine `c` to the unit vector `base`, in a random direction orthogonal to it */
function atCosine(base: Float32Array, c: number): Float32Array {
  const o = gaussianUnit();
  let d = 0;
  for (let i = 0; i < DIM; i++) d += o[i]! * base[i]!;
  for (let i = 0; i < DIM; i++) o[i] -= d * base[i]!;
  const n = Math.hypot(...o);
  return base.map((b, i) => c * b + (Math.sqrt(1 - c * c) * o[i]!) / n);
}

let next = 0;
function face(unit: Float32Array, quality = 1): ClusterFace {
  const id = `f${next++}`;
  return { id, unit, magnitude: 80, quality, photoId: id };
}

const base: ClusterParams = {
  ...clusterParamsFromManifest({
    quality: { dropBelowMagnitude: 40, magnitudeRange: [40, 90] },
    thresholds: { sameIdentityCosine: 0.46 },
  }),
  mergeThreshold: 0.5,
  smallGroupPenalty: 0,
  lowQualityMargin: 0,
  attachMargin: 0,
  attachFalseRate: 0.25,
  impostorCosineMean: 0.02,
  impostorCosineSd: 0.148,
};

describe('attachBar', () => {
  it('is the fixed attachThreshold while attachFalseRate is 0', () => {
    expect(attachBar({ ...base, attachFalseRate: 0 }, 5)).toBe(base.attachThreshold);
    expect(attachBar({ ...base, attachFalseRate: 0 }, 5000)).toBe(base.attachThreshold);
  });

  it('is the (1 − α)^(1/N) quantile of the impostor cosine, rising with N', () => {
    // one identity: the plain 1 − α quantile, Φ⁻¹(0.75) = 0.6744897501960817
    expect(attachBar(base, 1)).toBeCloseTo(0.02 + 0.148 * 0.6744897501960817, 9);
    // 1,000 identities: upper tail 1 − 0.75^(1/1000) = 2.8764e-4, Φ⁻¹ = 3.4428 (to four places)
    expect(attachBar(base, 1000)).toBeCloseTo(0.02 + 0.148 * 3.4428, 3);
    const bars = [1, 10, 100, 1000, 10_000, 1_000_000].map((n) => attachBar(base, n));
    for (let i = 1; i < bars.length; i++) expect(bars[i]!).toBeGreaterThan(bars[i - 1]!);
    expect(Number.isFinite(bars.at(-1)!)).toBe(true);
    // a smaller α asks more of the face
    expect(attachBar({ ...base, attachFalseRate: 0.05 }, 100)).toBeGreaterThan(attachBar(base, 100));
    // no identity yet counts as one
    expect(attachBar(base, 0)).toBe(attachBar(base, 1));
  });

  it('refuses an α without the impostor distribution to compute it from', () => {
    expect(() =>
      clusterParamsFromManifest(
        {
          quality: { dropBelowMagnitude: 40, magnitudeRange: [40, 90] },
          thresholds: { sameIdentityCosine: 0.46 },
        },
        { attachFalseRate: 0.2 },
      ),
    ).toThrow(/impostor/);
  });
});

/** `people` identities of 6 good faces each (cosine 0.8 to their centre), and one hard face of the first */
function collection(people: number): { faces: ClusterFace[]; hard: ClusterFace; first: ClusterFace } {
  const centres = Array.from({ length: people }, gaussianUnit);
  const faces = centres.flatMap((c) => Array.from({ length: 6 }, () => face(atCosine(c, 0.8))));
  // a low-quality face (not core: it can only attach) at cosine 0.40 to its person's centre; its
  // identity's template lies at about 0.8 to the centre, so the face sits near 0.40·0.8/0.8 ≈ 0.36–0.40
  const hard = face(atCosine(centres[0]!, 0.4), 0.1);
  return { faces: [...faces, hard], hard, first: faces[0]! };
}

describe('batch: the attach bar follows the number of identities', () => {
  it('a hard face joins its person among 4 identities and stays out among 400', () => {
    const few = collection(4);
    const many = collection(400);
    const r4 = clusterBatch(few.faces, base);
    const r400 = clusterBatch(many.faces, base);
    expect(r4.clusters).toBe(4);
    expect(r400.clusters).toBe(400);
    const label = (c: typeof few, r: typeof r4, f: ClusterFace) => r.labels[c.faces.indexOf(f)]!;
    // bar(4) ≈ 0.25 < the face's cosine < bar(400) ≈ 0.49
    expect(attachBar(base, 4)).toBeLessThan(0.3);
    expect(attachBar(base, 400)).toBeGreaterThan(0.45);
    expect(label(few, r4, few.hard)).toBe(label(few, r4, few.first));
    expect(label(many, r400, many.hard)).toBe(-1);
    expect(r400.reasons![many.faces.indexOf(many.hard)]).toBe('low_quality');
    // with a fixed bar (α 0) at 0.46 both collections refuse it
    const fixed = { ...base, attachFalseRate: 0, attachThreshold: 0.46 };
    expect(clusterBatch(few.faces, fixed).labels[few.faces.indexOf(few.hard)]).toBe(-1);
  });
});

describe('online: the attach bar follows the identities in the store', () => {
  it('the same face and neighbours: joins with 4 identities, stays pending with 400', () => {
    const centre = gaussianUnit();
    const members = Array.from({ length: 6 }, () => atCosine(centre, 0.8));
    const template = new Float32Array(DIM);
    for (const m of members) for (let i = 0; i < DIM; i++) template[i] += 80 * m[i]!;
    const hard = face(atCosine(centre, 0.4), 0.1);
    const context = (identities: number): OnlineContext => ({
      params: base,
      neighbours: () => [{ faceId: 'm0', identityId: 'A', cos: 0.35, quality: 1 }],
      identity: (id) => (id === 'A' ? { template, magSum: 480, faces: 6 } : undefined),
      identityCount: () => identities,
      excluded: () => false,
      cannotLink: () => false,
      face: () => undefined,
    });
    expect(decideOnline(hard, context(4))).toMatchObject({ kind: 'join', identityId: 'A' });
    expect(decideOnline(hard, context(400))).toMatchObject({ kind: 'pending' });
  });
});

describe('fitImpostorCosine', () => {
  it('measures the cosine of faces to other people’s templates, each collection counting once', () => {
    const people = 30;
    const centres = Array.from({ length: people }, gaussianUnit);
    const faces: ClusterFace[] = [];
    const truth: string[] = [];
    const largest: number[] = [];
    centres.forEach((c, p) => {
      for (let k = 0; k < 4; k++) {
        largest.push(faces.length);
        truth.push(`p${p}`);
        faces.push(face(atCosine(c, 0.8)));
      }
    });
    const c: LabelledCollection = {
      name: 'made',
      faces,
      cues: faces.map(() => ({})),
      largest: Int32Array.from(largest),
      truth,
    };
    const fit = fitImpostorCosine([c], { dropBelowMagnitude: 40 })!;
    // random directions in 256 dimensions: cosine mean 0, sd 1/√256 = 0.0625, close to normal, so
    // the whole distribution and the normal fitted to its upper tail agree
    expect(Math.abs(fit.overallMean)).toBeLessThan(0.01);
    expect(fit.overallSd).toBeGreaterThan(0.055);
    expect(fit.overallSd).toBeLessThan(0.07);
    expect(Math.abs(fit.mean)).toBeLessThan(0.02);
    expect(fit.sd).toBeGreaterThan(0.05);
    expect(fit.sd).toBeLessThan(0.075);
    expect(fit.pairs).toBe(people * 4 * (people - 1));
    // the same collection twice: the same figures (each counts once), twice the pairs
    const twice = fitImpostorCosine([c, { ...c, name: 'again' }], { dropBelowMagnitude: 40 })!;
    expect(twice.mean).toBe(fit.mean);
    expect(twice.sd).toBe(fit.sd);
    expect(twice.overallSd).toBe(fit.overallSd);
    expect(twice.pairs).toBe(2 * fit.pairs);
  });

  it('is null when no two people have enough faces', () => {
    const f = face(gaussianUnit());
    const c: LabelledCollection = {
      name: 'one',
      faces: [f],
      cues: [{}],
      largest: Int32Array.from([0]),
      truth: ['a'],
    };
    expect(fitImpostorCosine([c], { dropBelowMagnitude: 40 })).toBeNull();
  });
});
