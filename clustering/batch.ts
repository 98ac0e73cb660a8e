import { mergeBar, type ClusterParams } from './params.ts';
import type { ClusterConstraints, ClusterFace, Clustering, UnassignedReason } from './types.ts';
import { buildKnnGraph, type KnnGraph, type UnitIndex } from './knnGraph.ts';
import { graphFromTable, parallelNeighbours } from './parallelKnn.ts';
import { attachRefusal, leftoverReason, linkScore, templateAgreement, templateCosine } from './linkScore.ts';
import { UnionFind, denseLabels } from './unionFind.ts';
import { addScaled } from './vec.ts';

/** attach rounds: later rounds see templates that include the faces attached before */
const ATTACH_ROUNDS = 3;

export interface BatchOptions {
  constraints?: ClusterConstraints;
  /** a kNN graph over exactly the core faces, built earlier with the same k (reused across settings) */
  coreGraph?: { graph: KnnGraph; index: UnitIndex };
  onProgress?: (done: number, total: number) => void;
}

/**
 * Quality-aware batch clustering (see linkScore.ts for the rules):
 * 1. faces below `dropBelowMagnitude` are dropped (label −1);
 * 2. core faces (quality ≥ coreQuality) get a kNN graph; its edges with a positive link score are
 *    visited best first, and two groups are merged only when their template agreement reaches
 *    `mergeThreshold` and no correction forbids it (average linkage, so one edge cannot chain);
 * 3. groups of at least `minClusterSize` faces become clusters;
 * 4. every other face (non-core, or core left in a too-small group) is attached to its best cluster
 *    by template direction, if the link is positive (against a bar that, with `attachFalseRate`,
 *    follows the number of clusters) and beats the runner-up by `attachMargin`. This
 *    runs in rounds: all decisions of a round use the templates as they were at its start (order
 *    independent), then the attached faces are added to their templates (as the database and the
 *    online step do), and the still unattached faces try again. An attached face joins exactly one
 *    cluster and is never used to merge, so it can never bridge two.
 * Same-photo rule (`samePhotoCannotLink`, on by default): two faces detected in one photo are two
 * people, an implicit cannot-link. Two groups holding faces of one photo never merge (step 2), and a
 * face never attaches to a cluster that already holds a face of its photo (step 4): it takes its best
 * ALLOWED cluster (same link and margin tests, among the allowed ones) or stays unassigned. When two
 * faces of one photo pick the same cluster in one round, the one closer to its template joins and
 * the other tries again in the next round. Faces without `photoId` are not constrained.
 * Deterministic: fixed insertion order, seeded HNSW, ties broken by face index.
 */
export function clusterBatch(
  faces: readonly ClusterFace[],
  params: ClusterParams,
  opts: BatchOptions = {},
): Clustering {
  if (faces.length === 0) return { labels: new Int32Array(0), clusters: 0 };
  const progress = opts.onProgress;
  const phase = (base: number, span: number) =>
    progress
      ? (d: number, t: number) => progress(base + Math.round((span * d) / Math.max(1, t)), 100)
      : undefined;

  const { graph, index } = opts.coreGraph ?? buildCoreGraph(faces, params, phase(0, 80));
  return clusterOnGraph(faces, params, graph, (i) => index.search(faces[i].unit, params.k + 1), opts);
}

/**
 * `clusterBatch` with the kNN search spread over `threads` worker threads (clustering/parallelKnn.ts):
 * the core graph and every kept face's nearest core faces (for the attach step) are searched there,
 * then merging and attaching run as in `clusterBatch`. With one thread the result is clusterBatch's.
 */
export async function clusterBatchParallel(
  faces: readonly ClusterFace[],
  params: ClusterParams,
  opts: Omit<BatchOptions, 'coreGraph'> & { threads?: number } = {},
): Promise<Clustering> {
  if (faces.length === 0) return { labels: new Int32Array(0), clusters: 0 };
  const coreIdx = coreFaces(faces, params);
  const keptIdx = Int32Array.from(faces.keys()).filter(
    (i) => faces[i].magnitude >= params.dropBelowMagnitude,
  );
  const k1 = params.k + 1;
  const table = await parallelNeighbours(
    faces,
    coreIdx,
    keptIdx,
    k1,
    { ...params, ef: Math.max(params.ef, 2 * params.k) },
    opts.threads,
  );
  opts.onProgress?.(80, 100);
  const graph = graphFromTable(table, coreIdx, params.k);
  const neighbours = (i: number) => {
    const q = table.rowOf[i]!;
    const labels: number[] = [];
    for (let t = q * k1; t < (q + 1) * k1 && table.labels[t]! >= 0; t++) labels.push(table.labels[t]!);
    return { labels };
  };
  return clusterOnGraph(faces, params, graph, neighbours, opts);
}

