import { describe, expect, it } from 'vitest';
import { ByteBudget } from './byteBudget.ts';

describe('byte budget for photos in flight', () => {
  it('holds back what does not fit, in arrival order, and lets an oversized photo through alone', async () => {
    const budget = new ByteBudget(100);
    const order: string[] = [];
    const a = await budget.acquire(60);
    const b = budget.acquire(50).then((release) => (order.push('b'), release));
    const c = budget.acquire(10).then((release) => (order.push('c'), release));
    await Promise.resolve();
    expect(order).toEqual([]); // c fits but waits behind b: arrival order
    expect(budget.inUse).toBe(60);
    a();
    const releaseB = await b;
    const releaseC = await c;
    expect(order).toEqual(['b', 'c']);
    expect(budget.inUse).toBe(60);
    const big = budget.acquire(500).then((release) => (order.push('big'), release));
    releaseB();
    releaseC();
    releaseC(); // a second release changes nothing
    const releaseBig = await big;
    expect(budget.inUse).toBe(500);
    releaseBig();
    expect(budget.inUse).toBe(0);
  });
});
