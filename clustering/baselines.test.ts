import { describe, expect, it } from 'vitest';
import { chineseWhispers, corePoint, singleLinkage } from './baselines.ts';
import type { KnnGraph } from './knnGraph.ts';

/** a hand-made kNN graph: two triangles (0,1,2) and (3,4,5) joined by one weak edge 2–3, node 6 alone */
function graph(): KnnGraph {
  const k = 3;
  const lists: [number, number][][] = [
    [
      [1, 0.9],
      [2, 0.8],
    ],
    [
      [0, 0.9],
      [2, 0.85],
    ],
    [
      [1, 0.85],
      [0, 0.8],
      [3, 0.5],
    ],
    [
      [4, 0.9],
      [5, 0.8],
      [2, 0.5],
    ],
    [
      [3, 0.9],
      [5, 0.85],
    ],
    [
      [4, 0.85],
      [3, 0.8],
    ],
    [[5, 0.2]],
  ];
  const n = lists.length;
  const nbr = new Int32Array(n * k).fill(-1);
  const sim = new Float32Array(n * k);
  const deg = new Int32Array(n);
  lists.forEach((l, i) => {
    deg[i] = l.length;
    l.forEach(([j, s], t) => {
      nbr[i * k + t] = j;
      sim[i * k + t] = s;
    });
  });
  return { k, nodes: Int32Array.from(lists.keys()), deg, nbr, sim };
}

const same = (l: Int32Array, a: number, b: number) => l[a] >= 0 && l[a] === l[b];

describe('baselines', () => {
  it('single linkage: components above the threshold', () => {
    const low = singleLinkage(7, graph(), 0.45).labels;
    expect(same(low, 0, 5)).toBe(true);
    expect(low[6]).toBe(-1);
    const high = singleLinkage(7, graph(), 0.6).labels;
    expect(same(high, 0, 2) && same(high, 3, 5) && !same(high, 2, 3)).toBe(true);
  });

  it('core points: cores need minFaces close neighbours; others take the nearest core', () => {
    // at maxDistance 0.25 (cos ≥ 0.75) every triangle node has 2 close neighbours
    const r = corePoint(7, graph(), 0.25, 2).labels;
    expect(same(r, 0, 2) && same(r, 3, 5) && !same(r, 2, 3)).toBe(true);
    // with minFaces 3 nobody is a core
    expect([...corePoint(7, graph(), 0.25, 3).labels].every((l) => l === -1)).toBe(true);
  });

  it('Chinese Whispers separates the two triangles despite the weak bridge', () => {
    const r = chineseWhispers(7, graph(), 0.45, 1).labels;
    expect(same(r, 0, 1) && same(r, 1, 2) && same(r, 3, 4) && same(r, 4, 5)).toBe(true);
    expect(same(r, 2, 3)).toBe(false);
    expect([...chineseWhispers(7, graph(), 0.45, 1).labels]).toEqual([...r]);
  });
});
