import type { ClusterParams } from './params.ts';
import type { ClusterFace, UnassignedReason } from './types.ts';
import { attachRefusal, leftoverReason, linkScore, templateAgreement, templateCosine } from './linkScore.ts';
import { mergeBar } from './params.ts';
import { UnitIndex } from './knnGraph.ts';
import { addScaled, dot } from './vec.ts';

/** A neighbour of a new face, as the online step needs it. */
export interface OnlineNeighbour {
  faceId: string;
  cos: number;
  quality: number;
  /** null: the neighbour is pending (not in an identity yet) */
  identityId: string | null;
  /** the photo it was detected in (same-photo rule) */
  photoId?: string;
}

export interface IdentityStats {
  /** sum of the raw features of its faces */
  template: Float32Array;
  /** sum of their magnitudes */
  magSum: number;
  /** how many faces it holds (small identities are harder to join; absent: taken as large) */
  faces?: number;
}

/** What the online step can ask of the store it runs against (in memory, or the FaceDatabase). */
export interface OnlineContext {
  params: ClusterParams;
  /** up to k nearest other faces already seen, best first */
  neighbours(face: ClusterFace, k: number): OnlineNeighbour[];
  identity(identityId: string): IdentityStats | undefined;
  /** how many identities there are: a new face is compared with all of them (`attachBar`) */
  identityCount(): number;
  /** the user moved this face out of this identity: never put it back */
  excluded(faceId: string, identityId: string): boolean;
  /** the two identities must never merge (cannot-link, or two different user-given names) */
  cannotLink(a: string, b: string): boolean;
  /** unit vector and magnitude of a (pending) face by id */
  face(faceId: string): ClusterFace | undefined;
  /**
   * Same-photo rule: the identities that hold a face of this photo (a new face never joins them).
   * A context without it cannot apply the rule to joins.
   */
  identitiesOfPhoto?(photoId: string): ReadonlySet<string>;
  /** Same-photo rule: do the two identities hold faces of one photo (then they never merge)? */
  sharePhoto?(a: string, b: string): boolean;
}

export type OnlineDecision =
  /** join `identityId`; first merge `merge` into it (strong high-quality links to several identities) */
  | { kind: 'join'; identityId: string; merge: string[]; via: 'link' | 'attach' }
  /** start a new identity from this face and the pending faces `with` */
  | { kind: 'create'; with: string[] }
  /** not enough evidence yet: keep the face unassigned until more faces arrive (or a recluster) */
  | { kind: 'pending'; reason: UnassignedReason };

/**
 * The online step for one new kept face, mirroring the batch rules (linkScore.ts):
 * 1. a core face (quality ≥ coreQuality) JOINS the identity with the best template agreement among
 *    identities it has positive links to, if that agreement reaches mergeThreshold; other identities
 *    it agrees with that also agree with the target (and no correction forbids it) are MERGED in;
 * 2. a core face with positive, agreeing links to enough pending core faces CREATES an identity with
 *    them (at least minClusterSize faces);
 * 3. any face ATTACHES to the best identity by template direction when the link is positive and
 *    ahead of the runner-up by attachMargin (a low-quality face can only ever do this: join, not bridge);
 * 4. otherwise the face is PENDING.
 * Same-photo rule (`samePhotoCannotLink`, faces with a photoId): two faces of one photo are two
 * people. The face never joins or attaches to an identity that holds a face of its photo (it takes
 * the best allowed one, or stays pending), never creates an identity with a pending face of its
 * photo (nor with two pending faces of one photo), and identities that hold faces of one photo are
 * never merged.
 */
export function decideOnline(face: ClusterFace, ctx: OnlineContext): OnlineDecision {
  const p = ctx.params;
  if (face.magnitude < p.dropBelowMagnitude) return { kind: 'pending', reason: 'low_quality' };
  const nbrs = ctx.neighbours(face, p.k);
  const core = face.quality >= p.coreQuality;
  const barred = barredIdentities(face, ctx);
  if (core) {
    const joined = strongJoin(face, nbrs, ctx, barred);
    if (joined) return joined;
    const group = pendingGroup(face, nbrs, ctx);
    if (group.length + 1 >= p.minClusterSize) return { kind: 'create', with: group };
  }
  const attached = attachTo(face, nbrs, ctx, barred);
  if (!('reason' in attached))
    return { kind: 'join', identityId: attached.identityId, merge: [], via: 'attach' };
  return { kind: 'pending', reason: leftoverReason(attached.reason, face.quality, p) };
}

const NONE: ReadonlySet<string> = new Set();

