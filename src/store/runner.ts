// Group commit. Operations run against the in-memory model at once; their
// changes wait here until the event loop has nothing else to run, then the
// whole batch is written in one transaction. Each caller's promise settles
// when the transaction holding its changes (or, for a read, everything it
// could have observed) is durable.
//
// The writer is synchronous (better-sqlite3), so a batch is written in one
// uninterrupted step: nothing can join it or observe it half-written.
//
// Durability can be a second, asynchronous stage (`sync`): the transaction
// commits without waiting for the disk, and the callers are answered once a
// sync that started after their commit has finished. Waiting for the disk
// inside the commit would stop the event loop for the whole wait; here the
// loop parses and runs the next requests meanwhile. At most one sync runs at
// a time, and while it runs the queue is not written: what arrives meanwhile
// could not be synced before it finishes anyway, and written then as one
// batch it costs one transaction instead of one per turn of the loop (a
// transaction's fixed cost is most of a small batch's).
//
// One operation must not fail the others: when a batch's transaction fails,
// the writer reports which items failed on their own (it retries them one
// at a time), and only those, plus any item built on top of one of them, are
// refused. A failed sync refuses every item it was to cover: none of them is
// known to be durable.

import { performance } from "node:perf_hooks";

export interface ItemFailure {
  readonly index: number;
  readonly error: unknown;
}

/** Writes a batch; returns the items that could not be written (empty: all durable, or all committed when there is a sync stage). */
export type BatchWriter<C> = (batch: readonly C[]) => ItemFailure[];

/** Makes every batch committed before the call durable. */
export type BatchSync = () => Promise<void>;

interface Pending<C> {
  readonly item: C;
  /** The batch it was written in: its size and when its write began (performance.now()). */
  batch?: { readonly size: number; readonly started: number };
  resolve(): void;
  reject(error: unknown): void;
}

export interface RunnerStats {
  batches: number;
  items: number;
  largestBatch: number;
  /** Operations refused because their own write failed, or one they built on did, or the sync after it failed. */
  refused: number;
}

