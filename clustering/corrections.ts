import type { Correction } from '../indexers/types.ts';

/**
 * The effect of the stored user corrections, replayed in order (a later correction about the same
 * face and identity wins): which identity pairs must stay apart, which faces may never return to an
 * identity, and which faces a user put into an identity.
 */
export class CorrectionState {
  private readonly apart = new Set<string>();
  private readonly excludedPairs = new Set<string>();
  readonly pinned = new Map<string, string>();

  constructor(corrections: readonly Correction[] = []) {
    for (const c of corrections) this.add(c);
  }

  add(c: Correction): void {
    switch (c.kind) {
      case 'cannot_link':
        this.apart.add(pairKey(c.a, c.b));
        break;
      case 'cannot_link_removed':
        this.apart.delete(pairKey(c.a, c.b));
        break;
      case 'face_excluded':
        this.excludedPairs.add(c.faceId + '\u0000' + c.identityId);
        if (this.pinned.get(c.faceId) === c.identityId) this.pinned.delete(c.faceId);
        break;
      case 'face_included':
        this.excludedPairs.delete(c.faceId + '\u0000' + c.identityId);
        break;
      case 'face_pinned':
        this.pinned.set(c.faceId, c.identityId);
        this.excludedPairs.delete(c.faceId + '\u0000' + c.identityId);
        break;
      case 'face_unpinned':
        this.pinned.delete(c.faceId);
        break;
    }
  }

  /**
   * The corrections that bring the state after `later` (this state plus `later`) back to this state:
   * what an undo appends. Only the faces and pairs `later` touches are considered.
   */
  inverseOf(later: readonly Correction[]): Correction[] {
    const after = new CorrectionState();
    for (const k of this.apart) after.apart.add(k);
    for (const k of this.excludedPairs) after.excludedPairs.add(k);
    for (const [f, i] of this.pinned) after.pinned.set(f, i);
    for (const c of later) after.add(c);
    const pairs = new Set<string>();
    const exclusions = new Map<string, [string, string]>();
    const faces = new Set<string>();
    for (const c of later) {
      if (c.kind === 'cannot_link' || c.kind === 'cannot_link_removed') pairs.add(pairKey(c.a, c.b));
      else {
        faces.add(c.faceId);
        if (c.kind !== 'face_unpinned')
          exclusions.set(c.faceId + '\u0000' + c.identityId, [c.faceId, c.identityId]);
        // a pin also withdraws an exclusion of its face from the identity it was pinned to before
        const pin = this.pinned.get(c.faceId);
        if (pin !== undefined) exclusions.set(c.faceId + '\u0000' + pin, [c.faceId, pin]);
      }
    }
    const out: Correction[] = [];
    for (const k of pairs) {
      const [a, b] = k.split('\u0000') as [string, string];
      if (this.apart.has(k) && !after.apart.has(k)) out.push({ kind: 'cannot_link', a, b });
      if (!this.apart.has(k) && after.apart.has(k)) out.push({ kind: 'cannot_link_removed', a, b });
    }
    // exclusions first: restoring a pin below clears the exclusion of its own pair
    for (const [k, [faceId, identityId]] of exclusions) {
      if (this.excludedPairs.has(k) && !after.excludedPairs.has(k))
        out.push({ kind: 'face_excluded', faceId, identityId });
      if (!this.excludedPairs.has(k) && after.excludedPairs.has(k))
        out.push({ kind: 'face_included', faceId, identityId });
    }
    for (const faceId of faces) {
      const before = this.pinned.get(faceId);
      if (before === after.pinned.get(faceId)) continue;
      out.push(
        before === undefined
          ? { kind: 'face_unpinned', faceId }
          : { kind: 'face_pinned', faceId, identityId: before },
      );
    }
    return out;
  }

  cannotLink(a: string, b: string): boolean {
    return a !== b && this.apart.has(pairKey(a, b));
  }

  /** identities that appear in some cannot-link correction */
  constrainedIdentities(): Set<string> {
    const out = new Set<string>();
    for (const k of this.apart) for (const id of k.split('\u0000')) out.add(id);
    return out;
  }

  /** pairs (a, b) of cannot-link corrections */
  cannotLinkPairs(): [string, string][] {
    return [...this.apart].map((k) => k.split('\u0000') as [string, string]);
  }

  excluded(faceId: string, identityId: string): boolean {
    return this.excludedPairs.has(faceId + '\u0000' + identityId);
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? a + '\u0000' + b : b + '\u0000' + a;
}