/** identities the face may not join: those holding a face of its photo (same-photo rule) */
function barredIdentities(face: ClusterFace, ctx: OnlineContext): ReadonlySet<string> {
  if (!ctx.params.samePhotoCannotLink || face.photoId === undefined || !ctx.identitiesOfPhoto) return NONE;
  return ctx.identitiesOfPhoto(face.photoId);
}

function faceAgreement(face: ClusterFace, s: IdentityStats): number {
  return s.magSum > 0 ? dot(face.unit, s.template) / s.magSum : -1;
}

function strongJoin(
  face: ClusterFace,
  nbrs: OnlineNeighbour[],
  ctx: OnlineContext,
  barred: ReadonlySet<string>,
): OnlineDecision | null {
  const p = ctx.params;
  const agree = new Map<string, number>();
  for (const n of nbrs) {
    if (n.identityId === null || agree.has(n.identityId) || n.quality < p.coreQuality) continue;
    if (barred.has(n.identityId)) continue;
    if (linkScore(n.cos, face.quality, n.quality, p) <= 0 || ctx.excluded(face.id, n.identityId)) continue;
    const s = ctx.identity(n.identityId);
    if (s && faceAgreement(face, s) >= mergeBar(p, 1, s.faces ?? Infinity))
      agree.set(n.identityId, faceAgreement(face, s));
  }
  const strong = [...agree].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  if (strong.length === 0) return null;
  const target = strong[0][0];
  const merge: string[] = [];
  const t = ctx.identity(target)!;
  for (const [id] of strong.slice(1)) {
    const s = ctx.identity(id)!;
    const bar = mergeBar(p, t.faces ?? Infinity, s.faces ?? Infinity);
    if (templateAgreement(t.template, t.magSum, s.template, s.magSum) < bar) continue;
    if ([target, ...merge].some((m) => ctx.cannotLink(m, id) || sharePhoto(ctx, m, id))) continue;
    merge.push(id);
  }
  return { kind: 'join', identityId: target, merge, via: 'link' };
}

function sharePhoto(ctx: OnlineContext, a: string, b: string): boolean {
  return ctx.params.samePhotoCannotLink && !!ctx.sharePhoto?.(a, b);
}

/** pending core faces to create an identity with: linked, agreeing, and (same-photo rule) one per photo */
function pendingGroup(face: ClusterFace, nbrs: OnlineNeighbour[], ctx: OnlineContext): string[] {
  const p = ctx.params;
  const group: string[] = [];
  const photos = new Set<string>();
  if (face.photoId !== undefined) photos.add(face.photoId);
  for (const n of nbrs) {
    if (n.identityId !== null || n.quality < p.coreQuality) continue;
    if (linkScore(n.cos, face.quality, n.quality, p) <= 0 || n.cos < p.mergeThreshold) continue;
    if (p.samePhotoCannotLink && n.photoId !== undefined) {
      if (photos.has(n.photoId)) continue; // best first: the closer face of that photo is in already
      photos.add(n.photoId);
    }
    group.push(n.faceId);
  }
  return group;
}

function attachTo(
  face: ClusterFace,
  nbrs: OnlineNeighbour[],
  ctx: OnlineContext,
  barred: ReadonlySet<string>,
): { identityId: string } | { reason: UnassignedReason } {
  const p = ctx.params;
  let best: string | null = null;
  let bestCos = -Infinity;
  let secondCos = -Infinity;
  const seen = new Set<string>();
  for (const n of nbrs) {
    const id = n.identityId;
    if (id === null || seen.has(id)) continue;
    seen.add(id);
    if (ctx.excluded(face.id, id) || barred.has(id)) continue;
    const s = ctx.identity(id);
    if (!s) continue;
    const c = templateCosine(face.unit, s.template);
    if (c > bestCos || (c === bestCos && best !== null && id < best)) {
      secondCos = bestCos;
      bestCos = c;
      best = id;
    } else if (c > secondCos) secondCos = c;
  }
  if (best === null) return { reason: 'no_match' };
  const size = ctx.identity(best)?.faces ?? Infinity;
  const refused = attachRefusal(bestCos, secondCos, face.quality, size, ctx.identityCount(), p);
  return refused ? { reason: refused } : { identityId: best };
}

/**
 * In-memory online clusterer (used by the benchmark and tests; IdentityService runs the same
 * `decideOnline` against the FaceDatabase). After a face lands in an identity, the pending faces
 * among its neighbours are re-examined once: new evidence may now place them.
 */
