import type { Correction, FaceDatabase, StoredFace, StoredIdentity } from '../indexers/types.ts';
import { SCHEMA_VERSION } from '../schemas/face.ts';
import type { IdentityEvent } from '../schemas/identityEvent.ts';
import { clusterBatch } from '../clustering/batch.ts';
import { CorrectionState } from '../clustering/corrections.ts';
import {
  decideOnline,
  type IdentityStats,
  type OnlineContext,
  type OnlineDecision,
  type OnlineNeighbour,
} from '../clustering/online.ts';
import type { ClusterParams } from '../clustering/params.ts';
import { mapStableIds, newIdentityId } from '../clustering/stableIds.ts';
import type { ClusterFace, Clustering } from '../clustering/types.ts';
import type { UnassignedReason } from '../schemas/face.ts';
import { toUnit } from '../clustering/vec.ts';
import { NotFoundError, RejectedError } from './errors.ts';

type Cause = IdentityEvent['cause'];

export interface ReclusterResult {
  events: IdentityEvent[];
  /** identities holding faces after the recluster */
  clusters: number;
  /** snapshot faces in an identity / left unassigned */
  assigned: number;
  unassigned: number;
  /** store sequence of the snapshot the batch clustering worked on */
  snapshotSeq: number;
  /** faces stored while the recluster ran, assigned online afterwards */
  lateFaces: number;
}

/**
 * Identities over a FaceDatabase: online assignment of new faces, batch recluster with stable ids,
 * and user corrections (rename, merge, move a face, "different people"), each stored with
 * `db.addCorrection` and honoured by every later online step and recluster. Every method records
 * the identity events it causes with `db.appendIdentityEvents` and returns them.
 *
 * Concurrency: `recluster` clusters a SNAPSHOT — the kept faces present when it starts (store
 * sequence `snapshotSeq`). It writes its result in one transaction; faces stored after the snapshot
 * (by this process between steps, or by another writer) are not part of the batch and are assigned
 * online right after, with the same rules as `assignNew`, so ingest never has to stop.
 */
export class IdentityService {
  /** magnitude sums per identity (templates come from the store), kept current by this service */
  private readonly magSums = new Map<string, number>();

  constructor(
    readonly db: FaceDatabase,
    readonly params: ClusterParams,
  ) {}

  // ---------------------------------------------------------------- online

  /** Online step for newly stored kept faces (already in the index). Faces already placed are skipped. */
  assignNew(faceIds: string[]): IdentityEvent[] {
    const events: IdentityEvent[] = [];
    const corrections = this.corrections();
    const ctx = this.context(corrections);
    this.db.transaction(() => {
      for (const id of faceIds) {
        const stored = this.db.getFace(id);
        if (!stored || !stored.kept || stored.identityId !== null) continue;
        const pin = corrections.pinned.get(id);
        if (pin !== undefined && this.db.getIdentity(pin)) {
          this.assign(id, pin, 'online', events);
          continue;
        }
        const face = this.toClusterFace(stored);
        const decision = decideOnline(face, ctx);
        this.applyDecision(face, stored.unassignedReason, decision, 'online', events);
        if (decision.kind !== 'pending') this.retryPendingNear(face, ctx, events);
      }
      this.db.appendIdentityEvents(events);
    });
    return events;
  }

  /**
   * Forgets faces (a changed photo's faces that are gone, a failed photo's): rows and vectors go,
   * and each identity's template and magnitude sum stop counting them. An unnamed identity left
   * without faces is deleted. Records and returns the events (`face_unassigned`, `deleted`).
   */
  forgetFaces(faceIds: string[]): IdentityEvent[] {
    if (faceIds.length === 0) return [];
    const events: IdentityEvent[] = [];
    this.db.transaction(() => {
      const touched = new Set<string>();
      for (const id of faceIds) {
        const f = this.db.getFace(id);
        if (!f) continue;
        if (f.identityId !== null) {
          this.unassign(id, 'online', events);
          touched.add(f.identityId);
        }
        this.db.forgetFace(id);
      }
      for (const identityId of touched) {
        const identity = this.db.getIdentity(identityId);
        if (!identity || identity.faceCount > 0 || identity.name) continue;
        this.db.deleteIdentityRow(identityId);
        this.magSums.delete(identityId);
        events.push(event('deleted', identityId, 'online'));
      }
      this.db.appendIdentityEvents(events);
    });
    return events;
  }

