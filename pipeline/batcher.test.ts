import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';

function recordingBatcher(batchSize: number, delayMs: number, concurrency: number) {
  const batches: number[][] = [];
  const batcher = new Batcher<number, number>(
    async (items) => {
      batches.push(items);
      await new Promise((r) => setTimeout(r, 5));
      return items.map((i) => i * 2);
    },
    { batchSize, delayMs, concurrency },
  );
  return { batcher, batches };
}

describe('Batcher', () => {
  it('fills batches up to the batch size from many callers and returns each caller its result', async () => {
    const { batcher, batches } = recordingBatcher(4, 50, 1);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.submit(i)));
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i * 2));
    expect(batches.slice(0, 2)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(batches[2]).toEqual([8, 9]); // the remainder goes at the deadline
  });

  it('sends a partial batch at the deadline', async () => {
    const { batcher, batches } = recordingBatcher(32, 5, 1);
    expect(await batcher.submit(7)).toBe(14);
    expect(batches).toEqual([[7]]);
  });

  it('rejects every caller of a failed batch', async () => {
    const batcher = new Batcher<number, number>(async () => Promise.reject(new Error('boom')), {
      batchSize: 2,
      delayMs: 1,
      concurrency: 1,
    });
    const settled = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
  });
});
