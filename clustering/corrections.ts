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
    if (c.kind === 'cannot_link') this.apart.add(pairKey(c.a, c.b));
    else if (c.kind === 'face_excluded') {
      this.excludedPairs.add(c.faceId + '\u0000' + c.identityId);
      if (this.pinned.get(c.faceId) === c.identityId) this.pinned.delete(c.faceId);
    } else {
      this.pinned.set(c.faceId, c.identityId);
      this.excludedPairs.delete(c.faceId + '\u0000' + c.identityId);
    }
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