  // ---------------------------------------------------------------- batch

  recluster(opts: { onProgress?: (done: number, total: number) => void } = {}): ReclusterResult {
    const snapshotSeq = this.db.seq();
    const stored = this.db
      .listFaces({ kept: true })
      .sort((a, b) => (a.faceId < b.faceId ? -1 : a.faceId > b.faceId ? 1 : 0));
    const snapshotIds = new Set(stored.map((f) => f.faceId));
    const corrections = this.corrections();
    const identities = this.db.listIdentities();
    const nameOf = new Map(identities.map((i) => [i.identityId, i.name]));
    const apart = this.apartRule(corrections, nameOf);
    const constrained = new Set([
      ...corrections.constrainedIdentities(),
      ...identities.filter((i) => i.name).map((i) => i.identityId),
    ]);
    const faces = stored.map((f) => this.toClusterFace(f));
    const photoOf = new Map(stored.map((f) => [f.faceId, f.photoId]));
    const anchor = (i: number): string | undefined => {
      const f = stored[i];
      const a = corrections.pinned.get(f.faceId) ?? f.identityId ?? undefined;
      return a !== undefined && constrained.has(a) ? a : undefined;
    };
    const result = clusterBatch(faces, this.params, {
      constraints: { anchorOf: anchor, cannotLink: apart },
      onProgress: opts.onProgress,
    });
    const clusters: string[][] = Array.from({ length: result.clusters }, () => []);
    const unassigned: string[] = [];
    result.labels.forEach((l, i) =>
      l >= 0 ? clusters[l].push(stored[i].faceId) : unassigned.push(stored[i].faceId),
    );
    const mapping = mapStableIds({
      clusters,
      unassigned,
      previous: new Map(stored.map((f) => [f.faceId, f.identityId])),
      identities: identities.map((i) => ({ id: i.identityId, name: i.name })),
      corrections,
      photoOf: this.params.samePhotoCannotLink ? (f) => photoOf.get(f) : undefined,
      // ids are a function of the faces, except where a user named or corrected an identity
      anchored: constrained,
    });

    const events: IdentityEvent[] = [];
    this.db.transaction(() => {
      const holders = new Map<string, string[]>();
      for (const [f, id] of mapping.assignment) {
        if (id === null) continue;
        const list = holders.get(id);
        if (list) list.push(f);
        else holders.set(id, [f]);
      }
      for (const id of mapping.created) {
        const members = holders.get(id);
        if (!members || this.db.getIdentity(id)) continue;
        this.db.createIdentity(id);
        this.magSums.set(id, 0);
        events.push(event('created', id, 'recluster', { faceId: [...members].sort()[0] }));
      }
      for (const [from, into] of mapping.mergedInto) {
        if (this.db.getIdentity(into))
          events.push(event('merged', into, 'recluster', { mergedFrom: [from] }));
      }
      stored.forEach((f, i) => {
        const target = mapping.assignment.get(f.faceId) ?? null;
        const current = this.db.getFace(f.faceId)?.identityId ?? null;
        if (target !== null) {
          if (target !== current) this.assign(f.faceId, target, 'recluster', events);
          return;
        }
        // every face the batch leaves out gets its reason anew (one still out included)
        const reason = reclusterReason(result, i, mapping.excludedByUser.has(f.faceId));
        if (current === null) this.db.setUnassignedReason(f.faceId, reason);
        else this.unassign(f.faceId, 'recluster', events, reason);
      });
      for (const id of [...mapping.mergedInto.keys(), ...mapping.removed]) {
        if (!this.db.getIdentity(id)) continue;
        this.db.deleteIdentityRow(id);
        this.magSums.delete(id);
        if (mapping.removed.includes(id)) events.push(event('deleted', id, 'recluster'));
      }
      this.db.appendIdentityEvents(events);
    });
    this.magSums.clear();

    const late = this.db
      .listFaces({ kept: true })
      .filter((f) => !snapshotIds.has(f.faceId) && f.identityId === null)
      .map((f) => f.faceId);
    events.push(...this.assignNew(late));
    const assigned = stored.filter((f) => mapping.assignment.get(f.faceId)).length;
    const holding = new Set([...mapping.assignment.values()].filter((v): v is string => v !== null));
    return {
      events,
      clusters: holding.size,
      assigned,
      unassigned: stored.length - assigned,
      snapshotSeq,
      lateFaces: late.length,
    };
  }

