import { existsSync, statSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { IMAGE_EXTENSIONS } from '../pipeline/imageFiles.ts';
import { locateModelsDir } from '../pipeline/models.ts';
import type { FacepipeConfig } from '../app/config.ts';
import { FacepipeError } from '../core/errors.ts';

/**
 * Option parsers shared by every command, and the error a command throws for a mistake the user
 * can fix. Commander turns an `InvalidArgumentError` from a parser into one line naming the option
 * (`error: option '--port <port>' argument '99999' is invalid. expected an integer in 0..65535`),
 * and `cli/main.ts` prints a `UsageError` as one line; both exit with code 2.
 */

/** A usage or environment mistake: one line on stderr saying what is wrong and what to do, exit 2. */
export class UsageError extends FacepipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE', message, { cause: options?.cause });
  }
}

/** An integer in min..max, for an option parser (`flag` only names it in environment values). */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER
          ? `expected an integer ≥ ${min}`
          : `expected an integer in ${min}..${max}`,
      );
    }
    return n;
  };
}

export const positiveInt = integerIn(1, Number.MAX_SAFE_INTEGER);
export const nonNegativeInt = integerIn(0, Number.MAX_SAFE_INTEGER);

export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

/** `dir` must be an existing folder; `role` says what it is for, in the one-line error. */
export function requireFolder(dir: string, role: string): void {
  if (!existsSync(dir)) throw new UsageError(`no such folder: ${dir} (${role})`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${dir} is a file, not a folder (${role})`);
}

/** A data dir a command reads (serve, recluster, status, index): it must exist and be a folder. */
export function requireDataDir(dir: string): void {
  if (!existsSync(dir)) {
    throw new UsageError(
      `no data folder at ${dir}: pass --data DIR (the folder \`facepipe run\` wrote), or run \`facepipe run <photos> --data ${dir}\` first`,
    );
  }
  if (!statSync(dir).isDirectory()) throw new UsageError(`--data ${dir} is a file, not a data folder`);
}

/** What `run` and `analyze` say when a folder holds no photo (they carry on and exit 0). */
export function noImagesLine(command: string, where: string): string {
  return `facepipe ${command}: no images found in ${where} (looked for ${[...IMAGE_EXTENSIONS].join(' ')} files)\n`;
}

/**
 * The models folder a command uses: --models, then FACEPIPE_MODELS (from the configuration), then
 * the bundled models/. Resolved here, at the edge, so a wrong folder is reported with where it came from.
 */
export function modelsDirFrom(option: string | undefined, config: Pick<FacepipeConfig, 'modelsDir'>): string {
  return locateModelsDir(option, config.modelsDir).dir;
}
