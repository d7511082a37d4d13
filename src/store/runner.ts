// Group commit. Operations run against the in-memory model at once; their
// changes wait here until the event loop has nothing else to run, then the
// whole batch is written in one transaction. Each caller's promise settles
// when the transaction holding its changes (or, for a read, everything it
// could have observed) is durable.
//
// The writer is synchronous (better-sqlite3), so a batch is written in one
// uninterrupted step: nothing can join it or observe it half-written.
//
// One operation must not fail the others: when a batch's transaction fails,
// the writer reports which items failed on their own (it retries them one
// at a time), and only those, plus any item built on top of one of them, are
// refused.

export interface ItemFailure {
  readonly index: number;
  readonly error: unknown;
}

/** Writes a batch; returns the items that could not be written (empty: all durable). */
export type BatchWriter<C> = (batch: readonly C[]) => ItemFailure[];

interface Pending<C> {
  readonly item: C;
  resolve(): void;
  reject(error: unknown): void;
}

export interface RunnerStats {
  batches: number;
  items: number;
  largestBatch: number;
  /** Operations refused because their own write failed, or one they built on did. */
  refused: number;
}

export class GroupCommitRunner<C> {
  private queue: Pending<C>[] = [];
  /** Resolves when the queued batch has been written (whatever the outcome). */
  private flushed: Promise<void> | null = null;
  private release: (() => void) | null = null;
  readonly stats: RunnerStats = { batches: 0, items: 0, largestBatch: 0, refused: 0 };

  constructor(
    private readonly write: BatchWriter<C>,
    /** Called after a batch in which some items failed, once their callers have been answered. */
    private readonly onFailure: (failures: ItemFailure[]) => void,
  ) {}

  /** Queue changes (or nothing, for a read) and wait until they are durable. */
  commit(item: C | null): Promise<void> {
    if (item === null) return this.flushed ?? Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.queue.push({ item, resolve, reject }));
    this.schedule();
    return done;
  }

  /** Resolves when everything committed so far has been written or refused. */
  async settled(): Promise<void> {
    while (this.flushed) await this.flushed;
  }

  private schedule(): void {
    if (this.flushed) return;
    this.flushed = new Promise<void>((resolve) => { this.release = resolve; });
    // Let the operations already on the event loop join this batch.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.queue;
    const release = this.release!;
    this.queue = [];
    this.flushed = null;
    this.release = null;
    this.stats.batches++;
    this.stats.items += batch.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
    let failures: ItemFailure[];
    try {
      failures = this.write(batch.map((p) => p.item));
    } catch (error) {
      failures = batch.map((_, index) => ({ index, error }));
    }
    const failed = new Map(failures.map((f) => [f.index, f.error]));
    batch.forEach((p, i) => (failed.has(i) ? p.reject(failed.get(i)) : p.resolve()));
    this.stats.refused += failures.length;
    release();
    if (failures.length > 0) this.onFailure(failures);
  }
}