  // ---------------------------------------------------------------- user corrections

  rename(identityId: string, name: string | null): IdentityEvent[] {
    const events = [event('renamed', identityId, 'user', { name })];
    this.db.transaction(() => {
      this.db.renameIdentity(identityId, name);
      this.db.appendIdentityEvents(events);
    });
    return events;
  }

  /**
   * Merge `from` into `into` (the user says they are one person). Every face of the merged
   * identity (moved and `into`'s own) is pinned to `into`, `from`'s cannot-link corrections carry
   * over, and a name of `from` is kept when `into` has none. Refused when a stored correction says
   * they are different people. A user's merge wins over the same-photo rule, and later reclusters
   * keep all of those faces together under `into`.
   */
  merge(into: string, from: string): IdentityEvent[] {
    if (into === from) throw new RejectedError('SAME_IDENTITY', 'cannot merge an identity into itself');
    const a = this.requireIdentity(into);
    const b = this.requireIdentity(from);
    const corrections = this.corrections();
    if (corrections.cannotLink(into, from))
      throw new RejectedError(
        'CORRECTION_REJECTED',
        `identities ${into} and ${from} are marked as different people`,
      );
    const events: IdentityEvent[] = [event('merged', into, 'user', { mergedFrom: [from] })];
    this.db.transaction(() => {
      const moved = this.db.listFaces({ identityId: from });
      // The user says both are one person, so every face of the result is confirmed: pin the
      // target's own faces as well as the moved ones. Otherwise a recluster may split the merged
      // identity back along the old line and give the target's faces a new id. (This also covers
      // the target's faces that share a photo with a moved face: user action beats that rule.)
      this.pinFacesOf(into, corrections);
      for (const f of moved) {
        this.db.addCorrection({ kind: 'face_pinned', faceId: f.faceId, identityId: into });
        this.assign(f.faceId, into, 'user', events);
      }
      for (const [x, y] of corrections.cannotLinkPairs()) {
        const other = x === from ? y : y === from ? x : null;
        if (other !== null && other !== into)
          this.db.addCorrection({ kind: 'cannot_link', a: into, b: other });
      }
      if (!a.name && b.name) {
        this.db.renameIdentity(into, b.name);
        events.push(event('renamed', into, 'user', { name: b.name }));
      }
      this.db.deleteIdentityRow(from);
      this.magSums.delete(from);
      this.db.appendIdentityEvents(events);
    });
    return events;
  }

  /**
   * Move a face to another identity, or out of its identity (null). Both are remembered. Moving a
   * face into an identity that holds a face of its photo wins over the same-photo rule: those faces
   * are pinned too, so later reclusters keep them together.
   */
  moveFace(faceId: string, toIdentityId: string | null): IdentityEvent[] {
    const face = this.db.getFace(faceId);
    if (!face) throw new NotFoundError('face', faceId);
    if (!face.kept)
      throw new RejectedError('FACE_DROPPED', 'a dropped low-quality face cannot belong to an identity');
    if (toIdentityId !== null) this.requireIdentity(toIdentityId);
    const events: IdentityEvent[] = [];
    this.db.transaction(() => {
      if (toIdentityId !== null)
        this.pinPhotoMates(new Set([face.photoId]), toIdentityId, this.corrections());
      if (face.identityId !== null && face.identityId !== toIdentityId) {
        this.db.addCorrection({ kind: 'face_excluded', faceId, identityId: face.identityId });
      }
      if (toIdentityId !== null) {
        this.db.addCorrection({ kind: 'face_pinned', faceId, identityId: toIdentityId });
        this.assign(faceId, toIdentityId, 'user', events);
      } else this.unassign(faceId, 'user', events, 'removed_by_user');
      this.db.appendIdentityEvents(events);
    });
    return events;
  }

  /** "These two are different people": never merged by any later online step or recluster. */
  markDifferent(a: string, b: string): IdentityEvent[] {
    if (a === b) throw new RejectedError('SAME_IDENTITY', 'an identity cannot be different from itself');
    this.requireIdentity(a);
    this.requireIdentity(b);
    this.db.addCorrection({ kind: 'cannot_link', a, b });
    return [];
  }

