import { describe, expect, it } from 'vitest';
import { clusterBatch } from './batch.ts';
import { OnlineClusterer } from './online.ts';
import { mergeBar, type ClusterParams } from './params.ts';
import type { ClusterFace } from './types.ts';
import { rng } from '../core/random.ts';

/**
 * The protection rules on constructed faces: people seen once stay alone, small identities are
 * harder to join than large ones, low-quality faces never create, bridge or merge, and a face with
 * no confident home stays unassigned with its reason.
 */

const DIM = 16;
const params: ClusterParams = {
  linkThreshold: 0.46,
  lowQualityMargin: 0.115,
  coreQuality: 0.2,
  mergeThreshold: 0.46,
  attachMargin: 0.08,
  attachThreshold: 0.46,
  attachFalseRate: 0,
  impostorCosineMean: 0,
  impostorCosineSd: 0,
  smallGroupPenalty: 0.2,
  singletonMargin: 0,
  minClusterSize: 2,
  dropBelowMagnitude: 40,
  qualityRange: [40, 90],
  k: 16,
  ef: 64,
  M: 16,
  efConstruction: 32,
  seed: 1,
  samePhotoCannotLink: true,
};

function axis(k: number): Float32Array {
  const v = new Float32Array(DIM);
  v[k] = 1;
  return v;
}

/** unit vector at cosine `c` to `base` (unit), towards axis `k` (orthogonal to base) */
function at(base: Float32Array, k: number, c: number): Float32Array {
  const o = axis(k);
  const v = new Float32Array(DIM);
  const s = Math.sqrt(1 - c * c);
  for (let i = 0; i < DIM; i++) v[i] = c * base[i]! + s * o[i]!;
  return v;
}

let next = 0;
function face(unit: Float32Array, quality = 1, magnitude = 80): ClusterFace {
  const id = `f${next++}`;
  return { id, unit, magnitude, quality, photoId: id };
}

const rand = rng(3);

/** an identity of `n` good faces around axis `centre`, each 0.9 cosine to it, off in random directions of axes 8..15 */
function identity(centre: number, n: number): ClusterFace[] {
  return around(axis(centre), n);
}

/** `n` good faces each at cosine 0.9 to the unit vector `centre` (which lies in axes 0..7) */
function around(centre: Float32Array, n: number): ClusterFace[] {
  return Array.from({ length: n }, () => {
    const off = new Float32Array(DIM);
    for (let k = 8; k < DIM; k++) off[k] = rand() - 0.5;
    const len = Math.hypot(...off);
    const v = new Float32Array(DIM);
    const s = Math.sqrt(1 - 0.81);
    for (let i = 0; i < DIM; i++) v[i] = 0.9 * centre[i]! + (s * off[i]!) / len;
    return face(v);
  });
}

const labelOf = (faces: ClusterFace[], target: ClusterFace, labels: Int32Array) =>
  labels[faces.indexOf(target)]!;

