/**
 * `facepipe run` under faults, each as a real process: killed between its last photo and its
 * recluster, a sparse 2 GB "photo", an unreadable sub-folder (as an unprivileged user, since root
 * reads everything), symlinks and loops, an empty store file, a full disk (a small tmpfs). After
 * each the process is refused in one line or carries on, the store is intact and nothing
 * accepted is lost.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RECLUSTER_OWED, type RunSummary } from '../../app/run.ts';
import { FaceStore, STORE_FILE } from '../../indexers/store.ts';
import { cropsDir, repoRoot, runCli, runCliJson } from './helpers.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-faults-'));
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m]);
  rmSync(tmp, { recursive: true, force: true });
});

/** `people` × 5 crops copied into a fresh folder. */
function photoFolder(name: string, people: string[]): string {
  const dir = path.join(tmp, name);
  for (const p of people) cpSync(path.join(cropsDir, p), path.join(dir, p), { recursive: true });
  return dir;
}

function readOnlyStore<T>(dataDir: string, fn: (s: FaceStore) => T): T {
  const store = new FaceStore(path.join(dataDir, STORE_FILE), { create: false, readonly: true });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/** The grouping as a set of face-id sets (identity ids are names, the grouping is the result). */
function grouping(dataDir: string): string[][] {
  return readOnlyStore(dataDir, (s) => {
    const groups = new Map<string, string[]>();
    for (const f of s.faces.listFaces({ kept: true }))
      if (f.identityId) groups.set(f.identityId, [...(groups.get(f.identityId) ?? []), f.faceId]);
    return [...groups.values()].map((g) => g.sort()).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
  });
}

function deadLetters(
  dataDir: string,
): { photoId: string | null; uri: string; stage: string; code: string }[] {
  const file = path.join(dataDir, 'dead-letter.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/** stderr lines that are not JSON log records. */
const plainLines = (stderr: string): string[] =>
  stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));

describe('facepipe run under faults', () => {
  it('killed after its last photo and before the recluster: the next run does the recluster', async () => {
    const photos = photoFolder('owed', ['amy', 'penny', 'raj', 'sheldon']);
    const clean = path.join(tmp, 'owed-clean');
    const killed = path.join(tmp, 'owed-killed');
    await runCliJson<RunSummary>(['run', photos, '--data', clean, '--json']);

    // FACEPIPE_PAUSE_AT stops the process exactly there; it is SIGKILLed while stopped
    const child = spawn(process.execPath, ['bin/facepipe.mjs', 'run', photos, '--data', killed, '--json'], {
      cwd: repoRoot,
      env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn', FACEPIPE_PAUSE_AT: 'before-recluster' },
    });
    const exited = new Promise<string | null>((resolve) => child.on('exit', (_, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('paused at before-recluster')) resolve();
      });
      child.on('exit', () => reject(new Error(`run exited before the pause point\n${err}`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(readOnlyStore(killed, (s) => s.getMeta(`note:${RECLUSTER_OWED}`))).toBeDefined();
    expect(readOnlyStore(killed, (s) => s.counts().photos)).toBe(20);

    const rerun = await runCliJson<RunSummary>(['run', photos, '--data', killed, '--json']);
    expect(rerun.photos).toMatchObject({ found: 20, processed: 0, skipped: 20 });
    expect(rerun.recluster.ran).toBe(true);
    expect(grouping(killed)).toEqual(grouping(clean));
    expect(readOnlyStore(killed, (s) => s.getMeta(`note:${RECLUSTER_OWED}`))).toBeUndefined();
    // and once done it is not owed again
    const third = await runCliJson<RunSummary>(['run', photos, '--data', killed, '--json']);
    expect(third.recluster.ran).toBe(false);
  }, 300_000);

  it('a sparse 2 GB file named .jpg is FILE_TOO_LARGE without being read (the process stays small)', () => {
    const photos = photoFolder('huge', ['amy']);
    const huge = path.join(photos, 'huge.jpg');
    execFileSync('truncate', ['-s', '2000000000', huge]);
    const data = path.join(tmp, 'huge-data');
    const rss = path.join(tmp, 'huge-rss.txt');
    // the child's peak resident memory, as the kernel accounted it (getrusage of the waited child)
    const measure =
      'import resource, subprocess, sys\n' +
      'r = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE)\n' +
      'open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n' +
      'sys.stdout.write(r.stdout.decode()); sys.exit(r.returncode)\n';
    const out = execFileSync(
      'python3',
      ['-c', measure, rss, process.execPath, 'bin/facepipe.mjs', 'run', photos, '--data', data, '--json'],
      { cwd: repoRoot, env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' }, encoding: 'utf8' },
    );
    const summary = JSON.parse(out) as RunSummary;
    expect(summary.photos).toMatchObject({ found: 6, processed: 5, failed: 1 });
    const letters = deadLetters(data);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ uri: huge, code: 'FILE_TOO_LARGE' });
    const peakKiB = Number(readFileSync(rss, 'utf8'));
    // models and runtime take a few hundred MB; reading the file would add its 2 GB
    expect(peakKiB).toBeGreaterThan(0);
    expect(peakKiB).toBeLessThan(1_200_000);
  }, 300_000);

  it('an unreadable sub-folder (run without the power to bypass permissions) is recorded and skipped; links are followed once, loops and dead links said', async () => {
    const root = path.join(tmp, 'perm');
    const photos = photoFolder(path.join('perm', 'photos'), ['amy']);
    const locked = path.join(photos, 'locked');
    mkdirSync(locked);
    cpSync(path.join(cropsDir, 'penny', '1.png'), path.join(locked, 'p.png'));
    const outside = path.join(root, 'outside');
    mkdirSync(outside);
    cpSync(path.join(cropsDir, 'raj', '1.png'), path.join(outside, 'raj.png'));
    symlinkSync(path.join(outside, 'raj.png'), path.join(photos, 'linked.png')); // followed
    symlinkSync(outside, path.join(photos, 'outside-folder')); // followed, its photo already taken
    symlinkSync(photos, path.join(photos, 'amy', 'loop')); // a loop
    symlinkSync(path.join(root, 'gone.png'), path.join(photos, 'broken.png')); // to nothing
    const data = path.join(root, 'data');
    mkdirSync(data);
    chmodSync(locked, 0o000);
    // The process runs as the test's own user but without the capabilities that let root ignore
    // file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): it meets a chmod-000 folder as an
    // unprivileged user does, while the checkout itself stays readable wherever it was cloned
    // (a user `nobody` could not reach a checkout under a 0700 home or temp folder).
    const unprivileged = ['--bounding-set=-dac_override,-dac_read_search', '--'];
    const asUnprivileged = (args: string[]) =>
      spawnSync('setpriv', [...unprivileged, process.execPath, 'bin/facepipe.mjs', ...args], {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' },
      });
    // the premise: such a process cannot list the folder (a plain root one could)
    expect(spawnSync('setpriv', [...unprivileged, 'ls', locked]).status).not.toBe(0);
    expect(spawnSync('ls', [locked]).status).toBe(0);

    const run = asUnprivileged(['run', photos, '--data', data, '--json']);
    expect(run.status, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as RunSummary;
    expect(summary.photos).toMatchObject({ found: 6, processed: 6, failed: 0 }); // 5 crops + the link
    const skipped = Object.fromEntries(summary.skippedPaths.map((s) => [s.path, s.code]));
    expect(skipped).toEqual({
      [locked]: 'UNREADABLE_FOLDER',
      [path.join(photos, 'amy', 'loop')]: 'LINK_LOOP',
      [path.join(photos, 'broken.png')]: 'BROKEN_LINK',
      [path.join(photos, 'outside-folder', 'raj.png')]: 'DUPLICATE_LINK',
    });
    const walkLetters = deadLetters(data).filter((d) => d.stage === 'walk');
    expect(walkLetters.map((d) => [d.uri, d.code]).sort()).toEqual(
      Object.entries(skipped).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    );
    expect(readOnlyStore(data, (s) => s.counts().photos)).toBe(6);

    // analyze: the same walk, said on stderr, the photos analysed
    const analyze = asUnprivileged(['analyze', photos]);
    expect(analyze.status, analyze.stderr).toBe(0);
    expect(
      plainLines(analyze.stderr).some((l) => l.includes(locked) && l.includes('UNREADABLE_FOLDER')),
    ).toBe(true);
    const photosSeen = new Set(
      analyze.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { photo: string }).photo),
    );
    expect(photosSeen.size).toBe(6);
    chmodSync(locked, 0o755);
  }, 300_000);

  it('an empty (0-byte) store is refused in one line by every command, and left as it was', async () => {
    const photos = photoFolder('empty-store', ['amy']);
    const data = path.join(tmp, 'empty-store-data');
    mkdirSync(data);
    writeFileSync(path.join(data, STORE_FILE), '');
    const commands = [
      ['run', photos, '--data', data],
      ['serve', '--data', data, '--port', '0'],
      ['recluster', '--data', data],
      ['status', '--data', data],
      ['index', 'verify', '--data', data],
    ];
    const results = await Promise.all(commands.map((c) => runCli(c)));
    results.forEach((r, i) => {
      const lines = plainLines(r.stderr);
      expect(lines, `${commands[i]!.join(' ')}: ${r.stderr}`).toHaveLength(1);
      expect(lines[0]).toContain(path.join(data, STORE_FILE));
      expect(lines[0]).toMatch(/empty/);
      expect(r.code).toBe(2);
    });
    expect(statSync(path.join(data, STORE_FILE)).size).toBe(0);
    expect(readdirSync(data)).toEqual([STORE_FILE]);
  }, 300_000);

  it('status stops counting a dead letter once its photo succeeds', async () => {
    const photos = photoFolder('status', ['amy']);
    const data = path.join(tmp, 'status-data');
    const photo = path.join(photos, 'amy', '6.png');
    writeFileSync(photo, 'not a png');
    await runCliJson<RunSummary>(['run', photos, '--data', data, '--json']);
    const status = async () => JSON.parse((await runCli(['status', '--data', data, '--json'])).stdout);
    expect(await status()).toMatchObject({ deadLetters: 1, deadLettersByCode: { NOT_AN_IMAGE: 1 } });
    // the same photo, fixed: the re-run takes it, and status no longer counts its old letter
    cpSync(path.join(cropsDir, 'penny', '1.png'), photo);
    const rerun = await runCliJson<RunSummary>(['run', photos, '--data', data, '--json']);
    expect(rerun.photos).toMatchObject({ processed: 1, failed: 0 });
    expect(deadLetters(data)).toHaveLength(1); // the record stays: it is a log
    expect(await status()).toMatchObject({ photos: 6, deadLetters: 0, deadLettersByCode: {} });
  }, 300_000);

  it('a full disk (small tmpfs): "disk full at PATH" in one line, no temp files, store and dead letters in step, nothing lost', async () => {
    const photos = photoFolder('full', ['amy', 'penny', 'raj', 'sheldon']);
    // a photo that fails on its own merit, first in the walk: its record must survive with the store's
    writeFileSync(
      path.join(photos, 'amy', '0-corrupt.png'),
      readFileSync(path.join(photos, 'amy', '1.png')).subarray(0, 300),
    );
    const disk = path.join(tmp, 'disk');
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', disk]);
    mounts.push(disk);
    const data = path.join(disk, 'data');
    // leave a little room: enough to open the store and take a few photos, not all twenty
    const freeKiB = Number(
      execFileSync('df', ['-k', '--output=avail', disk], { encoding: 'utf8' }).split('\n')[1],
    );
    writeFileSync(path.join(disk, 'filler'), Buffer.alloc((freeKiB - 200) * 1024));

    const full = await runCli(['run', photos, '--data', data, '--json']);
    expect(full.code).toBe(2);
    const lines = plainLines(full.stderr);
    expect(lines, full.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^facepipe: disk full at ${data}`));
    expect(full.stderr).not.toMatch(/^\s+at /m);
    const leftovers = readdirSync(data, { recursive: true, encoding: 'utf8' }).filter((f) => {
      const st = statSync(path.join(data, f));
      return st.isFile() && (f.endsWith('.tmp') || st.size === 0);
    });
    expect(leftovers).toEqual([]);

    // room again: the store is whole, its failed photos are exactly the dead letters
    rmSync(path.join(disk, 'filler'));
    const verify = await runCli(['index', 'verify', '--data', data, '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, storeIntegrity: 'ok' });
    const failedInStore = () =>
      readOnlyStore(data, (s) =>
        s.photos
          .listPhotos()
          .filter((p) => p.status === 'failed')
          .map((p) => p.photoId)
          .sort(),
      );
    const lettered = () => [...new Set(deadLetters(data).map((d) => d.photoId))].sort();
    expect(lettered()).toEqual(failedInStore());

    // and the next run takes every photo the full disk stopped: nothing is lost
    const rerun = await runCliJson<RunSummary>(['run', photos, '--data', data, '--json']);
    expect(rerun.store.photos).toBe(21);
    expect(readOnlyStore(data, (s) => s.photos.listPhotos().filter((p) => p.status === 'done').length)).toBe(
      20,
    );
    expect(failedInStore()).toHaveLength(1);
    expect(lettered()).toEqual(failedInStore());
  }, 300_000);
});
