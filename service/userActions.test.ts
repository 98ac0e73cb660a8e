import { afterEach, describe, expect, it } from 'vitest';
import { erasePhotos } from '../indexers/erasure.ts';
import type { FaceDatabase } from '../indexers/types.ts';
import { CorrectionState } from '../clustering/corrections.ts';
import { similarIdentities, suggestionsFor } from '../clustering/suggestions.ts';
import { clusteredCrops, type ClusteredCrops } from './testUtil.ts';

const open: ClusteredCrops[] = [];

afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

function clustered(): ClusteredCrops {
  const c = clusteredCrops();
  open.push(c);
  return c;
}

const facesOf = (db: FaceDatabase, id: string) =>
  db
    .listFaces({ identityId: id })
    .map((f) => f.faceId)
    .sort();

describe('user actions and undo', () => {
  it('undoing a merge restores both people, their names and the corrections, also after a recluster', () => {
    const { db, identities, actions, who } = clustered();
    const [a, b] = [who.get('amy')!, who.get('penny')!];
    actions.rename(b, 'Penny');
    const before = {
      a: facesOf(db, a),
      b: facesOf(db, b),
      corrections: new CorrectionState(db.listCorrections().map((c) => c.correction)),
    };
    const merge = actions.merge(a, b);
    expect(db.getIdentity(b)).toBeUndefined();
    expect(db.getIdentity(a)!.name).toBe('Penny');
    actions.undo(merge);
    expect(facesOf(db, a)).toEqual(before.a);
    expect(facesOf(db, b)).toEqual(before.b);
    expect(db.getIdentity(b)!.name).toBe('Penny');
    expect(db.getIdentity(a)!.name).toBeNull();
    // the correction state after the undo equals the state before the merge (log only appended)
    const after = new CorrectionState(db.listCorrections().map((c) => c.correction));
    for (const f of [...before.a, ...before.b])
      expect(after.pinned.get(f)).toBe(before.corrections.pinned.get(f));
    expect(db.people.getAction(merge)!.undoneBy).not.toBeNull();
    expect(() => actions.undo(merge)).toThrow(/already undone/);
    identities.recluster();
    expect(facesOf(db, a)).toEqual(before.a);
    expect(facesOf(db, b)).toEqual(before.b);
  });

  it('a split makes a new person that a recluster keeps; undoing it puts the faces back', () => {
    const { db, identities, actions, who } = clustered();
    const from = who.get('sheldon')!;
    const all = facesOf(db, from);
    const picked = all.slice(0, 2);
    const { actionId, identityId } = actions.split(picked, 'Sheldon (young)');
    expect(facesOf(db, identityId)).toEqual(picked);
    expect(db.getIdentity(identityId)!.name).toBe('Sheldon (young)');
    identities.recluster();
    expect(facesOf(db, identityId)).toEqual(picked);
    expect(facesOf(db, from)).toEqual(all.filter((f) => !picked.includes(f)));
    actions.undo(actionId);
    expect(db.getIdentity(identityId)).toBeUndefined();
    expect(facesOf(db, from)).toEqual(all);
    identities.recluster();
    expect(facesOf(db, from)).toEqual(all);
  });

  it('move out, reject and accept: suggestions leave out what a user ruled out; the stored reason follows', () => {
    const { db, identities, actions, who } = clustered();
    const leonard = who.get('leonard')!;
    const face = facesOf(db, leonard)[0]!;
    expect(db.getFace(face)!.unassignedReason).toBeNull();
    actions.moveOut([face]);
    expect(db.getFace(face)!.identityId).toBeNull();
    expect(db.getFace(face)!.unassignedReason).toBe('removed_by_user');
    const first = suggestionsFor(db, face);
    expect(first.map((s) => s.identityId)).not.toContain(leonard);
    actions.reject(face, first[0]!.identityId);
    expect(db.getFace(face)!.unassignedReason).toBe('removed_by_user');
    const second = suggestionsFor(db, face);
    expect(second.map((s) => s.identityId)).not.toContain(first[0]!.identityId);
    const accept = actions.accept(face, leonard);
    expect(db.getFace(face)!.identityId).toBe(leonard);
    expect(db.getFace(face)!.unassignedReason).toBeNull();
    identities.recluster();
    expect(db.getFace(face)!.identityId).toBe(leonard);
    actions.undo(accept);
    expect(db.getFace(face)!).toMatchObject({ identityId: null, unassignedReason: 'removed_by_user' });
    // the batch puts the face back with Leonard's other faces; the user's exclusion keeps it out
    identities.recluster();
    expect(db.getFace(face)!).toMatchObject({ identityId: null, unassignedReason: 'removed_by_user' });
  });

  it('"looks similar" ranks other people by template cosine; hide and cover are undoable', () => {
    const { db, actions, who } = clustered();
    const amy = who.get('amy')!;
    const similar = similarIdentities(db, amy, 3);
    expect(similar.length).toBeGreaterThan(0);
    expect(similar.map((s) => s.identityId)).not.toContain(amy);
    expect(similar.map((s) => s.score)).toEqual([...similar.map((s) => s.score)].sort((x, y) => y - x));
    const hide = actions.hide(amy, true);
    expect(db.people.personPage({ limit: 100, offset: 0 }).people.map((p) => p.identityId)).not.toContain(
      amy,
    );
    actions.undo(hide);
    expect(db.getIdentity(amy)!.hidden).toBe(false);
    const last = facesOf(db, amy).at(-1)!;
    actions.setCover(amy, last);
    expect(db.people.coverOf(amy, db.getIdentity(amy)!.coverFaceId)).toBe(last);
  });

  it('the grid: largest first, unnamed first on request, filtered by name', () => {
    const { db, actions, who } = clustered();
    actions.rename(who.get('raj')!, 'Raj');
    const page = db.people.personPage({ limit: 100, offset: 0 });
    expect(page.people.map((p) => p.faceCount)).toEqual(
      [...page.people.map((p) => p.faceCount)].sort((a, b) => b - a),
    );
    expect(db.people.personPage({ limit: 100, offset: 0, name: 'ra' }).people.map((p) => p.name)).toEqual([
      'Raj',
    ]);
    const unnamed = db.people.personPage({ limit: 100, offset: 0, unnamedFirst: true }).people;
    expect(unnamed.at(-1)!.name).toBe('Raj');
    for (const p of page.people) expect(p.coverFaceId).not.toBeNull();
  });

  it('erasing a photo leaves a tombstone found by id, path or content', () => {
    const { db } = clustered();
    const photo = db.listPhotos()[0]!;
    const { faceIds } = erasePhotos(db, [photo.photoId], 'user');
    expect(faceIds.length).toBe(1);
    expect(db.getPhoto(photo.photoId)).toBeUndefined();
    expect(db.people.erased({ photoId: photo.photoId })).toBeDefined();
    expect(db.people.erased({ uri: photo.uri })).toBeDefined();
    expect(db.people.erased({ photoId: 'elsewhere', contentHash: photo.contentHash })).toBeDefined();
    expect(db.people.erased({ photoId: 'other', uri: 'other', contentHash: 'other' })).toBeUndefined();
  });
});