/** Steps 2–4 of `clusterBatch` on a core kNN graph; `neighbours(i)`: face i's nearest core faces. */
function clusterOnGraph(
  faces: readonly ClusterFace[],
  params: ClusterParams,
  graph: KnnGraph,
  neighbours: (face: number) => { labels: number[] },
  opts: BatchOptions,
): Clustering {
  const n = faces.length;
  const roots = new Int32Array(n).fill(-1);
  const kept = (i: number) => faces[i].magnitude >= params.dropBelowMagnitude;
  const coreIdx = coreFaces(faces, params);
  const progress = opts.onProgress;
  const groups = new TemplateGroups(faces, opts.constraints, params.samePhotoCannotLink);
  mergeAlongEdges(faces, graph, params, groups);
  progress?.(85, 100);

  const isClustered = new Uint8Array(n);
  for (const i of coreIdx) {
    const r = groups.uf.find(i);
    if (groups.uf.size[r] >= params.minClusterSize) {
      roots[i] = r;
      isClustered[i] = 1;
    }
  }
  // every leftover is compared with all of them: with attachFalseRate the bar follows their number
  const identities = new Set(
    Array.from(coreIdx)
      .filter((i) => isClustered[i])
      .map((i) => roots[i]),
  ).size;
  let leftovers = Int32Array.from(faces.keys()).filter((i) => !isClustered[i] && kept(i));
  const reasons: (UnassignedReason | undefined)[] = new Array(n);
  for (let round = 0; round < ATTACH_ROUNDS && leftovers.length > 0; round++) {
    const targets = leftovers.map((i) => {
      const t = attachTarget(faces[i], i, neighbours(i).labels, isClustered, groups, identities, params);
      reasons[i] = t.reason;
      return t.root;
    });
    let attached = 0;
    // closest to its template first: of two faces of one photo aiming at one cluster, it wins
    for (const t of attachOrder(faces, leftovers, targets, groups)) {
      if (!groups.attachAllowed(leftovers[t], targets[t])) {
        targets[t] = -1; // its photo got there first this round: it tries again next round
        continue;
      }
      roots[leftovers[t]] = targets[t];
      groups.absorb(targets[t], leftovers[t]);
      attached++;
    }
    if (attached === 0) break;
    leftovers = leftovers.filter((_, t) => targets[t] < 0);
  }
  for (const i of leftovers) {
    reasons[i] = roots[i] >= 0 ? undefined : leftoverReason(reasons[i], faces[i].quality, params);
  }
  for (let i = 0; i < n; i++) if (roots[i] >= 0) reasons[i] = undefined;
  progress?.(100, 100);
  return { ...denseLabels(roots), reasons };
}

/** The core faces (kept, quality ≥ coreQuality) and their kNN graph. */
export function buildCoreGraph(
  faces: readonly ClusterFace[],
  params: ClusterParams,
  onProgress?: (d: number, t: number) => void,
): { graph: KnnGraph; index: UnitIndex } {
  const coreIdx = coreFaces(faces, params);
  return buildKnnGraph(faces, params.k, params, coreIdx, onProgress);
}

function coreFaces(faces: readonly ClusterFace[], params: ClusterParams): Int32Array {
  return Int32Array.from(faces.keys()).filter(
    (i) => faces[i].magnitude >= params.dropBelowMagnitude && faces[i].quality >= params.coreQuality,
  );
}

/** indices of the attach candidates with a target, best template cosine first, then by face index */
function attachOrder(
  faces: readonly ClusterFace[],
  leftovers: Int32Array,
  targets: Int32Array,
  groups: TemplateGroups,
): number[] {
  const cos = (t: number) => templateCosine(faces[leftovers[t]].unit, groups.template(targets[t]));
  const withTarget = Array.from(leftovers.keys()).filter((t) => targets[t] >= 0);
  const c = new Map(withTarget.map((t) => [t, cos(t)]));
  return withTarget.sort((x, y) => c.get(y)! - c.get(x)! || leftovers[x] - leftovers[y]);
}

/**
 * Union-find whose roots carry the group template T = Σ a·u, magnitude sum M, anchors and (with the
 * same-photo rule) the photos of the group's faces, attached ones included.
 */
export class TemplateGroups {
  readonly uf: UnionFind;
  private readonly templates = new Map<number, Float32Array>();
  private readonly magSums: Float64Array;
  /** faces per root, attached ones included */
  private readonly counts: Int32Array;
  private readonly anchors = new Map<number, Set<string>>();
  /** root → photos of its faces; only faces with a photoId, only with the same-photo rule */
  private readonly photos = new Map<number, Set<string>>();

