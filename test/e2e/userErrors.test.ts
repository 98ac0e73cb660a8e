import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { examplesDir, runCli, type CliResult } from './helpers.ts';

// A user's mistake, as a user makes it: a real `facepipe` process with the default log level.
// Each must end in exactly one line on stderr saying what is wrong, exit code 2, no stack trace.
const asUser = { FACEPIPE_LOG_LEVEL: 'info' };

let tmp: string;
let emptyFolder: string;
let aFile: string;
let dataDir: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-usererrors-'));
  emptyFolder = path.join(tmp, 'empty');
  mkdirSync(emptyFolder);
  aFile = path.join(tmp, 'photo.jpg');
  writeFileSync(aFile, 'not really a photo');
  // a real data dir (a run over an empty folder creates the store) for the port-in-use case
  dataDir = path.join(tmp, 'data');
  const made = await runCli(['run', emptyFolder, '--data', dataDir, '--no-recluster']);
  expect(made.code).toBe(0);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectOneLineMistake(r: CliResult, ...fragments: (string | RegExp)[]): void {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack frame
  expect(r.code, r.stderr).toBe(2);
  for (const f of fragments) expect(lines[0]).toMatch(f);
}

describe('a usage or environment mistake is one readable line and exit code 2', () => {
  it('a missing photo folder', async () => {
    const missing = path.join(tmp, 'no-such-folder');
    expectOneLineMistake(await runCli(['run', missing], { env: asUser }), 'no such folder', missing);
  });

  it('a file given where a folder is expected', async () => {
    expectOneLineMistake(await runCli(['run', aFile], { env: asUser }), 'is a file, not a folder', 'analyze');
    expectOneLineMistake(
      await runCli(['serve', '--data', aFile], { env: asUser }),
      `--data ${aFile} is a file`,
    );
  });

  it('no models found, by option and by environment', async () => {
    const nowhere = path.join(tmp, 'no-models');
    expectOneLineMistake(
      await runCli(['run', examplesDir, '--models', nowhere, '--data', path.join(tmp, 'd1')], {
        env: asUser,
      }),
      'models folder not found',
      '--models',
    );
    expectOneLineMistake(
      await runCli(['analyze', examplesDir], { env: { ...asUser, FACEPIPE_MODELS: nowhere } }),
      'models folder not found',
      'FACEPIPE_MODELS',
    );
  });

  it('a bad number', async () => {
    expectOneLineMistake(
      await runCli(['run', examplesDir, '--concurrency', '0'], { env: asUser }),
      "'--concurrency <n>' argument '0' is invalid",
    );
    expectOneLineMistake(
      await runCli(['serve', '--data', dataDir, '--port', '99999'], { env: asUser }),
      "'--port <port>' argument '99999' is invalid",
      '0..65535',
    );
    expectOneLineMistake(
      await runCli(['serve', '--data', dataDir], { env: { ...asUser, FACEPIPE_PORT: 'eighty' } }),
      'FACEPIPE_PORT=eighty is invalid',
    );
  });

  it('a port already in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['serve', '--data', dataDir, '--port', String(port)], {
        env: { ...asUser, FACEPIPE_LOG_LEVEL: 'warn' },
      });
      expectOneLineMistake(r, `127.0.0.1:${port} is already in use`, '--port');
    } finally {
      blocker.close();
    }
  });

  it('a missing data dir, and one with no store', async () => {
    const missing = path.join(tmp, 'no-data');
    const commands = [['serve'], ['recluster'], ['status'], ['index', 'verify']];
    // independent processes: run them side by side
    const results = await Promise.all(
      commands.flatMap((command) => [
        runCli([...command, '--data', missing], { env: asUser }),
        runCli([...command, '--data', emptyFolder], { env: asUser }),
      ]),
    );
    for (let i = 0; i < commands.length; i++) {
      expectOneLineMistake(results[2 * i]!, `no data folder at ${missing}`);
      expectOneLineMistake(results[2 * i + 1]!, `no facepipe store in ${emptyFolder}`, 'facepipe run');
    }
  });

  it('status uses the default data dir of the other commands and says when there is no store there', async () => {
    const r = await runCli(['status'], { env: { ...asUser, FACEPIPE_DATA: emptyFolder } });
    expectOneLineMistake(r, `no facepipe store in ${emptyFolder}`);
    const ok = await runCli(['status', '--json'], { env: { ...asUser, FACEPIPE_DATA: dataDir } });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ photos: 0, faces: 0 });
  });

  it('the stack trace only with FACEPIPE_LOG_LEVEL=debug', async () => {
    const r = await runCli(['status', '--data', emptyFolder], { env: { FACEPIPE_LOG_LEVEL: 'debug' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});

describe('a folder with no images', () => {
  it('run and analyze say so and exit alike', async () => {
    const run = await runCli(['run', emptyFolder, '--data', path.join(tmp, 'd2'), '--no-recluster']);
    const analyze = await runCli(['analyze', emptyFolder]);
    for (const [name, r] of [
      ['run', run],
      ['analyze', analyze],
    ] as const) {
      expect(r.stderr).toContain(`facepipe ${name}: no images found in ${emptyFolder}`);
      expect(r.code).toBe(0);
    }
  });
});
