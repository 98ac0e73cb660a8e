import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openFaceDatabase } from '../indexers/database.ts';
import { eraseFileAsUser } from '../indexers/testUtil.ts';
import { imageFiles, withoutErased } from './stream.ts';

// `facepipe publish --data DIR` leaves out the photos a user erased in that data dir.
const amy = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/faceapi-crops/amy');

describe('publish and erased photos', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-publish-erased-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('leaves out an erased photo (by path and by content), keeps the rest', () => {
    const data = path.join(tmp, 'data');
    const db = openFaceDatabase(data, { modelId: 'm', dim: 4 });
    const erased = path.join(amy, '1.png');
    eraseFileAsUser(db, erased);
    db.close();
    const files = imageFiles([amy]);
    expect(withoutErased(files, data)).toEqual(files.filter((f) => f !== erased));
    const copy = path.join(tmp, 'copy.png');
    copyFileSync(erased, copy);
    expect(withoutErased([copy, path.join(amy, '2.png')], data)).toEqual([path.join(amy, '2.png')]);
    // a data dir without a store has nothing erased
    expect(withoutErased(files, path.join(tmp, 'none'))).toEqual(files);
  });
});