describe('protection rules (batch)', () => {
  it('a small identity is harder to join than a large one (ω/√n on top of the attach bar)', () => {
    const small = [face(at(axis(0), 8, 0.9)), face(at(axis(0), 9, 0.9))];
    const large = identity(1, 20);
    // both newcomers sit at cosine 0.55 to their identity's direction: above τ = 0.46,
    // below τ + ω/√2 ≈ 0.60 for the pair, above τ + ω/√20 ≈ 0.50 for the large identity
    const toSmall = face(at(axis(0), 6, 0.55 / 0.9));
    const toLarge = face(at(axis(1), 7, 0.55 / 0.9));
    const faces = [...small, ...large, toSmall, toLarge];
    const r = clusterBatch(faces, params);
    expect(labelOf(faces, toLarge, r.labels)).toBe(labelOf(faces, large[0]!, r.labels));
    expect(labelOf(faces, toSmall, r.labels)).toBe(-1);
    expect(r.reasons![faces.indexOf(toSmall)]).toBe('no_match');
    // without the rule the small identity takes it
    const off = clusterBatch(faces, { ...params, smallGroupPenalty: 0 });
    expect(labelOf(faces, toSmall, off.labels)).toBe(labelOf(faces, small[0]!, off.labels));
  });

  it('the attach step has its own ω when attachSmallGroupPenalty is set (the merge keeps ω)', () => {
    const small = [face(at(axis(0), 8, 0.9)), face(at(axis(0), 9, 0.9))];
    const large = identity(1, 20);
    const toSmall = face(at(axis(0), 6, 0.55 / 0.9));
    const faces = [...small, ...large, toSmall];
    // ω_a 0: the pair (formed by the merge at 0.81 ≥ τ + ω = 0.66) takes the face at 0.55
    const lenient = clusterBatch(faces, { ...params, attachSmallGroupPenalty: 0 });
    expect(labelOf(faces, small[0]!, lenient.labels)).toBeGreaterThanOrEqual(0);
    expect(labelOf(faces, toSmall, lenient.labels)).toBe(labelOf(faces, small[0]!, lenient.labels));
    // merge ω 0.12 keeps the face out of the merge (0.55 < τ + 0.12·√(3/4) ≈ 0.564); its cosine to
    // the pair's direction, 0.578, clears the attach bar with that ω (τ + 0.12/√2 ≈ 0.545) but not
    // with ω_a 0.2 (τ + 0.2/√2 ≈ 0.601)
    const sameOmega = clusterBatch(faces, { ...params, smallGroupPenalty: 0.12 });
    expect(labelOf(faces, toSmall, sameOmega.labels)).toBe(labelOf(faces, small[0]!, sameOmega.labels));
    const strict = clusterBatch(faces, { ...params, smallGroupPenalty: 0.12, attachSmallGroupPenalty: 0.2 });
    expect(labelOf(faces, small[0]!, strict.labels)).toBeGreaterThanOrEqual(0);
    expect(labelOf(faces, toSmall, strict.labels)).toBe(-1);
    expect(strict.reasons![faces.indexOf(toSmall)]).toBe('no_match');
  });

  it('two people seen once stay alone when their cosine is above τ but not above τ + ω', () => {
    const a = face(axis(0));
    const b = face(at(axis(0), 1, 0.6));
    expect(clusterBatch([a, b], params).labels).toEqual(Int32Array.from([-1, -1]));
    expect(clusterBatch([a, b], { ...params, smallGroupPenalty: 0 }).labels).toEqual(Int32Array.from([0, 0]));
    // a near-duplicate pair is still one person
    const c = face(at(axis(0), 1, 0.95));
    expect(clusterBatch([a, c], params).labels).toEqual(Int32Array.from([0, 0]));
  });

  it('a face about as close to two identities stays unassigned: ambiguous', () => {
    const A = identity(0, 10);
    const B = identity(1, 10);
    const mid = new Float32Array(DIM);
    mid[0] = Math.SQRT1_2;
    mid[1] = Math.SQRT1_2;
    const between = face(mid, 0.15, 47); // not a core face: it can only attach
    const faces = [...A, ...B, between];
    const r = clusterBatch(faces, params);
    expect(labelOf(faces, between, r.labels)).toBe(-1);
    expect(r.reasons![faces.indexOf(between)]).toBe('ambiguous');
    expect(new Set(A.map((f) => labelOf(faces, f, r.labels)))).toEqual(
      new Set([labelOf(faces, A[0]!, r.labels)]),
    );
    expect(labelOf(faces, A[0]!, r.labels)).not.toBe(labelOf(faces, B[0]!, r.labels));
  });

  it('low-quality faces never create an identity, whatever their cosine: low_quality', () => {
    const weak = [
      face(axis(3), 0.1, 45),
      face(at(axis(3), 8, 0.97), 0.1, 45),
      face(at(axis(3), 9, 0.97), 0.1, 45),
    ];
    const r = clusterBatch(weak, params);
    expect(Array.from(r.labels)).toEqual([-1, -1, -1]);
    expect(r.reasons).toEqual(['low_quality', 'low_quality', 'low_quality']);
  });

  it('a chain of low-quality faces never bridges or merges two identities', () => {
    const A = identity(0, 6);
    const B = identity(1, 6);
    // low-quality faces stepping from A's direction to B's, each close to the next
    const chain = Array.from({ length: 7 }, (_, i) => {
      const t = ((i + 1) / 8) * (Math.PI / 2);
      const v = new Float32Array(DIM);
      v[0] = Math.cos(t);
      v[1] = Math.sin(t);
      return face(v, 0.1, 45);
    });
    const faces = [...A, ...B, ...chain];
    const r = clusterBatch(faces, params);
    expect(labelOf(faces, A[0]!, r.labels)).not.toBe(labelOf(faces, B[0]!, r.labels));
    expect(labelOf(faces, A[0]!, r.labels)).toBeGreaterThanOrEqual(0);
    expect(labelOf(faces, B[0]!, r.labels)).toBeGreaterThanOrEqual(0);
    // with every face taken as good the chain does connect them: the rule is what keeps them apart
    const good = faces.map((f) => ({ ...f, quality: 1, magnitude: 80 }));
    const merged = clusterBatch(good, { ...params, smallGroupPenalty: 0, mergeThreshold: 0.1 });
    expect(merged.labels[0]).toBe(merged.labels[6]);
  });

  it('two large groups of one person merge at an agreement at which a face seen once stays alone', () => {
    // the merge bar falls with BOTH templates' estimation noise, √((1/a + 1/b)/2): it nears
    // mergeThreshold only when both groups are large, and stays ω/√2 above it for a single face
    const low = { ...params, linkThreshold: 0.3, mergeThreshold: 0.3, smallGroupPenalty: 0.3 };
    expect(mergeBar(low, 1, 1)).toBeCloseTo(0.6);
    expect(mergeBar(low, 1, 10_000)).toBeGreaterThan(0.3 + 0.3 * Math.SQRT1_2);
    expect(mergeBar(low, 10_000, 10_000)).toBeLessThan(0.31);
    // one person photographed in two conditions: groups of 12 faces around centres at cosine 0.52,
    // mean cross cosine ≈ 0.81 · 0.52 ≈ 0.42, above the bar for 12 and 12 faces (≈ 0.39)
    const c2 = new Float32Array(DIM);
    c2[0] = 0.52;
    c2[1] = Math.sqrt(1 - 0.52 * 0.52);
    const A = identity(0, 12);
    const B = around(c2, 12);
    // someone else seen once at cosine 0.5 to A's centre: mean cosine 0.45 to A, more than A and
    // B agree, but below the bar for one face and 12 (≈ 0.52)
    const once = face(at(axis(0), 3, 0.5));
    const faces = [...A, ...B, once];
    // nothing attached afterwards: this is the merge rule alone
    const r = clusterBatch(faces, { ...low, attachThreshold: 2 });
    expect(new Set(faces.slice(0, 24).map((f) => labelOf(faces, f, r.labels))).size).toBe(1);
    expect(labelOf(faces, A[0]!, r.labels)).toBeGreaterThanOrEqual(0);
    expect(labelOf(faces, once, r.labels)).toBe(-1);
  });

  it('a face far from everyone stays unassigned: no_match', () => {
    const A = identity(0, 5);
    const far = face(axis(5));
    const faces = [...A, far];
    const r = clusterBatch(faces, params);
    expect(labelOf(faces, far, r.labels)).toBe(-1);
    expect(r.reasons![faces.indexOf(far)]).toBe('no_match');
    expect(r.reasons![0]).toBeUndefined();
  });
});