  /**
   * "New person from these": the faces leave their identities (remembered as exclusions) and form a
   * new identity they are pinned to and that is marked as a different person from the identities
   * they left, so later online steps and reclusters keep them there.
   */
  split(faceIds: string[], name: string | null = null): { identityId: string; events: IdentityEvent[] } {
    const faces = faceIds.map((id) => {
      const f = this.db.getFace(id);
      if (!f) throw new NotFoundError('face', id);
      if (!f.kept)
        throw new RejectedError(
          'FACE_DROPPED',
          `face ${id} was dropped (low quality) and cannot belong to an identity`,
        );
      return f;
    });
    if (faces.length === 0)
      throw new RejectedError('CORRECTION_REJECTED', 'a new person needs at least one face');
    const events: IdentityEvent[] = [];
    const identityId = newIdentityId(
      faces.map((f) => f.faceId),
      (x) => this.db.getIdentity(x) !== undefined,
    );
    this.db.transaction(() => {
      this.db.createIdentity(identityId, name);
      this.magSums.set(identityId, 0);
      events.push(event('created', identityId, 'user', { faceId: faces[0]!.faceId }));
      for (const f of faces) {
        if (f.identityId !== null)
          this.db.addCorrection({ kind: 'face_excluded', faceId: f.faceId, identityId: f.identityId });
        this.db.addCorrection({ kind: 'face_pinned', faceId: f.faceId, identityId });
        this.assign(f.faceId, identityId, 'user', events);
      }
      // the user says these faces are someone else: the new person and the ones they left stay
      // apart, or a recluster would join them again (the named one taking the other's faces)
      for (const from of new Set(faces.map((f) => f.identityId)))
        if (from !== null) this.db.addCorrection({ kind: 'cannot_link', a: identityId, b: from });
      if (name) events.push(event('renamed', identityId, 'user', { name }));
      this.db.appendIdentityEvents(events);
    });
    return { identityId, events };
  }

  /** "Not this person" for a suggestion: the face is never put into that identity by a later step. */
  exclude(faceId: string, identityId: string): void {
    if (!this.db.getFace(faceId)) throw new NotFoundError('face', faceId);
    this.db.addCorrection({ kind: 'face_excluded', faceId, identityId });
  }

  /**
   * Puts faces back where a snapshot had them (an undo): identities missing now are created with
   * their id and name, the faces are reassigned, and the `inverse` corrections are appended, so the
   * log stays append-only and later steps see the state from before the undone action.
   */
  restore(
    faces: ReadonlyMap<string, string | null>,
    identities: ReadonlyMap<string, { name: string | null } | null>,
    inverse: Correction[],
    /** why each face without an identity in the snapshot had none (absent: not recorded) */
    reasons: ReadonlyMap<string, UnassignedReason | null> = new Map(),
  ): IdentityEvent[] {
    const events: IdentityEvent[] = [];
    this.db.transaction(() => {
      for (const [id, before] of identities) {
        if (before === null || this.db.getIdentity(id)) continue;
        this.db.createIdentity(id, before.name);
        events.push(event('created', id, 'user'));
      }
      for (const [id, before] of identities) {
        const now = this.db.getIdentity(id);
        if (before && now && now.name !== before.name) {
          this.db.renameIdentity(id, before.name);
          events.push(event('renamed', id, 'user', { name: before.name }));
        }
      }
      for (const [faceId, identityId] of faces) {
        const f = this.db.getFace(faceId);
        if (!f || !f.kept || f.identityId === identityId) continue;
        if (identityId === null) this.unassign(faceId, 'user', events, reasons.get(faceId) ?? null);
        else if (this.db.getIdentity(identityId)) this.assign(faceId, identityId, 'user', events);
      }
      for (const c of inverse) this.db.addCorrection(c);
      // identities the undone action created go when they hold nothing any more
      for (const [id, before] of identities) {
        const now = this.db.getIdentity(id);
        if (before !== null || !now || now.faceCount > 0) continue;
        this.db.deleteIdentityRow(id);
        events.push(event('deleted', id, 'user'));
      }
      this.db.appendIdentityEvents(events);
    });
    this.magSums.clear();
    return events;
  }

  // ---------------------------------------------------------------- internals

  /**
   * A user puts faces of `photos` into `identityId`: its faces of those photos are pinned there, so
   * the same-photo rule (which only ever yields to pins) does not take them out in a later recluster.
   */
  private pinFacesOf(identityId: string, corrections: CorrectionState): void {
    for (const f of this.db.listFaces({ identityId }))
      if (corrections.pinned.get(f.faceId) !== identityId)
        this.db.addCorrection({ kind: 'face_pinned', faceId: f.faceId, identityId });
  }

