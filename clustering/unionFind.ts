/** Union-find over 0..n-1 with path halving; the smaller index becomes the root (deterministic). */
export class UnionFind {
  readonly parent: Int32Array;
  readonly size: Int32Array;

  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
    this.size = new Int32Array(n).fill(1);
  }

  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]];
      x = p[x];
    }
    return x;
  }

  /** joins the sets of a and b; returns the new root (the smaller of the two roots) */
  union(a: number, b: number): number {
    let ra = this.find(a);
    let rb = this.find(b);
    if (ra === rb) return ra;
    if (rb < ra) [ra, rb] = [rb, ra];
    this.parent[rb] = ra;
    this.size[ra] += this.size[rb];
    return ra;
  }
}

/** Turns per-item roots into dense labels numbered by first appearance; -1 stays -1. */
export function denseLabels(roots: Int32Array): { labels: Int32Array; clusters: number } {
  const map = new Map<number, number>();
  const labels = new Int32Array(roots.length);
  for (let i = 0; i < roots.length; i++) {
    const r = roots[i];
    if (r < 0) {
      labels[i] = -1;
      continue;
    }
    let l = map.get(r);
    if (l === undefined) {
      l = map.size;
      map.set(r, l);
    }
    labels[i] = l;
  }
  return { labels, clusters: map.size };
}
