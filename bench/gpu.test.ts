import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'gpu.sh');

describe('GPU benchmark script', () => {
  it('says there is no GPU and does nothing (no install, no figures) where there is none', () => {
    const out = execFileSync('bash', [script], {
      encoding: 'utf8',
      env: { ...process.env, NVIDIA_SMI: '/nonexistent/nvidia-smi' },
    });
    expect(out.trim()).toBe(
      'bench gpu: no NVIDIA GPU on this machine (/nonexistent/nvidia-smi lists none): nothing installed, nothing measured',
    );
  });
});
