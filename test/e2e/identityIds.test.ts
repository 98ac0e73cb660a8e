/**
 * Identity ids are a function of the faces: data dirs built from the same photos get the same ids,
 * whatever the order or the number of steps they were built in (`facepipe run` reclusters at its
 * end; a cluster no user touched carries the canonical id of its faces).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { CROP_IDENTITIES, cropsDir, examplesDir, runCliJson } from './helpers.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-ids-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** identity id → its faces, of the identities holding faces */
function identities(dataDir: string): Map<string, string[]> {
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
  try {
    const out = new Map<string, string[]>();
    for (const f of store.faces.listFaces({ kept: true }))
      if (f.identityId) out.set(f.identityId, [...(out.get(f.identityId) ?? []), f.faceId].sort());
    return new Map([...out].sort());
  } finally {
    store.close();
  }
}

describe('identity ids', () => {
  it('two fresh data dirs from the same photos get the same identity ids, in one step or in two', async () => {
    const photos = path.join(tmp, 'photos');
    mkdirSync(photos);
    for (const person of CROP_IDENTITIES)
      for (const n of [1, 2, 3, 4, 5])
        copyFileSync(path.join(cropsDir, person, `${n}.png`), path.join(photos, `${person}-${n}.png`));
    copyFileSync(path.join(examplesDir, 'faceapi-groups', 'bbt4.jpg'), path.join(photos, 'group.jpg'));
    const run = (data: string, extra: string[]) =>
      runCliJson(['run', photos, '--data', path.join(tmp, data), '--json', ...extra]);

    await run('one', ['--concurrency', '1']);
    await run('two', ['--concurrency', '4']);
    const one = identities(path.join(tmp, 'one'));
    expect(one.size).toBeGreaterThanOrEqual(CROP_IDENTITIES.length);
    expect(identities(path.join(tmp, 'two'))).toEqual(one);

    // a library that grows: the later half of the people first, the others later, into one data
    // dir (so faces meet in another order than the walk's); against the whole library at once
    const grow = path.join(tmp, 'grow');
    mkdirSync(grow);
    const add = (people: readonly string[]) => {
      for (const person of people)
        for (const n of [1, 2, 3, 4, 5])
          copyFileSync(path.join(cropsDir, person, `${n}.png`), path.join(grow, `${person}-${n}.png`));
    };
    add(CROP_IDENTITIES.slice(4));
    copyFileSync(path.join(examplesDir, 'faceapi-groups', 'bbt4.jpg'), path.join(grow, 'group.jpg'));
    await runCliJson(['run', grow, '--data', path.join(tmp, 'steps'), '--json']);
    add(CROP_IDENTITIES.slice(0, 4));
    await runCliJson(['run', grow, '--data', path.join(tmp, 'steps'), '--json']);
    await runCliJson(['run', grow, '--data', path.join(tmp, 'at-once'), '--json']);
    const atOnce = identities(path.join(tmp, 'at-once'));
    expect(atOnce.size).toBeGreaterThanOrEqual(CROP_IDENTITIES.length);
    expect(identities(path.join(tmp, 'steps'))).toEqual(atOnce);
  });
});
