import cliProgress from 'cli-progress';

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
