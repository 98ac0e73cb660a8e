import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { PeopleStore, type Tombstone } from '../../indexers/store/people.ts';
import type { Correction } from '../../indexers/types.ts';
import type { UnassignedReason } from '../../schemas/face.ts';
import { cropIdentity, repoRoot } from '../e2e/helpers.ts';

/** Debian's chromium (`apt-get install -y chromium`); `npx playwright install` cannot work here. */
export const CHROMIUM = process.env.FACEPIPE_CHROMIUM ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium (or set FACEPIPE_CHROMIUM)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-background-networking'],
  });
}

/**
 * Screenshots for the README: written when FACEPIPE_SCREENSHOTS names a folder
 * (`npm run screenshots` writes docs/screenshots/), so a plain test run leaves the tree clean.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.FACEPIPE_SCREENSHOTS;
  if (!dir) return;
  const out = path.resolve(repoRoot, dir);
  mkdirSync(out, { recursive: true });
  await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true, animations: 'disabled' });
}

export interface StoreSnapshot {
  identities: Map<string, { name: string | null; hidden: boolean; faces: string[] }>;
  faces: Map<
    string,
    {
      identityId: string | null;
      photoId: string;
      uri: string;
      kept: boolean;
      unassignedReason: UnassignedReason | null;
    }
  >;
  photos: Map<string, { uri: string }>;
  corrections: Correction[];
  tombstones: Tombstone[];
}

/** Reads the store file itself (read-only; the server may be running), not through the server. */
export function readStore(dataDir: string): StoreSnapshot {
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
  try {
    const people = new PeopleStore(store.db);
    const photos = new Map(store.photos.listPhotos().map((p) => [p.photoId, { uri: p.uri }]));
    const faces = new Map(
      store.faces.listFaces().map((f) => [
        f.faceId,
        {
          identityId: f.identityId,
          photoId: f.photoId,
          uri: photos.get(f.photoId)?.uri ?? '',
          kept: f.kept,
          unassignedReason: f.unassignedReason,
        },
      ]),
    );
    const identities = new Map(
      store.identities.listIdentities().map((i) => [
        i.identityId,
        {
          name: i.name,
          hidden: i.hidden,
          faces: [...faces].filter(([, f]) => f.identityId === i.identityId).map(([id]) => id),
        },
      ]),
    );
    return {
      identities,
      faces,
      photos,
      corrections: store.identities.listCorrections().map((c) => c.correction),
      tombstones: people.listTombstones(),
    };
  } finally {
    store.close();
  }
}

/** crop person (amy, …) → the identity holding most of that person's crops */
export function identitiesByCropPerson(s: StoreSnapshot): Map<string, string> {
  const votes = new Map<string, Map<string, number>>();
  for (const f of s.faces.values()) {
    const person = cropIdentity(f.uri);
    if (!person || !f.identityId) continue;
    const v = votes.get(person) ?? new Map<string, number>();
    v.set(f.identityId, (v.get(f.identityId) ?? 0) + 1);
    votes.set(person, v);
  }
  return new Map(
    [...votes].map(([person, v]) => [
      person,
      [...v].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0],
    ]),
  );
}