  private pinPhotoMates(photos: Set<string>, identityId: string, corrections: CorrectionState): void {
    for (const photo of photos)
      for (const f of this.db.facesOfPhoto(photo)) {
        if (f.identityId === identityId && corrections.pinned.get(f.faceId) !== identityId)
          this.db.addCorrection({ kind: 'face_pinned', faceId: f.faceId, identityId });
      }
  }

  corrections(): CorrectionState {
    return new CorrectionState(this.db.listCorrections().map((c) => c.correction));
  }

  /** identities that must stay apart: cannot-link corrections, or two different user-given names */
  private apartRule(
    corrections: CorrectionState,
    nameOf: Map<string, string | null>,
  ): (a: string, b: string) => boolean {
    return (a, b) => {
      if (a === b) return false;
      if (corrections.cannotLink(a, b)) return true;
      const na = nameOf.get(a);
      const nb = nameOf.get(b);
      return !!na && !!nb && na !== nb;
    };
  }

  private context(corrections: CorrectionState): OnlineContext {
    return {
      params: this.params,
      neighbours: (face, k) => this.neighbours(face, k),
      identity: (id) => this.stats(id),
      identityCount: () => this.db.identityCount(),
      excluded: (faceId, identityId) => corrections.excluded(faceId, identityId),
      cannotLink: (a, b) => {
        const nameOf = (id: string) => this.db.getIdentity(id)?.name ?? null;
        return this.apartRule(corrections, new Map([a, b].map((id) => [id, nameOf(id)])))(a, b);
      },
      face: (id) => {
        const f = this.db.getFace(id);
        return f ? this.toClusterFace(f) : undefined;
      },
      identitiesOfPhoto: (photoId) => this.identitiesOfPhoto(photoId),
      sharePhoto: (a, b) => this.sharePhoto(a, b),
    };
  }

  /** identities holding a face of the photo */
  private identitiesOfPhoto(photoId: string): Set<string> {
    const out = new Set<string>();
    for (const f of this.db.facesOfPhoto(photoId)) if (f.identityId !== null) out.add(f.identityId);
    return out;
  }

  /** do identities a and b hold faces of one photo? (walks the photos of the smaller one) */
  private sharePhoto(a: string, b: string): boolean {
    const size = (id: string) => this.db.getIdentity(id)?.faceCount ?? 0;
    const [small, other] = size(a) <= size(b) ? [a, b] : [b, a];
    const photos = new Set(this.db.listFaces({ identityId: small }).map((f) => f.photoId));
    for (const p of photos) if (this.identitiesOfPhoto(p).has(other)) return true;
    return false;
  }

  private toClusterFace(f: StoredFace): ClusterFace {
    const { unit, magnitude } = toUnit(f.embedding);
    return {
      id: f.faceId,
      unit,
      magnitude,
      quality: f.quality,
      photoId: f.photoId,
    };
  }

  private neighbours(face: ClusterFace, k: number): OnlineNeighbour[] {
    const out: OnlineNeighbour[] = [];
    for (const n of this.db.search(face.unit, k + 1)) {
      if (n.faceId === face.id || out.length >= k) continue;
      const f = this.db.getFace(n.faceId);
      if (!f || !f.kept) continue;
      out.push({
        faceId: n.faceId,
        cos: n.similarity,
        quality: f.quality,
        identityId: f.identityId,
        photoId: f.photoId,
      });
    }
    return out;
  }

  private stats(id: string): IdentityStats | undefined {
    const identity = this.db.getIdentity(id);
    if (!identity) return undefined;
    let magSum = this.magSums.get(id);
    if (magSum === undefined) {
      magSum = this.db.listFaces({ kept: true, identityId: id }).reduce((s, f) => s + f.magnitude, 0);
      this.magSums.set(id, magSum);
    }
    return { template: identity.template, magSum, faces: identity.faceCount };
  }

