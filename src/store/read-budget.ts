// How many event rows per second all readers of the log may have read for
// them, together: a token bucket. Paging the log is the one read whose cost
// grows with what it asks for (a page is up to a thousand rows, serialized);
// past this rate pages wait their turn, in order, instead of taking the CPU
// the writers need, and past a bounded queue they are refused (503).

export class ReadsThrottledError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("too many event pages are waiting to be read; retry later");
  }
}

interface Waiting {
  readonly cost: number;
  resolve(): void;
}

export class ReadBudget {
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;

  /** `perSecond` 0: no budget. */
  constructor(
    private readonly perSecond: number,
    private readonly maxWaiting = 256,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = perSecond;
    this.refilledAt = now();
  }

  /** Resolves when `cost` rows may be read; rejects with ReadsThrottledError when too many already wait. */
  take(cost: number): Promise<void> {
    if (this.perSecond <= 0) return Promise.resolve();
    // A page larger than a second's budget still gets its turn.
    const need = Math.min(cost, this.perSecond);
    this.refill();
    if (this.queue.length === 0 && this.tokens >= need) {
      this.tokens -= need;
      return Promise.resolve();
    }
    if (this.queue.length >= this.maxWaiting) {
      return Promise.reject(new ReadsThrottledError(Math.max(1, Math.ceil(this.queuedCost() / this.perSecond))));
    }
    return new Promise<void>((resolve) => {
      this.queue.push({ cost: need, resolve });
      this.schedule();
    });
  }

  get waiting(): number {
    return this.queue.length;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Let whoever waits go on; the store refuses them itself once closed.
    for (const w of this.queue.splice(0)) w.resolve();
  }

  private queuedCost(): number {
    return this.queue.reduce((sum, w) => sum + w.cost, 0);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(1, Math.ceil(((this.queue[0]!.cost - this.tokens) / this.perSecond) * 1000));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refill();
      while (this.queue.length > 0 && this.tokens >= this.queue[0]!.cost) {
        const w = this.queue.shift()!;
        this.tokens -= w.cost;
        w.resolve();
      }
      this.schedule();
    }, wait);
  }
}
