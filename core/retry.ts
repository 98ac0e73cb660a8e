/**
 * The one retry helper (the shape of kafkajs's retrier): up to `attempts` tries, waiting
 * `initialMs · factor^(n-1)` between them (at most `maxMs`), each wait spread by ±`jitter` so
 * that many clients failing together do not retry together. Only errors that say so are retried:
 * `retriable` on a FacepipeError (core/errors.ts), or whatever `shouldRetry` decides.
 */
import { isRetriable } from './errors.ts';

export interface RetryOptions {
  /** tries in all, the first included (>= 1) */
  attempts: number;
  /** first wait, ms */
  initialMs: number;
  /** longest wait, ms (default 30 s) */
  maxMs?: number;
  /** growth of the wait per try (default 2) */
  factor?: number;
  /** share of each wait drawn at random around it, 0..1 (default 0.2) */
  jitter?: number;
  shouldRetry?: (err: unknown) => boolean;
  /** called before each wait */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
  /** random source in [0, 1) (tests pass a seeded one) */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** The wait after try `attempt` (1-based). */
export function backoffMs(attempt: number, o: RetryOptions): number {
  const base = Math.min(o.maxMs ?? 30_000, o.initialMs * (o.factor ?? 2) ** (attempt - 1));
  const jitter = o.jitter ?? 0.2;
  const r = (o.random ?? Math.random)();
  return Math.max(0, Math.round(base * (1 - jitter + 2 * jitter * r)));
}

/** Runs `fn` until it succeeds, fails with an error not worth retrying, or runs out of tries. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const shouldRetry = o.shouldRetry ?? isRetriable;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= o.attempts || !shouldRetry(err)) throw err;
      const wait = backoffMs(attempt, o);
      o.onRetry?.(err, attempt, wait);
      await sleep(wait);
    }
  }
}
