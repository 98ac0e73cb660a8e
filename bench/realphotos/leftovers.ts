import type { LabelledCollection } from '../../clustering/calibration.ts';
import type { Clustering } from '../../clustering/types.ts';
import { addScaled, dot, norm } from '../../clustering/vec.ts';

/**
 * Where the labelled faces a clustering left unassigned would go: for each, the identity whose
 * template direction is nearest (over ALL identities, not only those among its kNN), and whether
 * that identity is the face's own person. It says how much recall any looser attach rule could
 * win (nearest identity is the right one) against what it would put in the wrong place (another
 * person, an identity of unlabelled faces, or a person who has no identity: seen once, or never
 * clustered), per reason the clustering gave (`dropped`: below the magnitude floor, never clustered).
 */

export type LeftoverOutcome = 'ownPerson' | 'otherPerson' | 'unlabelledIdentity' | 'seenOnce' | 'noIdentity';

export interface LeftoverStudy {
  folder: string;
  /** labelled faces left unassigned (photos without a face not counted) */
  unassigned: number;
  /** reason → outcome → faces */
  byReason: Record<string, Partial<Record<LeftoverOutcome, number>>>;
  /** template cosine to the nearest identity, median and 90th percentile, per outcome */
  nearestCosine: Partial<Record<LeftoverOutcome, { p50: number; p90: number; faces: number }>>;
}

export function leftoverStudy(c: LabelledCollection, result: Clustering): LeftoverStudy {
  const { labels, reasons } = result;
  const templates = identityTemplates(c, labels);
  const truthOf = new Map<number, string>();
  c.largest.forEach((i, p) => {
    if (i >= 0) truthOf.set(i, c.truth[p]!);
  });
  const owner = identityOwners(labels, truthOf);
  const owned = new Set(owner.values());
  const photosOf = new Map<string, number>();
  for (const t of c.truth) photosOf.set(t, (photosOf.get(t) ?? 0) + 1);
  const byReason: LeftoverStudy['byReason'] = {};
  const cosines = new Map<LeftoverOutcome, number[]>();
  let unassigned = 0;
  for (const [i, person] of truthOf) {
    if (labels[i]! >= 0) continue;
    unassigned++;
    const { identity, cos } = nearestIdentity(c.faces[i]!.unit, templates);
    const outcome: LeftoverOutcome =
      identity >= 0 && owner.get(identity) === person
        ? 'ownPerson'
        : photosOf.get(person)! === 1
          ? 'seenOnce'
          : !owned.has(person)
            ? 'noIdentity'
            : identity >= 0 && owner.has(identity)
              ? 'otherPerson'
              : 'unlabelledIdentity';
    const reason = reasons?.[i] ?? 'dropped';
    const row = (byReason[reason] ??= {});
    row[outcome] = (row[outcome] ?? 0) + 1;
    if (identity >= 0) cosines.set(outcome, [...(cosines.get(outcome) ?? []), cos]);
  }
  const nearestCosine: LeftoverStudy['nearestCosine'] = {};
  for (const [outcome, v] of cosines) {
    v.sort((a, b) => a - b);
    const at = (q: number) => round3(v[Math.min(v.length - 1, Math.floor(q * v.length))]!);
    nearestCosine[outcome] = { p50: at(0.5), p90: at(0.9), faces: v.length };
  }
  return { folder: c.name, unassigned, byReason, nearestCosine };
}

/** identity → unit template direction (Σ magnitude · unit over its faces, attached ones included) */
export function identityTemplates(c: LabelledCollection, labels: Int32Array): Map<number, Float32Array> {
  const sums = new Map<number, Float32Array>();
  labels.forEach((l, i) => {
    if (l < 0) return;
    const f = c.faces[i]!;
    let t = sums.get(l);
    if (!t) sums.set(l, (t = new Float32Array(f.unit.length)));
    addScaled(t, f.unit, f.magnitude);
  });
  for (const t of sums.values()) {
    const n = norm(t);
    for (let d = 0; d < t.length; d++) t[d] = t[d]! / n;
  }
  return sums;
}

/** identity → the person most of its labelled faces show (identities without labelled faces absent) */
export function identityOwners(
  labels: Int32Array,
  truthOf: ReadonlyMap<number, string>,
): Map<number, string> {
  const votes = new Map<number, Map<string, number>>();
  for (const [i, person] of truthOf) {
    const l = labels[i]!;
    if (l < 0) continue;
    const v = votes.get(l) ?? new Map<string, number>();
    v.set(person, (v.get(person) ?? 0) + 1);
    votes.set(l, v);
  }
  const owner = new Map<number, string>();
  for (const [l, v] of votes)
    owner.set(l, [...v].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0]);
  return owner;
}

function nearestIdentity(
  unit: Float32Array,
  templates: ReadonlyMap<number, Float32Array>,
): { identity: number; cos: number } {
  let identity = -1;
  let cos = -Infinity;
  for (const [l, t] of templates) {
    const x = dot(unit, t);
    if (x > cos) [identity, cos] = [l, x];
  }
  return { identity, cos };
}

const round3 = (x: number) => Math.round(x * 1e3) / 1e3;
