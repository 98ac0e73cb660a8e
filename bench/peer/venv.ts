import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The benchmarks' own Python environment (bench/.venv, git-ignored) with the peer's packages from
 * PyPI, created on first use. Pinned so that the peer measured is the same from run to run.
 */
export const PEER_PACKAGES = [
  'opencv-python-headless==5.0.0.93',
  'onnxruntime==1.32.0',
  'numpy==2.4.6',
  // ICC profiles (ImageCms, littlecms): OpenCV decodes without applying them
  'pillow==13.0.0',
  'hnswlib==0.8.0',
];

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const venvDir = path.join(benchDir, '.venv');
export const venvPython = path.join(venvDir, 'bin', 'python');
export const peerDir = path.join(benchDir, 'peer');

export function ensurePeerVenv(): string {
  const marker = path.join(venvDir, '.facepipe-peer-' + PEER_PACKAGES.join('_').replace(/[^\w.=-]/g, ''));
  if (existsSync(venvPython) && existsSync(marker)) return venvPython;
  process.stderr.write(`bench: creating ${venvDir} with ${PEER_PACKAGES.join(' ')}\n`);
  if (!existsSync(venvPython)) execFileSync('python3', ['-m', 'venv', venvDir], { stdio: 'inherit' });
  execFileSync(venvPython, ['-m', 'pip', 'install', '-q', ...PEER_PACKAGES], { stdio: 'inherit' });
  writeFileSync(marker, '');
  return venvPython;
}

export interface ProcessCost {
  rc: number;
  /** whole-process CPU seconds, all threads */
  user: number;
  sys: number;
  wall: number;
  maxRssKiB: number;
}

/**
 * Runs a command under bench/peer/measure.py (getrusage of the child: user + system CPU of all
 * its threads, peak RSS) with its stdout written to `stdoutFile`; both sides are measured the
 * same way.
 */
export function measured(cmd: string[], stdoutFile: string, costFile: string, cwd: string): ProcessCost {
  execFileSync(
    'bash',
    [
      '-c',
      `exec "$@" > "${stdoutFile}"`,
      'measure',
      venvPython,
      path.join(peerDir, 'measure.py'),
      costFile,
      '--',
      ...cmd,
    ],
    {
      cwd,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, FACEPIPE_LOG_LEVEL: 'warn' },
    },
  );
  return JSON.parse(readFileSync(costFile, 'utf8')) as ProcessCost;
}
