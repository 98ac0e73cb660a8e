import cliProgress from 'cli-progress';
import type { RunProgress } from '../app/run.ts';

/**
 * The bar a command draws on stderr while the index is rebuilt from the store (the data layer only
 * reports how far it is: `onRebuildProgress`). Only on a terminal; undefined otherwise.
 */
export function rebuildProgressBar(
  enabled = process.stderr.isTTY === true,
): ((done: number, total: number) => void) | undefined {
  if (!enabled) return undefined;
  let bar: cliProgress.SingleBar | undefined;
  return (done, total) => {
    if (!bar) {
      bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: 'rebuilding index [{bar}] {value}/{total} faces {eta_formatted}' },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, done);
    } else bar.update(done);
    if (done >= total) {
      bar.stop();
      bar = undefined;
    }
  };
}

/** The photos bar of `facepipe run` (photos/s, faces/s), from the job's progress reports. */
export function runProgressBar(
  enabled = process.stderr.isTTY === true,
): ((p: RunProgress) => void) | undefined {
  if (!enabled) return undefined;
  let bar: cliProgress.SingleBar | undefined;
  return (p) => {
    const rates = { pps: p.photosPerSecond.toFixed(1), fps: p.facesPerSecond.toFixed(1) };
    if (!bar) {
      bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: 'photos {bar} {value}/{total} | {pps} photos/s | {fps} faces/s | eta {eta_formatted}',
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.total, 0, rates);
    }
    bar.update(p.done, rates);
    if (p.done >= p.total) bar.stop();
  };
}
