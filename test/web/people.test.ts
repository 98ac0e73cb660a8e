import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { spawn } from 'node:child_process';
import {
  cropsDir,
  examplesArg,
  repoRoot,
  runCli,
  runCliJson,
  startServe,
  type ServeProcess,
} from '../e2e/helpers.ts';
import { thumbPath } from '../../pipeline/report.ts';
import { unassignedReasonText } from '../../schemas/face.ts';
import { identitiesByCropPerson, launchBrowser, readStore, screenshot } from './browser.ts';

// The people view in a real browser (Debian chromium through playwright-core) against a real
// `facepipe serve` on a data dir written by `facepipe run` on the bundled examples. Every step is
// checked on the page and in the store file; the last steps recluster and re-run and check again.
const TOKEN = 'browser-test-token-7f3a';
const NAMES: Record<string, string> = {
  amy: 'Amy',
  bernadette: 'Bernadette',
  howard: 'Howard',
  leonard: 'Leonard',
  penny: 'Penny',
  raj: 'Raj',
  sheldon: 'Sheldon',
  stuart: 'Stuart',
};

describe('people view in a browser', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-web-'));
  const data = path.join(tmp, 'data');
  let server: ServeProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** crop person → identity id, as the run clustered them */
  let who: Map<string, string>;
  /** what the steps did, checked again after the recluster */
  const done = {
    merged: { amyFaces: [] as string[], bernadetteFaces: [] as string[] },
    split: { identityId: '', faces: [] as string[], from: '' },
    movedOut: { faces: [] as string[], from: '' },
    rejected: { faceId: '', identityId: '' },
    accepted: { faceId: '', identityId: '' },
    erased: { photoId: '', uri: '', faces: [] as string[] },
  };

  const url = (p: string) => server.url + p;
  const personPage = async (person: string) => {
    await page.goto(url(`/person/${who.get(person)}`));
    await expect.poll(() => page.locator('#person-name').inputValue()).toBeDefined();
  };
  /** faces shown on a person page, in page order */
  const shownFaces = () =>
    page.locator('li.face').evaluateAll((els) => els.map((e) => e.getAttribute('data-face-id')!));

  beforeAll(async () => {
    await runCliJson(['run', examplesArg, '--data', data, '--json', '--no-progress']);
    who = identitiesByCropPerson(readStore(data));
    server = await startServe(['--data', data, '--token', TOKEN]);
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('without the token a browser gets the login page and no data', async () => {
    const anonymous = await browser.newContext();
    const p = await anonymous.newPage();
    for (const target of ['/', `/person/${who.get('amy')}`, '/review', '/undo', '/search']) {
      await p.goto(url(target));
      expect(new URL(p.url()).pathname).toBe('/login');
      await expect.poll(() => p.locator('#token').count()).toBe(1);
      // the page only echoes the address asked for (to return there after signing in)
      const html = (await p.content()).replace(/name="next" value="[^"]*"/, '');
      expect(html).not.toContain('/thumbs/');
      expect(html).not.toMatch(/id_[0-9a-f]{16}/);
      expect(html).not.toContain('faceapi');
    }
    const faceId = readStore(data).identities.get(who.get('amy')!)!.faces[0]!;
    for (const target of [`/thumbs/${faceId}.jpg`, '/identities', `/faces/${faceId}`]) {
      const res = await p.request.get(url(target), { maxRedirects: 0 });
      expect(res.status()).toBe(401);
    }
    await p.goto(url('/login'));
    await p.fill('#token', 'not-the-token');
    await p.click('button[type=submit]');
    await expect.poll(() => p.locator('#login-error').textContent()).toContain('not right');
    expect((await anonymous.cookies()).some((c) => c.name === 'facepipe_session')).toBe(false);
    await anonymous.close();
  });

  it('logs in once with the token: an HttpOnly, SameSite=Strict session cookie, then the People page', async () => {
    await page.goto(url('/'));
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(url('/'));
    const session = (await context.cookies()).find((c) => c.name === 'facepipe_session')!;
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe('Strict');
    expect(session.value).not.toContain(TOKEN);
    const cards = page.locator('li.person');
    expect(await cards.count()).toBe(readStore(data).identities.size);
    // largest first, each with a cover thumbnail that loads
    const counts = await page
      .locator('li.person .meta')
      .evaluateAll((els) => els.map((e) => Number(/^(\d+) face/.exec(e.textContent!)![1])));
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    const cover = await page.locator('li.person img').first().getAttribute('src');
    const res = await page.request.get(url(cover!));
    expect(res.status()).toBe(200);
    const etag = res.headers().etag!;
    const again = await page.request.get(url(cover!), { headers: { 'if-none-match': etag } });
    expect(again.status()).toBe(304);
  });

  it('refuses a browser form without its CSRF token, and data changes through the JSON API without the bearer token', async () => {
    const amy = who.get('amy')!;
    const forged = await page.request.post(url(`/person/${amy}/rename`), {
      form: { name: 'Forged' },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    const api = await page.request.patch(url(`/identities/${amy}`), { data: { name: 'Forged' } });
    expect(api.status()).toBe(401);
    expect(readStore(data).identities.get(amy)!.name).toBeNull();
  });

  it('renames people inline', async () => {
    for (const [person, name] of Object.entries(NAMES)) {
      await personPage(person);
      await page.fill('#person-name', name);
      await page.click('form.rename button[type=submit]');
      await page.waitForURL(/done=\d+/);
      expect(await page.locator('#person-name').inputValue()).toBe(name);
      await expect.poll(() => page.locator('.notice').textContent()).toContain(`to ${name}`);
    }
    const s = readStore(data);
    for (const [person, name] of Object.entries(NAMES))
      expect(s.identities.get(who.get(person)!)!.name).toBe(name);
    await page.goto(url('/'));
    await screenshot(page, 'people');
    await page.goto(url('/?q=pen'));
    expect(await page.locator('li.person .name').allTextContents()).toEqual(['Penny']);
  });

  it('merges two people (chosen by name)', async () => {
    const s = readStore(data);
    done.merged.amyFaces = s.identities.get(who.get('amy')!)!.faces;
    done.merged.bernadetteFaces = s.identities.get(who.get('bernadette')!)!.faces;
    await personPage('amy');
    // the README's picture shows two faces selected, as a user about to split or move them out
    const boxes = page.locator('li.face input[type=checkbox]');
    await boxes.nth(4).check();
    await boxes.nth(5).check();
    await screenshot(page, 'person');
    await boxes.nth(4).uncheck();
    await boxes.nth(5).uncheck();
    await page.fill('#merge-other', 'Bernadette');
    await page.click('form.merge button[type=submit]');
    await page.waitForURL(/done=\d+/);
    expect((await shownFaces()).sort()).toEqual(
      [...done.merged.amyFaces, ...done.merged.bernadetteFaces].sort(),
    );
    const after = readStore(data);
    expect(after.identities.has(who.get('bernadette')!)).toBe(false);
    expect(after.identities.get(who.get('amy')!)!.faces.sort()).toEqual(
      [...done.merged.amyFaces, ...done.merged.bernadetteFaces].sort(),
    );
  });

  it('undoes the merge from the Undo page', async () => {
    await page.goto(url('/undo'));
    const row = page.locator('li.action[data-kind=merge]').first();
    await row.locator('button', { hasText: 'Undo' }).click();
    await page.waitForURL(/\/undo\?done=\d+/);
    await expect
      .poll(() => page.locator('li.action[data-kind=merge] .badge').first().textContent())
      .toBe('undone');
    const s = readStore(data);
    expect(s.identities.get(who.get('bernadette')!)!.name).toBe('Bernadette');
    expect(s.identities.get(who.get('bernadette')!)!.faces.sort()).toEqual(
      [...done.merged.bernadetteFaces].sort(),
    );
    expect(s.identities.get(who.get('amy')!)!.faces.sort()).toEqual([...done.merged.amyFaces].sort());
    await personPage('bernadette');
    expect((await shownFaces()).sort()).toEqual([...done.merged.bernadetteFaces].sort());
  });

  it('splits selected faces into a new person', async () => {
    await personPage('howard');
    const faces = await shownFaces();
    done.split.faces = faces.slice(-2);
    done.split.from = who.get('howard')!;
    for (const f of done.split.faces) await page.check(`li.face[data-face-id="${f}"] input[type=checkbox]`);
    await page.fill('#new-name', 'Howard (second)');
    await page.click('button[value=split]');
    await page.waitForURL(/\/person\/[^/?]+\?done=\d+/);
    done.split.identityId = new URL(page.url()).pathname.split('/').pop()!;
    expect(done.split.identityId).not.toBe(done.split.from);
    expect((await shownFaces()).sort()).toEqual([...done.split.faces].sort());
    expect(await page.locator('#person-name').inputValue()).toBe('Howard (second)');
    const s = readStore(data);
    expect(s.identities.get(done.split.identityId)!.faces.sort()).toEqual([...done.split.faces].sort());
    for (const f of done.split.faces) expect(s.identities.get(done.split.from)!.faces).not.toContain(f);
  });

  it('"not this person" takes selected faces out', async () => {
    await personPage('leonard');
    const faces = await shownFaces();
    done.movedOut.faces = faces.slice(-2);
    done.movedOut.from = who.get('leonard')!;
    for (const f of done.movedOut.faces)
      await page.check(`li.face[data-face-id="${f}"] input[type=checkbox]`);
    await page.click('button[value=move_out]');
    await page.waitForURL(/done=\d+/);
    expect(await shownFaces()).toEqual(faces.filter((f) => !done.movedOut.faces.includes(f)));
    const s = readStore(data);
    for (const f of done.movedOut.faces) expect(s.faces.get(f)!.identityId).toBeNull();
  });

  it('Review: rejects and accepts suggestions from the keyboard', async () => {
    await page.goto(url('/review'));
    const items = page.locator('li.review-item');
    expect(await items.count()).toBeGreaterThanOrEqual(2);
    for (const f of done.movedOut.faces)
      expect(await page.locator(`li.review-item[data-face-id="${f}"]`).count()).toBe(1);
    // each face shows the reason the store keeps for it (the faces taken out: removed by a user)
    const shown = await page
      .locator('li.review-item')
      .evaluateAll((els) =>
        els.map((e) => [
          e.getAttribute('data-face-id')!,
          e.querySelector('.reason')!.getAttribute('data-reason'),
        ]),
      );
    const stored = readStore(data);
    for (const [faceId, reason] of shown) {
      expect(reason).toBe(stored.faces.get(faceId)!.unassignedReason);
      expect(['low_quality', 'ambiguous', 'no_match', 'removed_by_user']).toContain(reason);
    }
    for (const f of done.movedOut.faces) {
      const item = page.locator(`li.review-item[data-face-id="${f}"]`);
      expect(await item.locator('.reason').getAttribute('data-reason')).toBe('removed_by_user');
      expect(await item.locator('.why').textContent()).toBe('Removed by a user from the person it was in');
    }
    await screenshot(page, 'review');
    // focus starts on the first face; R rejects its suggestion
    const first = items.first();
    await expect
      .poll(() => page.locator(':focus').getAttribute('data-face-id'))
      .toBe(await first.getAttribute('data-face-id'));
    done.rejected = {
      faceId: (await first.getAttribute('data-face-id'))!,
      identityId: (await first.getAttribute('data-suggested'))!,
    };
    expect(done.rejected.identityId).toMatch(/^id_/);
    await page.keyboard.press('r');
    await page.waitForURL(/\/review\?focus=0&done=\d+/);
    const rejectedItem = page.locator(`li.review-item[data-face-id="${done.rejected.faceId}"]`);
    expect(await rejectedItem.count()).toBe(1);
    expect(await rejectedItem.getAttribute('data-suggested')).not.toBe(done.rejected.identityId);
    let s = readStore(data);
    expect(s.faces.get(done.rejected.faceId)!.identityId).toBeNull();
    expect(s.corrections).toContainEqual({ kind: 'face_excluded', ...done.rejected });
    // J moves to the next face; A accepts its suggestion
    await page.keyboard.press('j');
    const focused = await page.locator(':focus').getAttribute('data-face-id');
    const second = page.locator(`li.review-item[data-face-id="${focused}"]`);
    done.accepted = { faceId: focused!, identityId: (await second.getAttribute('data-suggested'))! };
    expect(done.accepted.faceId).not.toBe(done.rejected.faceId);
    await page.keyboard.press('a');
    await page.waitForURL(/\/review\?focus=1&done=\d+/);
    expect(await page.locator(`li.review-item[data-face-id="${done.accepted.faceId}"]`).count()).toBe(0);
    s = readStore(data);
    expect(s.faces.get(done.accepted.faceId)!.identityId).toBe(done.accepted.identityId);
  });

  it('searches with a photo: each face with its best matches', async () => {
    await page.goto(url('/search'));
    await page.setInputFiles('#image', path.join(cropsDir, 'penny', '1.png'));
    await page.waitForSelector('li.search-face');
    expect(await page.locator('li.search-face').count()).toBe(1);
    const best = page.locator('li.search-face .matches a').first();
    expect(await best.getAttribute('href')).toBe(`/person/${who.get('penny')}`);
    expect(await best.textContent()).toContain('Penny');
    const s = readStore(data);
    const pennyCrops = s.identities
      .get(who.get('penny')!)!
      .faces.filter((f) => s.faces.get(f)!.uri.includes(`penny${path.sep}`));
    expect(pennyCrops.length).toBeGreaterThanOrEqual(4);
  });

  it('shows a photo with named face boxes (click → person) and erases it', async () => {
    const s = readStore(data);
    const [photoId, photo] = [...s.photos].find(([, p]) => p.uri.endsWith('bbt1.jpg'))!;
    done.erased = {
      photoId,
      uri: photo.uri,
      faces: [...s.faces].filter(([, f]) => f.photoId === photoId).map(([id]) => id),
    };
    expect(done.erased.faces.length).toBeGreaterThan(1);
    await page.goto(url(`/photo/${photoId}`));
    expect(await page.locator('figure.photo a.box').count()).toBe(done.erased.faces.length);
    const named = page.locator('figure.photo a.box:not(.none)').first();
    const faceId = (await named.getAttribute('data-face-id'))!;
    await named.click();
    await page.waitForURL(url(`/person/${s.faces.get(faceId)!.identityId}`));
    await page.goto(url(`/photo/${photoId}`));
    await page.click('a.button.danger');
    await page.waitForURL(url(`/photo/${photoId}/erase`));
    await page.click('button.danger[type=submit]');
    await page.waitForURL(url('/'));
    const after = readStore(data);
    expect(after.photos.has(photoId)).toBe(false);
    for (const f of done.erased.faces) {
      expect(after.faces.has(f)).toBe(false);
      expect(existsSync(thumbPath(data, f))).toBe(false);
    }
    expect(after.tombstones.map((t) => t.photoId)).toContain(photoId);
    await page.goto(url(`/photo/${photoId}`));
    expect(await page.locator('h1').textContent()).toBe('Not found');
    expect(readFileSync(path.join(data, 'report.html'), 'utf8')).not.toContain('bbt1.jpg');
  });

  it('every correction survives a recluster', async () => {
    await server.stop();
    const r = await runCli(['recluster', '--data', data]);
    expect(r.code, r.stderr).toBe(0);
    const s = readStore(data);
    for (const [person, name] of Object.entries(NAMES))
      expect(s.identities.get(who.get(person)!)!.name).toBe(name);
    // the merge stays undone: Bernadette's faces together, none of them in Amy
    const bern = s.faces.get(done.merged.bernadetteFaces[0]!)!.identityId;
    expect(bern).toBe(who.get('bernadette'));
    for (const f of done.merged.bernadetteFaces) {
      if (!s.faces.has(f)) continue; // a face of the erased photo
      expect(s.faces.get(f)!.identityId).toBe(bern);
    }
    expect(s.identities.get(done.split.identityId)!.faces.sort()).toEqual([...done.split.faces].sort());
    for (const f of done.movedOut.faces.filter((x) => x !== done.accepted.faceId))
      expect(s.faces.get(f)!.identityId).not.toBe(done.movedOut.from);
    expect(s.faces.get(done.accepted.faceId)!.identityId).toBe(done.accepted.identityId);
    expect(s.faces.get(done.rejected.faceId)!.identityId).not.toBe(done.rejected.identityId);
    expect(s.photos.has(done.erased.photoId)).toBe(false);
  });

  it('run does not bring an erased photo back; --include-erased does', async () => {
    const run = (...extra: string[]) =>
      runCliJson<{ photos: { erased: number; processed: number } }>([
        'run',
        examplesArg,
        '--data',
        data,
        '--json',
        '--no-progress',
        ...extra,
      ]);
    const again = await run();
    expect(again.photos.erased).toBe(1);
    expect(again.photos.processed).toBe(0);
    let s = readStore(data);
    expect(s.photos.has(done.erased.photoId)).toBe(false);
    expect([...s.faces.values()].some((f) => f.photoId === done.erased.photoId)).toBe(false);
    const back = await run('--include-erased');
    expect(back.photos.processed).toBe(1);
    s = readStore(data);
    expect(s.photos.has(done.erased.photoId)).toBe(true);
    expect(s.tombstones.some((t) => t.photoId === done.erased.photoId)).toBe(false);
  });

  it('report.html stays a readable offline snapshot: names, photos linked to the originals, reasons, the app', () => {
    const html = readFileSync(path.join(data, 'report.html'), 'utf8');
    for (const name of Object.values(NAMES)) expect(html).toContain(`<strong>${name}</strong>`);
    expect(html).toMatch(/<a href="file:\/\/[^"]+bbt1\.jpg"[^>]*>bbt1\.jpg<\/a>/);
    expect(html).toContain('facepipe serve --data');
    const s = readStore(data);
    const unassigned = [...s.faces].filter(([, f]) => f.kept && f.identityId === null);
    // each with the reason the store keeps for it, in words
    for (const [faceId, f] of unassigned) {
      expect(f.unassignedReason).not.toBeNull();
      expect(html).toContain(`data-unassigned-face="${faceId}" data-reason="${f.unassignedReason}"`);
      expect(html).toContain(unassignedReasonText(f.unassignedReason));
    }
    expect(html).not.toMatch(/<(script|link)\b[^>]*(src|href)="https?:/);
  });

  it('run --open serves the people view on loopback and prints its address', async () => {
    const child = spawn(
      process.execPath,
      ['bin/facepipe.mjs', 'run', examplesArg, '--data', data, '--open'],
      {
        cwd: repoRoot,
        env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn', PATH: '' }, // no browser opener: the URL is what counts
      },
    );
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /people view: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on('close', (code) => reject(new Error(`run --open exited ${code}: ${out}`)));
      });
      expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(address + '/');
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('<h1>People</h1>');
    } finally {
      child.kill('SIGTERM');
      await new Promise((done) => (child.exitCode !== null ? done(null) : child.once('close', done)));
    }
  });
});
