import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** the sample photos the quick start runs on */
export const examplesDir = path.join(repoRoot, 'examples');
/** test-only fixtures: MagFace toy images and reference outputs */
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
/** The examples as a path relative to the repo root, the way a user types it. */
export const examplesArg = path.relative(repoRoot, examplesDir);
export const cropsDir = path.join(examplesDir, 'faceapi-crops');
export const CROP_IDENTITIES = [
  'amy',
  'bernadette',
  'howard',
  'leonard',
  'penny',
  'raj',
  'sheldon',
  'stuart',
];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cliEnv = (extra: Record<string, string> = {}) => ({
  ...process.env,
  FACEPIPE_LOG_LEVEL: 'warn',
  ...extra,
});

/** Runs `node bin/facepipe.mjs ...args` from the repo root and waits for it. */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; onStderr?: (chunk: string) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/facepipe.mjs', ...args], {
      cwd: repoRoot,
      env: cliEnv(opts.env),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(d.toString());
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `runCli` that must succeed; returns the JSON it printed. */
export async function runCliJson<T = Record<string, unknown>>(
  args: string[],
  env?: Record<string, string>,
): Promise<T> {
  const r = await runCli(args, { env });
  if (r.code !== 0) throw new Error(`facepipe ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-4000)}`);
  return JSON.parse(r.stdout) as T;
}

export interface ServeProcess {
  url: string;
  /** the port it bound (from `url`) */
  port: number;
  child: ChildProcess;
  /** what it wrote on stderr so far */
  stderr(): string;
  /** SIGTERM; resolves with the exit code (null when a signal ended it) */
  stop(): Promise<number | null>;
}

/** Starts `facepipe serve` on a free port and resolves once it prints its address. */
export function startServe(args: string[]): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/facepipe.mjs', 'serve', '--port', '0', ...args], {
      cwd: repoRoot,
      env: cliEnv(),
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) =>
      reject(new Error(`serve exited ${code} before listening\n${stderr.slice(-4000)}`)),
    );
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      const { listening } = JSON.parse(line) as { listening: string };
      child.removeAllListeners('close');
      resolve({
        url: listening,
        port: Number(new URL(listening).port),
        child,
        stderr: () => stderr,
        stop: () =>
          new Promise<number | null>((done) => {
            if (child.exitCode !== null) return done(child.exitCode);
            child.once('close', (code) => done(code));
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

/** Parses `photo,face,identity,width,height,reason` CSV (fields may be quoted). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  for (const line of text.split('\n').filter((l) => l.length > 0)) {
    const fields: string[] = [];
    let i = 0;
    while (i <= line.length) {
      if (line[i] === '"') {
        let v = '';
        i++;
        while (i < line.length) {
          if (line[i] === '"' && line[i + 1] === '"') {
            v += '"';
            i += 2;
          } else if (line[i] === '"') break;
          else v += line[i++];
        }
        fields.push(v);
        i += 2;
      } else {
        const end = line.indexOf(',', i);
        const stop = end === -1 ? line.length : end;
        fields.push(line.slice(i, stop));
        i = stop + 1;
      }
    }
    rows.push(fields);
  }
  return rows;
}

/** The identity folder a crop path belongs to (`.../faceapi-crops/<identity>/<n>.png`), else undefined. */
export function cropIdentity(photo: string): string | undefined {
  const m = /faceapi-crops[\\/]([a-z]+)[\\/]\d+\.png$/.exec(photo);
  return m?.[1];
}

/** Raw 192-d embeddings of the 40 crops measured by the maintainers, by `<identity>/<n>`. */
export function referenceCropEmbeddings(): Map<string, number[]> {
  const ref = JSON.parse(
    readFileSync(path.join(fixturesDir, 'reference/mobilefacenet-crops.json'), 'utf8'),
  ) as {
    faces: {
      file?: string;
      path?: string;
      identity?: string;
      embedding?: number[];
      rawEmbedding?: number[];
    }[];
  };
  const out = new Map<string, number[]>();
  for (const f of ref.faces) {
    const file = f.file ?? f.path ?? '';
    const m = /([a-z]+)\/(\d+)\.png$/.exec(file);
    const emb = f.embedding ?? f.rawEmbedding;
    if (m && emb) out.set(`${m[1]}/${m[2]}`, emb);
  }
  return out;
}