  /** `storedReason`: the face's unassigned reason as loaded with it (nothing writes it in between). */
  private applyDecision(
    face: ClusterFace,
    storedReason: UnassignedReason | null,
    d: OnlineDecision,
    cause: Cause,
    events: IdentityEvent[],
  ): void {
    if (d.kind === 'pending') {
      // a face a user took out stays "removed by user" until a recluster decides it again
      if (storedReason !== 'removed_by_user') this.db.setUnassignedReason(face.id, d.reason);
      return;
    }
    if (d.kind === 'create') {
      const members = [face.id, ...d.with.filter((id) => this.db.getFace(id)?.identityId === null)];
      const id = newIdentityId(members, (x) => this.db.getIdentity(x) !== undefined);
      this.db.createIdentity(id);
      this.magSums.set(id, 0);
      events.push(event('created', id, cause, { faceId: face.id }));
      for (const m of members) this.assign(m, id, cause, events);
      return;
    }
    const into = this.mergeTarget([d.identityId, ...d.merge]);
    for (const from of [d.identityId, ...d.merge])
      if (from !== into) this.mergeIdentities(into, from, cause, events);
    this.assign(face.id, into, cause, events);
  }

  /** of identities about to merge, the one that survives: a named one, else the largest, else the first */
  private mergeTarget(ids: string[]): string {
    const rows = ids.map((id) => this.db.getIdentity(id)).filter((x): x is StoredIdentity => !!x);
    const named = rows.find((r) => r.name);
    if (named) return named.identityId;
    return rows.reduce((best, r) => (r.faceCount > best.faceCount ? r : best), rows[0]).identityId;
  }

  private mergeIdentities(into: string, from: string, cause: Cause, events: IdentityEvent[]): void {
    events.push(event('merged', into, cause, { mergedFrom: [from] }));
    for (const f of this.db.listFaces({ identityId: from })) this.assign(f.faceId, into, cause, events);
    this.db.deleteIdentityRow(from);
    this.magSums.delete(from);
  }

  private assign(faceId: string, identityId: string, cause: Cause, events: IdentityEvent[]): void {
    const f = this.db.getFace(faceId);
    if (!f || f.identityId === identityId) return;
    if (f.identityId !== null) this.bumpMagSum(f.identityId, -f.magnitude);
    this.db.setFaceIdentity(faceId, identityId);
    this.bumpMagSum(identityId, f.magnitude);
    events.push(event('face_assigned', identityId, cause, { faceId }));
  }

  /** Takes a face out of its identity; `reason` is stored as why it has none now. */
  private unassign(
    faceId: string,
    cause: Cause,
    events: IdentityEvent[],
    reason: UnassignedReason | null = null,
  ): void {
    const f = this.db.getFace(faceId);
    if (!f || f.identityId === null) return;
    this.bumpMagSum(f.identityId, -f.magnitude);
    this.db.setFaceIdentity(faceId, null, reason);
    events.push(event('face_unassigned', f.identityId, cause, { faceId }));
  }

  private bumpMagSum(id: string, delta: number): void {
    const m = this.magSums.get(id);
    if (m !== undefined) this.magSums.set(id, m + delta);
  }

  private retryPendingNear(face: ClusterFace, ctx: OnlineContext, events: IdentityEvent[]): void {
    for (const n of this.neighbours(face, this.params.k)) {
      if (n.identityId !== null) continue;
      const stored = this.db.getFace(n.faceId);
      if (!stored || stored.identityId !== null) continue;
      const pending = this.toClusterFace(stored);
      const d = decideOnline(pending, ctx);
      this.applyDecision(pending, stored.unassignedReason, d, 'online', events);
    }
  }

  private requireIdentity(id: string): StoredIdentity {
    const i = this.db.getIdentity(id);
    if (!i) throw new NotFoundError('identity', id);
    return i;
  }
}

/**
 * Why the recluster leaves snapshot face `i` without an identity: the batch's own reason, or, when
 * the batch placed it but the stable-id mapping took it out, because a user moved it out of that
 * identity (`removed_by_user`) or because the identity holds another face of its photo and a user
 * pinned that one there (the same-photo rule: no identity it may join, `no_match`).
 */
function reclusterReason(result: Clustering, i: number, excludedByUser: boolean): UnassignedReason {
  if (result.labels[i]! < 0) return result.reasons?.[i] ?? 'low_quality';
  return excludedByUser ? 'removed_by_user' : 'no_match';
}

function event(
  type: IdentityEvent['type'],
  identityId: string,
  cause: Cause,
  extra: Partial<IdentityEvent> = {},
): IdentityEvent {
  return {
    v: SCHEMA_VERSION,
    type,
    identityId,
    cause,
    at: new Date().toISOString(),
    ...extra,
  } as IdentityEvent;
}
