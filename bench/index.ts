import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

// `npm run bench [-- --full] [-- --only a,b]`: runs each area's benchmark and writes its figures to
// bench/results/<area>.json. Figures are medians measured in one run on this machine.
// (gpu is not among them: bench/gpu.sh runs it, on a machine with a GPU, after installing the CUDA binaries)
const AREAS = [
  'pipeline',
  'indexers',
  'clustering',
  'lookup',
  'streaming',
  'peer',
  'throughput',
  'people',
  'serve',
  'realphotos',
];
const here = path.dirname(fileURLToPath(import.meta.url));

async function runAll(): Promise<void> {
  const args = process.argv.slice(2);
  const full = args.includes('--full');
  const onlyArg = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const only = onlyArg ? onlyArg.split(',') : AREAS;
  mkdirSync(path.join(here, 'results'), { recursive: true });
  for (const area of only) {
    const file = path.join(here, `${area}.ts`);
    if (!existsSync(file)) continue;
    const mod = (await import(file)) as { run: (o: { full: boolean }) => Promise<Record<string, unknown>> };
    const started = Date.now();
    process.stderr.write(`bench ${area}: running\n`);
    const figures = await mod.run({ full });
    if (figures.skipped) {
      // e.g. the GPU benchmark on a machine without one: the recorded figures stay as they are
      process.stderr.write(`bench ${area}: skipped: ${String(figures.reason)}\n`);
      continue;
    }
    const result = {
      area,
      full,
      date: new Date().toISOString(),
      seconds: (Date.now() - started) / 1000,
      machine: machineFacts(),
      figures,
    };
    writeFileSync(path.join(here, 'results', `${area}.json`), JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  }
}

function machineFacts(): Record<string, unknown> {
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    platform: process.platform,
    // other work on the machine when the area finished (1, 5, 15 min): walls under load are inflated
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

await runAll();
