import { createHash } from 'node:crypto';
import type { CorrectionState } from './corrections.ts';

/** Deterministic id of a new identity: from the smallest face id of its first faces. */
export function newIdentityId(faceIds: readonly string[], taken?: (id: string) => boolean): string {
  const smallest = [...faceIds].sort()[0] ?? '';
  const base = 'id_' + createHash('sha256').update(smallest).digest('hex').slice(0, 16);
  if (!taken) return base;
  let id = base;
  for (let i = 2; taken(id); i++) id = `${base}_${i}`;
  return id;
}

export interface ExistingIdentity {
  id: string;
  name: string | null;
}

export interface StableIdInput {
  /** new clusters, as face ids */
  clusters: readonly (readonly string[])[];
  /** faces given to the clustering that it left unassigned */
  unassigned: readonly string[];
  /** identity of each face before the recluster */
  previous: ReadonlyMap<string, string | null>;
  identities: readonly ExistingIdentity[];
  corrections: CorrectionState;
  /**
   * Same-photo rule: the photo of each face. Given, no identity ends with two faces of one photo
   * unless a user pinned them there (see `separateSamePhoto`).
   */
  photoOf?: (faceId: string) => string | undefined;
  /**
   * Identities a user has touched (named, or named in a correction). Given, only these keep their
   * id by overlap; every other cluster takes its canonical id (`newIdentityId` of its faces), so
   * the ids are a function of the faces: two data dirs built from the same photos, in any order,
   * by any path, get the same ids. Not given, every old identity may keep its id by overlap.
   */
  anchored?: ReadonlySet<string>;
}

export interface StableIdResult {
  /** new identity of every face given (null = unassigned) */
  assignment: Map<string, string | null>;
  /** clusters mapped onto an existing identity id */
  kept: string[];
  /** identities to create (new ids) */
  created: string[];
  /** old identity → the identity its faces mostly went to (it disappears: a merge) */
  mergedInto: Map<string, string>;
  /** old unnamed identities that disappear without their faces going anywhere */
  removed: string[];
  /** faces the clustering placed in an identity a user had moved them out of: left unassigned */
  excludedByUser: Set<string>;
}

/**
 * Maps new clusters onto existing identity ids so ids and names survive a recluster:
 * - candidate (cluster, old identity) pairs are ranked named identities first, then by overlap
 *   (faces the cluster shares with the identity), then by id; each cluster and each old identity is
 *   used at most once (greedy, deterministic);
 * - clusters with no old identity get `newIdentityId` of their faces; with `anchored` given, only a
 *   user-touched identity (or one whose id already is the cluster's canonical id) is an old identity
 *   a cluster can keep, so untouched identities always carry the canonical id of their faces;
 * - corrections win: pinned faces go to the identity the user put them in; a face never lands in an
 *   identity it was moved out of (it is left unassigned instead);
 * - same-photo rule (when `photoOf` is given): after the pins, an identity holding several faces of
 *   one photo keeps only the ones a user pinned there (all of them: the user's explicit action wins,
 *   even over this rule); with none pinned it keeps one (the face that was in it before, else the
 *   smallest id). The others are left unassigned;
 * - an old identity no cluster maps to is merged into the identity most of its faces went to, or
 *   removed (unnamed) — a named identity is never removed: it stays, possibly empty.
 */
