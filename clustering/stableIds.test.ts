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
