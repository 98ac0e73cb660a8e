import { describe, expect, it } from 'vitest';
import type { LabelledCollection } from '../../clustering/calibration.ts';
import type { ClusterFace } from '../../clustering/types.ts';
import { leftoverStudy } from './leftovers.ts';

/** a unit face along the direction (x, y) in 2-D */
const face = (id: string, x: number, y: number): ClusterFace => {
  const n = Math.hypot(x, y);
  return { id, unit: Float32Array.of(x / n, y / n), magnitude: 60, quality: 1, photoId: id };
};

describe('leftoverStudy', () => {
  // identity 0 = ann (x axis), identity 1 = bob (y axis); five leftovers of different kinds
  const faces = [
    face('a1', 1, 0),
    face('a2', 1, 0.05),
    face('b1', 0, 1),
    face('b2', 0.05, 1),
    face('a3', 1, 0.6), // ann, nearest ann: own person
    face('a4', 0.3, 1), // ann, nearest bob: other person
    face('c1', 0.7, 0.7), // carl, seen once
    face('d1', 1, 0.9), // dan, twice, never clustered
    face('d2', 0.9, 1),
  ];
  const truth = ['ann', 'ann', 'bob', 'bob', 'ann', 'ann', 'carl', 'dan', 'dan'];
  const c: LabelledCollection = {
    name: 'constructed',
    faces,
    cues: faces.map(() => ({})),
    largest: Int32Array.from(faces.keys()),
    truth,
  };
  const labels = Int32Array.of(0, 0, 1, 1, -1, -1, -1, -1, -1);
  const reasons = [
    undefined,
    undefined,
    undefined,
    undefined,
    'no_match',
    'ambiguous',
    'no_match',
    'no_match',
    undefined,
  ] as const;

  it('sorts each unassigned labelled face by where its nearest identity would put it, per reason', () => {
    const s = leftoverStudy(c, { labels, clusters: 2, reasons: [...reasons] });
    expect(s.unassigned).toBe(5);
    expect(s.byReason).toEqual({
      no_match: { ownPerson: 1, seenOnce: 1, noIdentity: 1 },
      ambiguous: { otherPerson: 1 },
      dropped: { noIdentity: 1 },
    });
    expect(s.nearestCosine.ownPerson!.faces).toBe(1);
    expect(s.nearestCosine.noIdentity!.faces).toBe(2);
    // a3 = (1, 0.6) against ann's template, almost the x axis
    expect(s.nearestCosine.ownPerson!.p50).toBeCloseTo(0.87, 1);
  });

  it('an identity of unlabelled faces is told apart from another person', () => {
    const withStranger: LabelledCollection = {
      ...c,
      // the bob faces become other faces of their photos: no labelled face in identity 1
      largest: Int32Array.of(0, 1, -1, -1, 4, 5, 6, 7, 8),
    };
    const s = leftoverStudy(withStranger, { labels, clusters: 2, reasons: [...reasons] });
    expect(s.byReason.ambiguous).toEqual({ unlabelledIdentity: 1 });
  });
});