export function mapStableIds(input: StableIdInput): StableIdResult {
  const named = new Map(input.identities.map((i) => [i.id, i.name !== null && i.name !== '']));
  const exists = new Set(input.identities.map((i) => i.id));
  const pairs: { c: number; id: string; overlap: number }[] = [];
  input.clusters.forEach((faces, c) => {
    const overlap = new Map<string, number>();
    const canonical = input.anchored ? newIdentityId(faces) : undefined;
    for (const f of faces) {
      const old = input.corrections.pinned.get(f) ?? input.previous.get(f);
      if (!old || !exists.has(old)) continue;
      if (input.anchored && !input.anchored.has(old) && old !== canonical) continue;
      overlap.set(old, (overlap.get(old) ?? 0) + 1);
    }
    for (const [id, n] of overlap) pairs.push({ c, id, overlap: n });
  });
  pairs.sort(
    (x, y) =>
      Number(named.get(y.id)) - Number(named.get(x.id)) ||
      y.overlap - x.overlap ||
      (x.id < y.id ? -1 : x.id > y.id ? 1 : 0) ||
      x.c - y.c,
  );
  const clusterId = new Array<string | undefined>(input.clusters.length);
  const used = new Set<string>();
  for (const { c, id } of pairs) {
    if (clusterId[c] !== undefined || used.has(id)) continue;
    clusterId[c] = id;
    used.add(id);
  }
  const kept = [...used];
  const created: string[] = [];
  const taken = (id: string) => exists.has(id) || used.has(id);
  input.clusters.forEach((faces, c) => {
    if (clusterId[c] !== undefined) return;
    const id = newIdentityId(faces, taken);
    clusterId[c] = id;
    used.add(id);
    created.push(id);
  });

  const assignment = new Map<string, string | null>();
  input.clusters.forEach((faces, c) => {
    for (const f of faces) assignment.set(f, clusterId[c]!);
  });
  for (const f of input.unassigned) assignment.set(f, null);
  const excludedByUser = new Set<string>();
  for (const [f, target] of assignment) {
    const pin = input.corrections.pinned.get(f);
    if (pin !== undefined && exists.has(pin)) assignment.set(f, pin);
    else if (target !== null && input.corrections.excluded(f, target)) {
      assignment.set(f, null);
      excludedByUser.add(f);
    }
  }
  if (input.photoOf) separateSamePhoto(assignment, input.photoOf, input.corrections, input.previous);

  const mergedInto = new Map<string, string>();
  const removed: string[] = [];
  const formerFaces = new Map<string, string[]>();
  for (const [f, old] of input.previous) {
    if (old === null) continue;
    const list = formerFaces.get(old);
    if (list) list.push(f);
    else formerFaces.set(old, [f]);
  }
  for (const { id } of input.identities) {
    if (used.has(id) || named.get(id)) continue;
    const destinations = new Map<string, number>();
    for (const f of formerFaces.get(id) ?? []) {
      const now = assignment.get(f);
      if (now) destinations.set(now, (destinations.get(now) ?? 0) + 1);
    }
    const best = [...destinations].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (best) mergedInto.set(id, best[0]);
    else removed.push(id);
  }
  return { assignment, kept, created, mergedInto, removed, excludedByUser };
}

/**
 * Leaves at most one face of each photo in each identity, besides faces a user pinned there (the
 * user's explicit action wins): where a pinned face shares its identity with unpinned faces of its
 * photo, the unpinned ones go; where none is pinned, the face that was in the identity before (else
 * the smallest id) stays. The faces that go are left unassigned.
 */
export function separateSamePhoto(
  assignment: Map<string, string | null>,
  photoOf: (faceId: string) => string | undefined,
  corrections: CorrectionState,
  previous: ReadonlyMap<string, string | null>,
): string[] {
  const byIdentityPhoto = new Map<string, string[]>();
  for (const [f, id] of assignment) {
    const photo = photoOf(f);
    if (id === null || photo === undefined) continue;
    const key = id + '\u0000' + photo;
    const list = byIdentityPhoto.get(key);
    if (list) list.push(f);
    else byIdentityPhoto.set(key, [f]);
  }
  const evicted: string[] = [];
  for (const faces of byIdentityPhoto.values()) {
    if (faces.length < 2) continue;
    const id = assignment.get(faces[0])!;
    const pinned = faces.filter((f) => corrections.pinned.get(f) === id);
    const before = faces.filter((f) => previous.get(f) === id);
    const stay = new Set(pinned.length > 0 ? pinned : [(before.length > 0 ? before : faces).sort()[0]]);
    for (const f of faces) {
      if (stay.has(f)) continue;
      assignment.set(f, null);
      evicted.push(f);
    }
  }
  return evicted;
}
