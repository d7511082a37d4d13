// The serialized unit-of-work runner with group commit.
//
// The better-sqlite3 adapter has one connection, so every database access
// runs through `exclusive`, one at a time. Writes do not wait for each other
// either: operations run against the in-memory model at once, and their
// changes join the batch that is waiting; while one batch commits, the next
// fills up. Each caller's promise settles when the batch holding its changes
// (or, for a read, everything it could have observed) is durable.

export type BatchWriter<C> = (batch: C[]) => Promise<void>;

interface Batch<C> {
  readonly items: C[];
  readonly done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function newBatch<C>(): Batch<C> {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  // A batch nobody waits on must not become an unhandled rejection.
  done.catch(() => undefined);
  return { items: [], done, resolve, reject };
}

export interface RunnerStats {
  batches: number;
  items: number;
  largestBatch: number;
}

export class GroupCommitRunner<C> {
  private chain: Promise<unknown> = Promise.resolve();
  private pending: Batch<C> = newBatch();
  private inFlight: Batch<C> | null = null;
  private scheduled = false;
  readonly stats: RunnerStats = { batches: 0, items: 0, largestBatch: 0 };

  constructor(
    private readonly write: BatchWriter<C>,
    /** Called when a batch fails, after every waiter has been rejected. */
    private readonly onFailure: (error: unknown) => Promise<void>,
  ) {}

  /** Queue changes (or nothing, for a read) and wait until they are durable. */
  commit(item: C | null): Promise<void> {
    if (item !== null) {
      this.pending.items.push(item);
      this.schedule();
      return this.pending.done;
    }
    if (this.pending.items.length > 0) return this.pending.done;
    return this.inFlight?.done ?? Promise.resolve();
  }

  /** Run database work alone on the connection, after what is queued before it. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work, work);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Resolves when everything committed so far is durable. */
  async drain(): Promise<void> {
    while (this.pending.items.length > 0 || this.inFlight) {
      await (this.inFlight?.done ?? this.pending.done).catch(() => undefined);
    }
    await this.chain;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    // Let the operations already on the event loop join this batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.items.length > 0) {
      const batch = this.pending;
      this.pending = newBatch();
      this.inFlight = batch;
      this.stats.batches++;
      this.stats.items += batch.items.length;
      this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.items.length);
      try {
        await this.exclusive(() => this.write(batch.items));
        batch.resolve();
      } catch (error) {
        // Everything queued after this batch was computed on top of it.
        const later = this.pending;
        this.pending = newBatch();
        batch.reject(error);
        later.reject(error);
        this.inFlight = null;
        await this.onFailure(error);
        return;
      } finally {
        if (this.inFlight === batch) this.inFlight = null;
      }
    }
  }
}
