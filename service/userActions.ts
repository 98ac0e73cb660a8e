import type { Correction, FaceDatabase } from '../indexers/types.ts';
import type { UserAction } from '../indexers/store/people.ts';
import type { UnassignedReason } from '../schemas/face.ts';
import type { IdentityService } from './identityService.ts';
import { NotFoundError, RejectedError } from './errors.ts';

/**
 * What undoing an action needs: where its faces were (and, for a face without an identity, why it
 * had none; absent in actions recorded before reasons were kept), which identities existed (and
 * their state).
 */
interface ActionBody {
  params: Record<string, unknown>;
  faces: [faceId: string, identityId: string | null, reason?: UnassignedReason | null][];
  identities: [string, { name: string | null; hidden: boolean; coverFaceId: string | null } | null][];
  inverse: Correction[];
}

/** A correction that cannot be undone (already undone, or an undo itself): CANNOT_UNDO, a 409. */
export class UndoError extends RejectedError {
  constructor(message: string) {
    super('CANNOT_UNDO', message);
  }
}

/**
 * The user's corrections from the people view, each recorded in the user-action log with what
 * undoing it needs. Every correction goes through the IdentityService (so later online steps and
 * reclusters honour it); an undo puts the faces and identities back as they were and appends the
 * inverse corrections — the correction log and the action log are only ever appended to.
 */
export class UserActions {
  constructor(
    private readonly db: FaceDatabase,
    private readonly identities: IdentityService,
  ) {}

  rename(identityId: string, name: string | null): number {
    const old = this.requireIdentity(identityId).name;
    return this.record(
      'rename',
      name ? `renamed ${old ?? 'unnamed'} to ${name}` : `cleared the name ${old ?? ''}`,
      { identityId, name },
      { identities: [identityId] },
      () => this.identities.rename(identityId, name),
    );
  }

  merge(into: string, from: string): number {
    const a = this.requireIdentity(into);
    const b = this.requireIdentity(from);
    return this.record(
      'merge',
      `merged ${label(b)} into ${label(a)}`,
      { into, from },
      { identities: [into, from], faces: [...this.faceIdsOf(into), ...this.faceIdsOf(from)] },
      () => this.identities.merge(into, from),
    );
  }

  /** "Not this person": the faces leave their identity and are never put back by a later step. */
  moveOut(faceIds: string[]): number {
    const owners = this.ownersOf(faceIds);
    return this.record(
      'move_out',
      `took ${faceIds.length} face${faceIds.length === 1 ? '' : 's'} out of ${owners.map((o) => label(this.requireIdentity(o))).join(', ')}`,
      { faceIds },
      { identities: owners, faces: faceIds },
      () => {
        for (const f of faceIds) this.identities.moveFace(f, null);
      },
    );
  }

  /** "New person from these" (also "new person" for one face in Review). */
  split(faceIds: string[], name: string | null = null): { actionId: number; identityId: string } {
    let identityId = '';
    const owners = this.ownersOf(faceIds);
    const actionId = this.record(
      'split',
      `made a new person from ${faceIds.length} face${faceIds.length === 1 ? '' : 's'}`,
      { faceIds, name },
      { identities: owners, faces: faceIds, created: () => [identityId] },
      () => {
        identityId = this.identities.split(faceIds, name).identityId;
      },
    );
    return { actionId, identityId };
  }

  /** Review: a face goes into the suggested (or any chosen) person. */
  accept(faceId: string, identityId: string): number {
    const target = this.requireIdentity(identityId);
    return this.record(
      'accept',
      `put a face into ${label(target)}`,
      { faceId, identityId },
      { identities: [identityId, ...this.ownersOf([faceId])], faces: [faceId] },
      () => this.identities.moveFace(faceId, identityId),
    );
  }

  /** Review: the suggestion is wrong; the face is never put into that person by a later step. */
  reject(faceId: string, identityId: string): number {
    const target = this.requireIdentity(identityId);
    return this.record(
      'reject',
      `a face is not ${label(target)}`,
      { faceId, identityId },
      { faces: [faceId] },
      () => this.identities.exclude(faceId, identityId),
    );
  }

  markDifferent(a: string, b: string): number {
    const x = this.requireIdentity(a);
    const y = this.requireIdentity(b);
    return this.record(
      'different',
      `${label(x)} and ${label(y)} are different people`,
      { a, b },
      { identities: [a, b] },
      () => this.identities.markDifferent(a, b),
    );
  }