  constructor(
    private readonly faces: readonly ClusterFace[],
    private readonly constraints?: ClusterConstraints,
    private readonly samePhotoCannotLink = false,
  ) {
    this.uf = new UnionFind(faces.length);
    this.magSums = Float64Array.from(faces, (f) => f.magnitude);
    this.counts = new Int32Array(faces.length).fill(1);
    const anchorOf = constraints?.anchorOf;
    if (anchorOf) {
      for (let i = 0; i < faces.length; i++) {
        const a = anchorOf(i);
        if (a !== undefined) this.anchors.set(i, new Set([a]));
      }
    }
    if (samePhotoCannotLink) {
      faces.forEach((f, i) => {
        if (f.photoId !== undefined) this.photos.set(i, new Set([f.photoId]));
      });
    }
  }

  template(root: number): Float32Array {
    let t = this.templates.get(root);
    if (!t) {
      const f = this.faces[root];
      t = new Float32Array(f.unit.length);
      addScaled(t, f.unit, f.magnitude);
    }
    return t;
  }

  magSum(root: number): number {
    return this.magSums[root];
  }

  /** faces in the group rooted at `root` */
  count(root: number): number {
    return this.counts[root];
  }

  agreement(ra: number, rb: number): number {
    return templateAgreement(this.template(ra), this.magSums[ra], this.template(rb), this.magSums[rb]);
  }

  /**
   * false when a correction (cannot-link, differently named identities) keeps the groups apart, or
   * (same-photo rule) they hold faces of one photo
   */
  allowed(ra: number, rb: number): boolean {
    if (this.sharePhoto(ra, rb)) return false;
    const cl = this.constraints?.cannotLink;
    const aa = this.anchors.get(ra);
    const ab = this.anchors.get(rb);
    if (!cl || !aa || !ab) return true;
    for (const x of aa) for (const y of ab) if (x !== y && cl(x, y)) return false;
    return true;
  }

  /** may face `i` (by its own anchor, and its photo) join the group rooted at `root`? */
  attachAllowed(i: number, root: number): boolean {
    const photo = this.samePhotoCannotLink ? this.faces[i].photoId : undefined;
    if (photo !== undefined && this.photos.get(root)?.has(photo)) return false;
    const own = this.constraints?.anchorOf?.(i);
    const cl = this.constraints?.cannotLink;
    const ab = this.anchors.get(root);
    if (own === undefined || !cl || !ab) return true;
    for (const y of ab) if (y !== own && cl(own, y)) return false;
    return true;
  }

  /** adds a face that is not a union-find member (an attached face) to the template of `root` */
  absorb(root: number, i: number): void {
    const t = this.template(root);
    addScaled(t, this.faces[i].unit, this.faces[i].magnitude);
    this.templates.set(root, t);
    this.magSums[root] += this.faces[i].magnitude;
    this.counts[root]++;
    const photo = this.samePhotoCannotLink ? this.faces[i].photoId : undefined;
    if (photo !== undefined) {
      const set = this.photos.get(root);
      if (set) set.add(photo);
      else this.photos.set(root, new Set([photo]));
    }
  }

  private sharePhoto(ra: number, rb: number): boolean {
    const pa = this.photos.get(ra);
    const pb = this.photos.get(rb);
    if (!pa || !pb) return false;
    const [small, large] = pa.size <= pb.size ? [pa, pb] : [pb, pa];
    for (const p of small) if (large.has(p)) return true;
    return false;
  }

  merge(ra: number, rb: number): number {
    const ta = this.template(ra);
    addScaled(ta, this.template(rb), 1);
    const root = this.uf.union(ra, rb);
    const other = root === ra ? rb : ra;
    this.templates.set(root, ta);
    this.templates.delete(other);
    this.magSums[root] = this.magSums[ra] + this.magSums[rb];
    this.counts[root] = this.counts[ra] + this.counts[rb];
    const aa = this.anchors.get(ra);
    const ab = this.anchors.get(rb);
    if (aa || ab) {
      this.anchors.set(root, new Set([...(aa ?? []), ...(ab ?? [])]));
      this.anchors.delete(other);
    }
    const pa = this.photos.get(ra);
    const pb = this.photos.get(rb);
    if (pa || pb) {
      const [small, large] = (pa?.size ?? 0) <= (pb?.size ?? 0) ? [pa, pb!] : [pb, pa!];
      for (const p of small ?? []) large.add(p);
      this.photos.set(root, large);
      this.photos.delete(other);
    }
    return root;
  }
}