export class OnlineClusterer {
  private readonly index: UnitIndex;
  private readonly faces: ClusterFace[] = [];
  private readonly byId = new Map<string, number>();
  readonly identityOf = new Map<string, string | null>();
  private readonly identities = new Map<
    string,
    IdentityStats & { members: Set<string>; photos: Set<string> }
  >();
  /** photo → ids of its faces seen so far */
  private readonly facesOfPhoto = new Map<string, string[]>();
  private nextId = 0;
  private readonly ctx: OnlineContext;

  constructor(
    readonly params: ClusterParams,
    dim: number,
  ) {
    this.index = new UnitIndex(dim, 1024, {
      M: params.M,
      efConstruction: params.efConstruction,
      ef: params.ef,
      seed: params.seed,
    });
    this.ctx = {
      params,
      neighbours: (face, k) => this.neighbours(face, k),
      identity: (id) => {
        const s = this.identities.get(id);
        return s && { template: s.template, magSum: s.magSum, faces: s.members.size };
      },
      identityCount: () => this.identities.size,
      excluded: () => false,
      cannotLink: () => false,
      face: (id) => {
        const i = this.byId.get(id);
        return i === undefined ? undefined : this.faces[i];
      },
      identitiesOfPhoto: (photoId) =>
        new Set(
          (this.facesOfPhoto.get(photoId) ?? [])
            .map((f) => this.identityOf.get(f))
            .filter((id): id is string => typeof id === 'string'),
        ),
      sharePhoto: (a, b) => {
        const pa = this.identities.get(a)?.photos;
        const pb = this.identities.get(b)?.photos;
        return !!pa && !!pb && [...pa].some((p) => pb.has(p));
      },
    };
  }

  add(face: ClusterFace): OnlineDecision {
    const decision = decideOnline(face, this.ctx);
    const label = this.faces.length;
    this.faces.push(face);
    this.byId.set(face.id, label);
    this.identityOf.set(face.id, null);
    if (face.photoId !== undefined) {
      const list = this.facesOfPhoto.get(face.photoId);
      if (list) list.push(face.id);
      else this.facesOfPhoto.set(face.photoId, [face.id]);
    }
    this.index.add(face.unit, label);
    this.apply(face, decision);
    if (decision.kind !== 'pending') this.retryPendingNear(face);
    return decision;
  }

  /** identity label per face id (null = pending) */
  labels(ids: readonly string[]): (string | null)[] {
    return ids.map((id) => this.identityOf.get(id) ?? null);
  }

  private neighbours(face: ClusterFace, k: number): OnlineNeighbour[] {
    const found = this.index.search(face.unit, k + 1);
    const out: OnlineNeighbour[] = [];
    for (let t = 0; t < found.labels.length && out.length < k; t++) {
      const f = this.faces[found.labels[t]];
      if (f.id === face.id) continue;
      out.push({
        faceId: f.id,
        cos: found.cos[t],
        quality: f.quality,
        identityId: this.identityOf.get(f.id) ?? null,
        photoId: f.photoId,
      });
    }
    return out;
  }

  private apply(face: ClusterFace, d: OnlineDecision): void {
    if (d.kind === 'pending') return;
    if (d.kind === 'create') {
      const id = `o${this.nextId++}`;
      this.identities.set(id, {
        template: new Float32Array(face.unit.length),
        magSum: 0,
        members: new Set(),
        photos: new Set(),
      });
      for (const fid of [face.id, ...d.with]) if (this.identityOf.get(fid) === null) this.assign(fid, id);
      return;
    }
    for (const from of d.merge) this.mergeInto(d.identityId, from);
    this.assign(face.id, d.identityId);
  }

  private assign(faceId: string, id: string): void {
    const f = this.faces[this.byId.get(faceId)!];
    const s = this.identities.get(id)!;
    addScaled(s.template, f.unit, f.magnitude);
    s.magSum += f.magnitude;
    s.members.add(faceId);
    if (f.photoId !== undefined) s.photos.add(f.photoId);
    this.identityOf.set(faceId, id);
  }

  private mergeInto(into: string, from: string): void {
    const a = this.identities.get(into)!;
    const b = this.identities.get(from)!;
    addScaled(a.template, b.template, 1);
    a.magSum += b.magSum;
    for (const m of b.members) {
      a.members.add(m);
      this.identityOf.set(m, into);
    }
    for (const p of b.photos) a.photos.add(p);
    this.identities.delete(from);
  }

  private retryPendingNear(face: ClusterFace): void {
    for (const n of this.neighbours(face, this.params.k)) {
      if (n.identityId !== null || this.identityOf.get(n.faceId) !== null) continue;
      const pending = this.faces[this.byId.get(n.faceId)!];
      const d = decideOnline(pending, this.ctx);
      if (d.kind !== 'pending') this.apply(pending, d);
    }
  }
}
