import { describe, expect, it } from 'vitest';
import { CorrectionState } from './corrections.ts';
import { mapStableIds, newIdentityId } from './stableIds.ts';

describe('stable identity ids', () => {
  const previous = new Map<string, string | null>([
    ['f1', 'A'],
    ['f2', 'A'],
    ['f3', 'B'],
    ['f4', 'B'],
    ['f5', 'B'],
    ['f6', null],
  ]);
  const identities = [
    { id: 'A', name: 'Alice' },
    { id: 'B', name: null },
  ];

  it('maps clusters onto the identities they overlap, named ones first', () => {
    // A and B fell into one cluster: the named identity keeps it, B is merged into it
    const r = mapStableIds({
      clusters: [['f1', 'f2', 'f3', 'f4', 'f5']],
      unassigned: ['f6'],
      previous,
      identities,
      corrections: new CorrectionState(),
    });
    expect(r.kept).toEqual(['A']);
    expect([...r.mergedInto]).toEqual([['B', 'A']]);
    expect(r.assignment.get('f5')).toBe('A');
    expect(r.assignment.get('f6')).toBeNull();
  });

  it('gives new clusters deterministic new ids', () => {
    const input = {
      clusters: [
        ['f1', 'f2'],
        ['f3', 'f4'],
        ['f6', 'x9'],
      ],
      unassigned: ['f5'],
      previous,
      identities,
      corrections: new CorrectionState(),
    };
    const r = mapStableIds(input);
    expect(r.created).toEqual([newIdentityId(['f6', 'x9'])]);
    expect(r.created[0]).toMatch(/^id_[0-9a-f]{16}$/);
    expect(mapStableIds(input).created).toEqual(r.created);
    expect(r.assignment.get('f1')).toBe('A');
    expect(r.assignment.get('f3')).toBe('B');
  });

  it('keeps a named identity even when no cluster maps to it, and avoids id collisions', () => {
    const r = mapStableIds({
      clusters: [],
      unassigned: ['f1', 'f2', 'f3', 'f4', 'f5'],
      previous,
      identities,
      corrections: new CorrectionState(),
    });
    expect(r.removed).toEqual(['B']);
    expect(newIdentityId(['f1'], (id) => id === newIdentityId(['f1']))).toBe(newIdentityId(['f1']) + '_2');
  });

  it('honours pinned and excluded faces', () => {
    const corrections = new CorrectionState([
      { kind: 'face_excluded', faceId: 'f2', identityId: 'A' },
      { kind: 'face_pinned', faceId: 'f3', identityId: 'A' },
    ]);
    const r = mapStableIds({
      clusters: [
        ['f1', 'f2'],
        ['f3', 'f4', 'f5'],
      ],
      unassigned: [],
      previous,
      identities,
      corrections,
    });
    expect(r.assignment.get('f2')).toBeNull();
    expect(r.assignment.get('f3')).toBe('A');
    expect(r.assignment.get('f4')).toBe('B');
  });

  it('same-photo rule: an identity keeps one face per photo, except faces a user pinned there', () => {
    // f3 (photo P) is pinned into A, whose cluster holds f1 (photo P, unpinned); f4 and f5 share
    // photo Q in B's cluster (not possible from clusterBatch, but the mapping enforces it anyway)
    const photo: Record<string, string> = { f1: 'P', f2: 'R', f3: 'P', f4: 'Q', f5: 'Q' };
    const input = {
      clusters: [
        ['f1', 'f2'],
        ['f3', 'f4', 'f5'],
      ],
      unassigned: [],
      previous: new Map<string, string | null>([...previous, ['f5', null]]),
      identities,
      corrections: new CorrectionState([{ kind: 'face_pinned', faceId: 'f3', identityId: 'A' }]),
    };
    const off = mapStableIds(input);
    expect([off.assignment.get('f1'), off.assignment.get('f3')]).toEqual(['A', 'A']);
    expect([off.assignment.get('f4'), off.assignment.get('f5')]).toEqual(['B', 'B']);
    const r = mapStableIds({ ...input, photoOf: (f) => photo[f] });
    expect(r.assignment.get('f3')).toBe('A'); // the user's pin wins
    expect(r.assignment.get('f1')).toBeNull();
    expect(r.assignment.get('f2')).toBe('A');
    expect(r.assignment.get('f4')).toBe('B'); // it was in B before
    expect(r.assignment.get('f5')).toBeNull();
    // two pinned faces of one photo both stay
    const both = mapStableIds({
      ...input,
      photoOf: (f) => photo[f],
      corrections: new CorrectionState(
        ['f3', 'f1'].map((faceId) => ({ kind: 'face_pinned' as const, faceId, identityId: 'A' })),
      ),
    });
    expect([both.assignment.get('f1'), both.assignment.get('f3')]).toEqual(['A', 'A']);
  });

  it('later corrections about the same face win', () => {
    const c = new CorrectionState([
      { kind: 'face_pinned', faceId: 'f', identityId: 'A' },
      { kind: 'face_excluded', faceId: 'f', identityId: 'A' },
      { kind: 'cannot_link', a: 'B', b: 'A' },
    ]);
    expect(c.pinned.has('f')).toBe(false);
    expect(c.excluded('f', 'A')).toBe(true);
    expect(c.cannotLink('A', 'B')).toBe(true);
    c.add({ kind: 'face_pinned', faceId: 'f', identityId: 'A' });
    expect(c.excluded('f', 'A')).toBe(false);
  });
});
