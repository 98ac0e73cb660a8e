/**
 * A budget of bytes shared by the photos being analysed at once: a photo takes its estimated pixel
 * footprint before it is decoded and gives it back once its faces are aligned. Photos wait in
 * arrival order; one larger than the whole budget runs when nothing else holds any, so every photo
 * gets through and memory stays bounded by bytes, not by a photo count.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new Error(`byte budget must be > 0, got ${limit}`);
  }

  get inUse(): number {
    return this.used;
  }

  /** Resolves with the release function once `bytes` fit (counted from then until released). */
  async acquire(bytes: number): Promise<() => void> {
    if (this.waiting.length === 0 && this.fits(bytes)) this.used += bytes;
    else await new Promise<void>((grant) => this.waiting.push({ bytes, grant }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.grantWaiting();
    };
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }

  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.grant();
    }
  }
}
