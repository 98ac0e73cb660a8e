import { describe, expect, it } from 'vitest';
import { FacepipeError } from './errors.ts';
import { backoffMs, retry } from './retry.ts';

const noSleep = (waits: number[]) => (ms: number) => {
  waits.push(ms);
  return Promise.resolve();
};

describe('retry', () => {
  it('retries a retriable error with growing, jittered waits, then succeeds', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await retry(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw new FacepipeError('UNREACHABLE', 'down', { retriable: true });
        return 'ok';
      },
      { attempts: 5, initialMs: 100, jitter: 0.5, random: () => 1, sleep: noSleep(waits) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(waits).toEqual([150, 300]); // 100·2^(n-1), +50% at the top of the jitter
  });

  it('does not retry what says it is not worth it, and gives up after the last try', async () => {
    const waits: number[] = [];
    const permanent = new FacepipeError('NOT_AN_IMAGE', 'text');
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw permanent;
        },
        { attempts: 5, initialMs: 10, sleep: noSleep(waits) },
      ),
    ).rejects.toBe(permanent);
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new FacepipeError('TIMEOUT', 'slow', { retriable: true });
        },
        { attempts: 3, initialMs: 10, sleep: noSleep(waits) },
      ),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(calls).toBe(3);
    // a plain Error carries no `retriable`: not retried
    await expect(
      retry(async () => Promise.reject(new Error('bug')), { attempts: 3, initialMs: 1 }),
    ).rejects.toThrow('bug');
  });

  it('keeps waits within the jitter band and under maxMs', () => {
    const o = { attempts: 10, initialMs: 1000, maxMs: 4000, jitter: 0.2 };
    expect(backoffMs(1, { ...o, random: () => 0 })).toBe(800);
    expect(backoffMs(1, { ...o, random: () => 0.5 })).toBe(1000);
    expect(backoffMs(6, { ...o, random: () => 0.5 })).toBe(4000);
  });
});