/** positive-link edges of the graph (each unordered pair once), best link first */
export function sortedPositiveEdges(
  faces: readonly ClusterFace[],
  graph: KnnGraph,
  params: ClusterParams,
): { a: Int32Array; b: Int32Array; score: Float64Array; order: Uint32Array } {
  const a: number[] = [];
  const b: number[] = [];
  const score: number[] = [];
  for (let r = 0; r < graph.nodes.length; r++) {
    const i = graph.nodes[r];
    for (let t = 0; t < graph.deg[r]; t++) {
      const j = graph.nbr[r * graph.k + t];
      const s = linkScore(graph.sim[r * graph.k + t], faces[i].quality, faces[j].quality, params);
      if (s <= 0) continue;
      a.push(Math.min(i, j));
      b.push(Math.max(i, j));
      score.push(s);
    }
  }
  const A = Int32Array.from(a);
  const B = Int32Array.from(b);
  const S = Float64Array.from(score);
  const order = Uint32Array.from(S.keys()).sort((x, y) => S[y] - S[x] || A[x] - A[y] || B[x] - B[y]);
  return { a: A, b: B, score: S, order };
}

/** Greedy average-linkage merging along positive edges; a second pass retries refused edges. */
function mergeAlongEdges(
  faces: readonly ClusterFace[],
  graph: KnnGraph,
  params: ClusterParams,
  groups: TemplateGroups,
): void {
  const edges = sortedPositiveEdges(faces, graph, params);
  const rowOf = new Map<number, number>();
  graph.nodes.forEach((face, row) => rowOf.set(face, row));
  /**
   * A face still on its own joins a group only clearly ahead (by singletonMargin) of every rival among
   * its neighbours' groups, a rival being a group the target would not merge with: a person seen
   * once, about as close to two other people, stays alone.
   */
  const contested = (single: number, target: number, agreement: number): boolean => {
    const row = rowOf.get(single)!;
    for (let t = 0; t < graph.deg[row]; t++) {
      const other = groups.uf.find(graph.nbr[row * graph.k + t]);
      if (other === target || other === single) continue;
      if (groups.agreement(single, other) <= agreement - params.singletonMargin) continue;
      // a rival is another person: a group that agrees with the target is the same one, split
      const rivalBar = mergeBar(params, groups.count(target), groups.count(other));
      if (groups.agreement(target, other) < rivalBar && groups.allowed(single, other)) return true;
    }
    return false;
  };
  let pending = Array.from(edges.order);
  for (let pass = 0; pass < 2 && pending.length > 0; pass++) {
    const refused: number[] = [];
    let merged = 0;
    for (const e of pending) {
      const ra = groups.uf.find(edges.a[e]);
      const rb = groups.uf.find(edges.b[e]);
      if (ra === rb) continue;
      const bar = mergeBar(params, groups.count(ra), groups.count(rb));
      const agreement = groups.agreement(ra, rb);
      const clear =
        params.singletonMargin <= 0 ||
        (!(groups.count(ra) === 1 && contested(ra, rb, agreement)) &&
          !(groups.count(rb) === 1 && contested(rb, ra, agreement)));
      if (agreement >= bar && clear && groups.allowed(ra, rb)) {
        groups.merge(ra, rb);
        merged++;
      } else refused.push(e);
    }
    if (merged === 0) break;
    pending = refused;
  }
}

/**
 * The cluster root a leftover face attaches to, or −1: best template-direction link among the
 * clusters of its core neighbours, positive and ahead of the runner-up by `attachMargin`.
 */
function attachTarget(
  face: ClusterFace,
  self: number,
  nearestCore: readonly number[],
  isClustered: Uint8Array,
  groups: TemplateGroups,
  identities: number,
  params: ClusterParams,
): { root: number; reason?: UnassignedReason } {
  const seen = new Set<number>();
  let best = -1;
  let bestCos = -Infinity;
  let secondCos = -Infinity;
  for (const j of nearestCore) {
    if (j === self || !isClustered[j]) continue;
    const r = groups.uf.find(j);
    if (seen.has(r)) continue;
    seen.add(r);
    if (!groups.attachAllowed(self, r)) continue;
    const c = templateCosine(face.unit, groups.template(r));
    if (c > bestCos || (c === bestCos && r < best)) {
      secondCos = bestCos;
      bestCos = c;
      best = r;
    } else if (c > secondCos) secondCos = c;
  }
  if (best < 0) return { root: -1, reason: 'no_match' };
  const refused = attachRefusal(bestCos, secondCos, face.quality, groups.count(best), identities, params);
  return refused ? { root: -1, reason: refused } : { root: best };
}