/** A promise with its resolve function; it never rejects. */
interface Gate {
  readonly promise: Promise<void>;
  readonly open: () => void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

/**
 * The batch was committed but the sync that was to make it durable failed:
 * the change may or may not survive, so its caller cannot be told either.
 */
export class UnsyncedCommitError extends Error {
  constructor(cause: unknown) {
    super(`committed, but syncing the log failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Told once per written batch when it is durable: its size and the seconds since its write began. */
export type BatchObserver = (size: number, seconds: number) => void;

export class GroupCommitRunner<C> {
  /** Set by the store: who hears of each durable batch (metrics). */
  onBatchDurable: BatchObserver | null = null;
  private queue: Pending<C>[] = [];
  /** Opens when the queued batch has been written (whatever the outcome). */
  private flushed: Gate | null = null;
  /** Committed, waiting for a sync that has not started yet. */
  private unsynced: Pending<C>[] = [];
  /** Opens when the sync that will cover `unsynced` has finished. */
  private nextSync: Gate | null = null;
  /** Opens when the sync in flight has finished. */
  private syncing: Gate | null = null;
  /** Operations the sync in flight covers. */
  private syncingCount = 0;
  readonly stats: RunnerStats = { batches: 0, items: 0, largestBatch: 0, refused: 0 };

  constructor(
    private readonly write: BatchWriter<C>,
    /** Called after a batch or sync in which some items failed, once their callers have been answered. */
    private readonly onFailure: (failures: ItemFailure[]) => void,
    /** The durability stage; without one, a written batch is durable. */
    private readonly sync: BatchSync | null = null,
    /**
     * Called with the items that just became durable, in commit order, right
     * before their callers are answered: what is announced from here (the
     * live event stream) is never something the disk may still lose.
     */
    private readonly onDurable: ((items: readonly C[]) => void) | null = null,
  ) {}

  private announce(items: readonly C[]): void {
    if (!this.onDurable || items.length === 0) return;
    try {
      this.onDurable(items);
    } catch {
      // A listener's failure must not keep an answer from its caller.
    }
  }

  /** Queue changes (or nothing, for a read) and wait until they are durable. */
  commit(item: C | null): Promise<void> {
    if (item === null) return this.barrier();
    const done = new Promise<void>((resolve, reject) => this.queue.push({ item, resolve, reject }));
    this.schedule();
    return done;
  }

  /** Operations waiting to be written or synced. */
  get depth(): number {
    return this.queue.length + this.unsynced.length + this.syncingCount;
  }

  /**
   * Resolves once every batch already written is durable or refused; the
   * batch still queued is not waited for. For reads of the database itself,
   * which see written batches only. Never rejects.
   */
  synced(): Promise<void> {
    const last = this.nextSync ?? this.syncing;
    return last ? last.promise : Promise.resolve();
  }

  /** Resolves when everything committed so far has been made durable or refused. */
  async settled(): Promise<void> {
    while (this.flushed || this.syncing || this.nextSync) await this.barrier();
  }

  /**
   * Resolves once everything a read made now could observe is durable, or
   * refused: the queued batch, and whatever is committed but not yet synced.
   * Never rejects.
   */
  private async barrier(): Promise<void> {
    if (this.flushed) await this.flushed.promise;
    await this.synced();
  }

  private schedule(): void {
    if (this.flushed) return;
    this.flushed = gate();
    // Otherwise the sync in flight writes the queue when it finishes.
    if (!this.syncing) this.flushSoon();
  }

  private flushSoon(): void {
    // Let the operations already on the event loop join this batch.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    const started = performance.now();
    const batch = this.queue;
    const flushed = this.flushed!;
    this.queue = [];
    this.flushed = null;
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
    const written = { size: batch.length - failures.length, started };
    if (!this.sync) this.announce(batch.filter((_, i) => !failed.has(i)).map((p) => p.item));
    batch.forEach((p, i) => {
      if (failed.has(i)) p.reject(failed.get(i));
      else if (this.sync) this.unsynced.push(Object.assign(p, { batch: written }));
      else p.resolve();
    });
    if (!this.sync && written.size > 0) this.onBatchDurable?.(written.size, (performance.now() - started) / 1000);
    this.stats.refused += failures.length;
    if (this.unsynced.length > 0) {
      this.nextSync ??= gate();
      if (!this.syncing) this.startSync();
    }
    flushed.open();
    if (failures.length > 0) this.onFailure(failures);
  }

  private startSync(): void {
    const covered = this.unsynced;
    const done = this.nextSync!;
    this.unsynced = [];
    this.nextSync = null;
    this.syncing = done;
    this.syncingCount = covered.length;
    const finish = (error: unknown, failedSync: boolean) => {
      this.syncing = null;
      this.syncingCount = 0;
      const refusal = failedSync ? new UnsyncedCommitError(error) : undefined;
      if (!failedSync) this.announce(covered.map((p) => p.item));
      for (const p of covered) failedSync ? p.reject(refusal) : p.resolve();
      if (!failedSync && this.onBatchDurable) {
        const now = performance.now();
        for (const b of new Set(covered.map((p) => p.batch!))) this.onBatchDurable(b.size, (now - b.started) / 1000);
      }
      if (failedSync) this.stats.refused += covered.length;
      done.open();
      if (this.unsynced.length > 0) this.startSync();
      else if (this.flushed) this.flushSoon();
      if (failedSync) this.onFailure(covered.map((_, index) => ({ index, error })));
    };
    let started: Promise<void>;
    try {
      started = this.sync!();
    } catch (error) {
      started = Promise.reject(error);
    }
    started.then(() => finish(undefined, false), (error: unknown) => finish(error, true));
  }
}
