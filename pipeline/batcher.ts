import PQueue from 'p-queue';

export interface BatcherOptions {
  /** largest batch handed to `runBatch` */
  batchSize: number;
  /** how long the first item of a partial batch waits for company before the batch is sent */
  delayMs: number;
  /** batches in flight at once */
  concurrency: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/**
 * Collects single items from many callers into batches: a batch is sent when it is full or when
 * its first item has waited `delayMs`, whichever comes first. Batches run through a p-queue with
 * bounded concurrency, and a queued batch is only formed when it starts, so while every slot is
 * busy the waiting items pile up into full batches instead of many small ones.
 */
export class Batcher<I, O> {
  private pending: Pending<I, O>[] = [];
  private queuedTasks = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly queue: PQueue;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions,
  ) {
    if (!(opts.batchSize >= 1)) throw new Error(`batchSize must be ≥ 1, got ${opts.batchSize}`);
    this.queue = new PQueue({ concurrency: Math.max(1, opts.concurrency) });
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      const unclaimed = this.pending.length - this.queuedTasks * this.opts.batchSize;
      if (unclaimed >= this.opts.batchSize) this.schedule();
      else if (!this.timer) this.timer = setTimeout(() => this.schedule(), this.opts.delayMs);
    });
  }

  /** Items waiting for a batch. */
  get waiting(): number {
    return this.pending.length;
  }

  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }

  private schedule(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.pending.length > this.queuedTasks * this.opts.batchSize) {
      this.queuedTasks++;
      void this.queue.add(() => this.runNext());
    }
  }

  private async runNext(): Promise<void> {
    this.queuedTasks--;
    const batch = this.pending.splice(0, this.opts.batchSize);
    if (batch.length === 0) return;
    try {
      const out = await this.runBatch(batch.map((p) => p.item));
      if (out.length !== batch.length) throw new Error(`batch of ${batch.length} gave ${out.length} results`);
      batch.forEach((p, i) => p.resolve(out[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
