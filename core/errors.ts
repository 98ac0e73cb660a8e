/**
 * The one error root. Every error facepipe raises on purpose is a FacepipeError: a stable,
 * machine-readable `code` (dead letters, API bodies, exit codes and tests read it, never the
 * message), whether another try may succeed (`retriable`, read by core/retry.ts), and the `cause`
 * it wraps. The subclasses of each room only fix the code set and add their own fields.
 */
export interface FacepipeErrorOptions {
  retriable?: boolean;
  cause?: unknown;
}

export class FacepipeError extends Error {
  readonly retriable: boolean;

  constructor(
    readonly code: string,
    message: string,
    options: FacepipeErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
  }
}

/** True for a FacepipeError that says another try may succeed. */
export function isRetriable(err: unknown): boolean {
  return err instanceof FacepipeError && err.retriable;
}
