import { describe, expect, it } from 'vitest';
import { clusterBatch } from './batch.ts';
import { evaluate } from './metrics.ts';
import { OnlineClusterer, decideOnline, type OnlineContext, type OnlineNeighbour } from './online.ts';
import { clusterParamsFromManifest, qualityOf } from './params.ts';
import { groupPhotoFaces, uncalibratedEmbedderManifest, referenceCrops } from './testUtil.ts';
import type { ClusterFace } from './types.ts';
import { generateSynthetic } from './synthetic.ts';

const params = clusterParamsFromManifest(uncalibratedEmbedderManifest());

describe('online assignment', () => {
  it('stays close to batch clustering on synthetic data with many low-quality faces (BCubed F ≥ 0.95)', () => {
    const set = generateSynthetic({ seed: 11, identities: 150, lowQualityShare: 0.33, dim: 128 });
    const batch = clusterBatch(set.faces, params).labels;
    const online = new OnlineClusterer(params, 128);
    for (const f of set.faces) online.add(f);
    const labels = online.labels(set.faces.map((f) => f.id));
    expect(set.faces.length).toBeGreaterThan(1000);
    expect(evaluate(batch, labels).bcubed.f).toBeGreaterThanOrEqual(0.95);
    expect(evaluate(set.truth, labels).bcubed.f).toBeGreaterThan(0.8);
  });

  it('real group photos one face at a time: two close faces of one photo stay two people', () => {
    // bbt1's raj and leonard faces are closer (cos ≈ 0.5) than the same-person threshold
    const { faces, truth } = groupPhotoFaces(params.qualityRange);
    const run = (p: typeof params) => {
      const online = new OnlineClusterer(p, faces[0].unit.length);
      for (const f of faces) online.add(f);
      return online.labels(faces.map((f) => f.id));
    };
    const at = (who: string, photo: string) =>
      faces.findIndex((f, i) => truth[i] === who && f.photoId === photo);
    const [raj1, leonard1, raj4, leonard4] = [
      at('raj', 'bbt1.jpg'),
      at('leonard', 'bbt1.jpg'),
      at('raj', 'bbt4.jpg'),
      at('leonard', 'bbt4.jpg'),
    ];
    const off = run({ ...params, samePhotoCannotLink: false });
    expect(off[raj1]).not.toBeNull();
    expect(off[raj1]).toBe(off[leonard1]); // without the rule: one identity for two people
    const on = run(params);
    const held = new Set<string>();
    on.forEach((id, i) => {
      if (id === null) return;
      expect(held.has(`${id} ${faces[i].photoId}`)).toBe(false);
      held.add(`${id} ${faces[i].photoId}`);
    });
    expect(on[raj1]).not.toBe(on[leonard1]);
    expect(on[raj1]).toBe(on[raj4]);
    expect(on[leonard1]).toBe(on[leonard4]);
    expect(on[raj1]).not.toBeNull();
    expect(on[leonard1]).not.toBeNull();
    expect(evaluate(truth, on).bcubed.p).toBe(1); // no identity mixes two people
  });

  it('recovers the real crops identities one face at a time', () => {
    const { faces, truth } = referenceCrops(params.qualityRange);
    const online = new OnlineClusterer(params, faces[0].unit.length);
    for (const f of faces) online.add(f);
    expect(evaluate(truth, online.labels(faces.map((f) => f.id))).bcubed.f).toBeGreaterThanOrEqual(0.9);
  });

  describe('decisions', () => {
    const dim = 4;
    const unit = (v: number[]) => Float32Array.from(v, (x) => x / Math.hypot(...v));
    const mag = (q: number) => params.qualityRange[0] + q * (params.qualityRange[1] - params.qualityRange[0]);
    const mk = (id: string, v: number[], q: number): ClusterFace => ({
      id,
      unit: unit(v),
      magnitude: mag(q),
      quality: qualityOf(mag(q), params.qualityRange),
    });
    const identities = new Map<string, { template: Float32Array; magSum: number }>();
    const template = (faces: ClusterFace[]) => {
      const t = new Float32Array(dim);
      for (const f of faces) for (let i = 0; i < dim; i++) t[i] += f.unit[i] * f.magnitude;
      return { template: t, magSum: faces.reduce((s, f) => s + f.magnitude, 0) };
    };
    const a = [mk('a1', [1, 0.1, 0, 0], 0.9), mk('a2', [1, -0.1, 0, 0], 0.9)];
    const b = [mk('b1', [0, 0, 1, 0.1], 0.9), mk('b2', [0, 0, 1, -0.1], 0.9)];
    identities.set('A', template(a));
    identities.set('B', template(b));
    /** `photos`: identity → photos of its faces (same-photo rule) */
    const ctx = (
      nbrs: OnlineNeighbour[],
      cannot = false,
      excluded = false,
      photos: Record<string, string[]> = {},
    ): OnlineContext => ({
      params,
      neighbours: () => nbrs,
      identity: (id) => identities.get(id),
      identityCount: () => identities.size,
      excluded: () => excluded,
      cannotLink: () => cannot,
      face: () => undefined,
      identitiesOfPhoto: (photo) => new Set(Object.keys(photos).filter((id) => photos[id].includes(photo))),
      sharePhoto: (x, y) => (photos[x] ?? []).some((p) => (photos[y] ?? []).includes(p)),
    });
    const n = (f: ClusterFace, id: string | null, to: ClusterFace): OnlineNeighbour => ({
      faceId: f.id,
      identityId: id,
      quality: f.quality,
      cos: f.unit.reduce((s, x, i) => s + x * to.unit[i], 0),
    });

    it('a good face joins its identity', () => {
      const f = mk('x', [1, 0, 0, 0.05], 0.9);
      expect(decideOnline(f, ctx([n(a[0], 'A', f), n(a[1], 'A', f)]))).toMatchObject({
        kind: 'join',
        identityId: 'A',
        merge: [],
      });
    });

    it('a good face with no match is pending until a second one arrives, then they create an identity', () => {
      const f = mk('x', [0, 1, 0, 0], 0.9);
      expect(decideOnline(f, ctx([]))).toEqual({ kind: 'pending', reason: 'no_match' });
      const g = mk('y', [0, 1, 0.05, 0], 0.9);
      expect(decideOnline(g, ctx([n(f, null, g)]))).toEqual({ kind: 'create', with: ['x'] });
    });

    it('a low-quality face never creates an identity, and may not be placed when its only link is weak', () => {
      const f = mk('x', [0, 1, 0, 0], 0.9);
      const low = mk('l', [0, 1, 0.05, 0], 0.05);
      expect(decideOnline(low, ctx([n(f, null, low)]))).toEqual({ kind: 'pending', reason: 'low_quality' });
    });

    it('a face left pending says why: two identities about as close is ambiguous', () => {
      const between = mk('m', [1, 0, 1, 0], 0.05);
      const nbrs = [n(a[0], 'A', between), n(b[0], 'B', between)];
      expect(decideOnline(between, ctx(nbrs))).toEqual({ kind: 'pending', reason: 'ambiguous' });
      // the same face nearer A is placed there
      const nearA = mk('m2', [1, 0, 0.2, 0], 0.05);
      expect(decideOnline(nearA, ctx([n(a[0], 'A', nearA), n(b[0], 'B', nearA)]))).toMatchObject({
        kind: 'join',
        identityId: 'A',
      });
    });

    it('a face excluded by the user from an identity does not go back', () => {
      const f = mk('x', [1, 0, 0, 0.05], 0.9);
      expect(decideOnline(f, ctx([n(a[0], 'A', f)], false, true)).kind).not.toBe('join');
    });

    it('strong high-quality links to two agreeing identities merge them, unless a correction forbids it', () => {
      const a2 = [mk('c1', [1, 0, 0.1, 0], 0.9), mk('c2', [1, 0, -0.1, 0], 0.9)];
      identities.set('A2', template(a2));
      const f = mk('x', [1, 0, 0, 0], 0.95);
      const nbrs = [n(a[0], 'A', f), n(a2[0], 'A2', f)];
      const d = decideOnline(f, ctx(nbrs));
      expect(d.kind).toBe('join');
      expect(d.kind === 'join' ? [d.identityId, ...d.merge].sort() : []).toEqual(['A', 'A2']);
      expect(decideOnline(f, ctx(nbrs, true))).toMatchObject({ kind: 'join', merge: [] });
      // the same links from a low-quality face never merge
      const low = mk('l', [1, 0, 0, 0], 0.05);
      const dl = decideOnline(low, ctx([n(a[0], 'A', low), n(a2[0], 'A2', low)]));
      expect(dl.kind === 'join' ? dl.merge : []).toEqual([]);
      identities.delete('A2');
    });

    describe('two faces of one photo are two people', () => {
      const ruleOff = { ...params, samePhotoCannotLink: false };
      const inPhoto = (f: ClusterFace, photoId: string): ClusterFace => ({ ...f, photoId });

      it('a face never joins an identity holding a face of its photo; it takes the best allowed one', () => {
        const f = inPhoto(mk('x', [1, 0, 0.6, 0], 0.9), 'P'); // nearer A, linked to B too
        const nbrs = [n(a[0], 'A', f), n(a[1], 'A', f), n(b[0], 'B', f)];
        expect(decideOnline(f, ctx(nbrs))).toMatchObject({ kind: 'join', identityId: 'A' });
        expect(decideOnline(f, { ...ctx(nbrs, false, false, { A: ['P'] }), params: ruleOff })).toMatchObject({
          kind: 'join',
          identityId: 'A',
        });
        const d = decideOnline(f, ctx(nbrs, false, false, { A: ['P'] }));
        expect(d).toMatchObject({ kind: 'join', identityId: 'B' });
        // with B holding a face of P too, no identity is allowed: pending
        expect(decideOnline(f, ctx(nbrs, false, false, { A: ['P'], B: ['Q', 'P'] }))).toEqual({
          kind: 'pending',
          reason: 'no_match',
        });
      });

      it('a face never creates an identity with a pending face of its photo, and takes one face per photo', () => {
        const f = inPhoto(mk('x', [0, 1, 0, 0], 0.9), 'P');
        const np = (g: ClusterFace) => ({ ...n(g, null, f), photoId: g.photoId });
        const same = inPhoto(mk('y', [0, 1, 0.05, 0], 0.9), 'P');
        expect(decideOnline(f, ctx([np(same)]))).toEqual({ kind: 'pending', reason: 'no_match' });
        expect(decideOnline(f, { ...ctx([np(same)]), params: ruleOff })).toEqual({
          kind: 'create',
          with: ['y'],
        });
        const q1 = inPhoto(mk('q1', [0, 1, 0.05, 0], 0.9), 'Q');
        const q2 = inPhoto(mk('q2', [0, 1, 0.1, 0], 0.9), 'Q');
        expect(decideOnline(f, ctx([np(q1), np(q2)]))).toEqual({ kind: 'create', with: ['q1'] });
        expect(decideOnline(f, { ...ctx([np(q1), np(q2)]), params: ruleOff })).toEqual({
          kind: 'create',
          with: ['q1', 'q2'],
        });
      });

      it('two identities holding faces of one photo are never merged', () => {
        const a2 = [mk('c1', [1, 0, 0.1, 0], 0.9), mk('c2', [1, 0, -0.1, 0], 0.9)];
        identities.set('A2', template(a2));
        const f = inPhoto(mk('x', [1, 0, 0, 0], 0.95), 'R');
        const nbrs = [n(a[0], 'A', f), n(a2[0], 'A2', f)];
        const merged = decideOnline(f, ctx(nbrs, false, false, { A: ['P'], A2: ['Q'] }));
        expect(merged.kind === 'join' ? [merged.identityId, ...merged.merge].sort() : []).toEqual([
          'A',
          'A2',
        ]);
        const d = decideOnline(f, ctx(nbrs, false, false, { A: ['P'], A2: ['P'] }));
        expect(d).toMatchObject({ kind: 'join', merge: [] });
        identities.delete('A2');
      });
    });

    it('a face halfway between two identities does not merge them', () => {
      const f = mk('x', [1, 0, 1, 0], 0.95);
      const d = decideOnline(f, ctx([n(a[0], 'A', f), n(b[0], 'B', f)]));
      expect(d.kind === 'join' ? d.merge : []).toEqual([]);
    });
  });
});