describe('protection rules (online, one face at a time)', () => {
  it('a small identity is harder to join than a large one', () => {
    const online = new OnlineClusterer(params, DIM);
    const small = [face(at(axis(0), 8, 0.9)), face(at(axis(0), 9, 0.9))];
    const large = identity(1, 20);
    for (const f of [...small, ...large]) online.add(f);
    const toSmall = face(at(axis(0), 6, 0.55 / 0.9));
    const toLarge = face(at(axis(1), 7, 0.55 / 0.9));
    online.add(toSmall);
    online.add(toLarge);
    const [s0, l0, ts, tl] = online.labels([small[0]!.id, large[0]!.id, toSmall.id, toLarge.id]);
    expect(s0).not.toBeNull();
    expect(tl).toBe(l0);
    expect(ts).toBeNull();
  });

  it('the online attach takes the attach step’s own ω', () => {
    for (const [omegaA, joins] of [
      [0, true],
      [0.2, false],
    ] as const) {
      const online = new OnlineClusterer({ ...params, attachSmallGroupPenalty: omegaA }, DIM);
      const small = [face(at(axis(0), 8, 0.9)), face(at(axis(0), 9, 0.9))];
      for (const f of small) online.add(f);
      const toSmall = face(at(axis(0), 6, 0.55 / 0.9));
      online.add(toSmall);
      const [s0, ts] = online.labels([small[0]!.id, toSmall.id]);
      expect(s0).not.toBeNull();
      expect(ts).toBe(joins ? s0 : null);
    }
  });

  it('a low-quality face never creates an identity online', () => {
    const online = new OnlineClusterer(params, DIM);
    const weak = [face(axis(3), 0.1, 45), face(at(axis(3), 8, 0.97), 0.1, 45)];
    for (const f of weak) online.add(f);
    expect(online.labels(weak.map((f) => f.id))).toEqual([null, null]);
  });
});