  hide(identityId: string, hidden: boolean): number {
    const i = this.requireIdentity(identityId);
    return this.record(
      hidden ? 'hide' : 'unhide',
      `${hidden ? 'hid' : 'showed'} ${label(i)}`,
      { identityId, hidden },
      { identities: [identityId] },
      () => this.db.people.setHidden(identityId, hidden),
    );
  }

  setCover(identityId: string, faceId: string): number {
    const i = this.requireIdentity(identityId);
    if (this.db.getFace(faceId)?.identityId !== identityId)
      throw new RejectedError('CORRECTION_REJECTED', `face ${faceId} is not a face of ${identityId}`);
    return this.record(
      'cover',
      `chose a cover for ${label(i)}`,
      { identityId, faceId },
      { identities: [identityId] },
      () => this.db.people.setCover(identityId, faceId),
    );
  }

  list(limit = 50): UserAction[] {
    return this.db.people.listActions(limit);
  }

  /** Undoes one action (not an undo, not twice): appends an 'undo' action and the inverse corrections. */
  undo(actionId: number): number {
    const action = this.db.people.getAction(actionId);
    if (!action) throw new NotFoundError('correction', String(actionId));
    if (action.kind === 'undo') throw new UndoError('an undo cannot itself be undone; redo the correction');
    if (action.undoneBy !== null) throw new UndoError(`correction ${actionId} was already undone`);
    const body = action.body as ActionBody;
    return this.db.transaction(() => {
      this.identities.restore(
        new Map(body.faces.map(([f, id]) => [f, id])),
        new Map(body.identities.map(([id, s]) => [id, s && { name: s.name }])),
        body.inverse,
        new Map(body.faces.map(([f, , reason]) => [f, reason ?? null])),
      );
      for (const [id, s] of body.identities) {
        if (!s || !this.db.getIdentity(id)) continue;
        this.db.people.setHidden(id, s.hidden);
        this.db.people.setCover(id, s.coverFaceId);
      }
      return this.db.people.addAction({
        kind: 'undo',
        summary: `undid: ${action.summary}`,
        body: { params: { actionId } },
        undoes: actionId,
      });
    });
  }

  // ---------------------------------------------------------------- internals

  /**
   * Runs a correction and records it: a snapshot of the faces and identities it may change, taken
   * before, and the corrections that reverse the ones it appended.
   */
  private record(
    kind: string,
    summary: string,
    params: Record<string, unknown>,
    touches: { identities?: string[]; faces?: string[]; created?: () => string[] },
    run: () => unknown,
  ): number {
    return this.db.transaction(() => {
      const faces = [...new Set(touches.faces ?? [])].map((f): ActionBody['faces'][number] => {
        const face = this.db.getFace(f);
        return [f, face?.identityId ?? null, face?.unassignedReason ?? null];
      });
      const identities = [...new Set(touches.identities ?? [])].map((id) => {
        const i = this.db.getIdentity(id);
        return [
          id,
          i ? { name: i.name, hidden: i.hidden, coverFaceId: i.coverFaceId } : null,
        ] as ActionBody['identities'][number];
      });
      const before = this.identities.corrections();
      const firstNew = this.lastCorrectionId() + 1;
      run();
      const added = this.db
        .listCorrections()
        .filter((c) => c.id >= firstNew)
        .map((c) => c.correction);
      for (const id of touches.created?.() ?? []) if (id) identities.push([id, null]);
      const body: ActionBody = { params, faces, identities, inverse: before.inverseOf(added) };
      return this.db.people.addAction({ kind, summary, body });
    });
  }

  private lastCorrectionId(): number {
    const all = this.db.listCorrections();
    return all.length > 0 ? all[all.length - 1]!.id : 0;
  }

  private faceIdsOf(identityId: string): string[] {
    return this.db.listFaces({ identityId }).map((f) => f.faceId);
  }

  private ownersOf(faceIds: string[]): string[] {
    const out = new Set<string>();
    for (const id of faceIds) {
      const f = this.db.getFace(id);
      if (!f) throw new NotFoundError('face', id);
      if (f.identityId) out.add(f.identityId);
    }
    return [...out];
  }

  private requireIdentity(id: string) {
    const i = this.db.getIdentity(id);
    if (!i) throw new NotFoundError('identity', id);
    return i;
  }
}

function label(i: { identityId: string; name: string | null }): string {
  return i.name ?? `unnamed ${i.identityId.slice(0, 10)}`;
}
