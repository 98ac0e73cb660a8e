import { describe, expect, it } from 'vitest';
import {
  DeadLetter,
  FaceRecord,
  INLINE_MAX_BYTES,
  PhotoEvent,
  PhotoResult,
  SCHEMA_VERSION,
} from './index.ts';

const now = new Date().toISOString();

describe('PhotoEvent', () => {
  it('accepts file, http(s) and inline sources and fills the version', () => {
    for (const uri of ['file:///photos/a.jpg', 'http://example.org/a.jpg', 'https://example.org/x?y=1']) {
      const e = PhotoEvent.parse({ photoId: 'p1', source: { kind: 'uri', uri }, createdAt: now });
      expect(e.v).toBe(SCHEMA_VERSION);
    }
    const inline = PhotoEvent.parse({
      photoId: 'lib/p-2',
      source: { kind: 'inline', data: Buffer.from('abc').toString('base64') },
      library: 'family',
      tenant: 't1',
      createdAt: now,
    });
    expect(inline.source.kind).toBe('inline');
  });

  it('rejects other schemes, bad ids, bad base64, oversized inline bytes, a wrong version', () => {
    const base = { photoId: 'p1', createdAt: now };
    const bad = [
      { ...base, source: { kind: 'uri', uri: 'ftp://h/a.jpg' } },
      { ...base, source: { kind: 'uri', uri: '/plain/path.jpg' } },
      { ...base, photoId: '', source: { kind: 'uri', uri: 'file:///a.jpg' } },
      { ...base, photoId: 'has space', source: { kind: 'uri', uri: 'file:///a.jpg' } },
      { ...base, source: { kind: 'inline', data: 'not base64!' } },
      { ...base, source: { kind: 'inline', data: Buffer.alloc(INLINE_MAX_BYTES + 3).toString('base64') } },
      { ...base, v: 2, source: { kind: 'uri', uri: 'file:///a.jpg' } },
      { photoId: 'p1', source: { kind: 'uri', uri: 'file:///a.jpg' } },
    ];
    for (const b of bad) expect(PhotoEvent.safeParse(b).success, JSON.stringify(b).slice(0, 80)).toBe(false);
  });
});

describe('PhotoResult, DeadLetter, FaceRecord', () => {
  it('validate their documented shapes', () => {
    expect(
      PhotoResult.parse({
        photoId: 'p',
        uri: 'file:///a.jpg',
        width: 10,
        height: 20,
        contentHash: 'ab',
        modelId: 'm',
        faceIds: ['f_1'],
        at: now,
      }).v,
    ).toBe(1);
    const dl = DeadLetter.parse({
      id: 'photos:0:12',
      stage: 'fetch',
      code: 'FORBIDDEN_URI',
      reason: 'outside the roots',
      attempts: 1,
      original: { topic: 'photos', partition: 0, offset: '12', key: 'p', value: '{}' },
      at: now,
    });
    expect(dl.original?.valueEncoding).toBe('utf8');
    expect(DeadLetter.safeParse({ ...dl, attempts: 0 }).success).toBe(false);
    expect(FaceRecord.safeParse({ faceId: 'f', photoId: 'p' }).success).toBe(false);
  });
});
