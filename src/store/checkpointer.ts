// WAL checkpoints off the event loop.
//
// In WAL mode every commit appends pages to the -wal file, and a checkpoint
// copies them back into the database file and syncs it. Left to SQLite, the
// committing connection does that itself about once per 1,000 pages, inside
// a commit, and the event loop (every request in flight) waits for the copy
// and the sync: that is the latency tail. Here the store's connection never
// checkpoints (wal_autocheckpoint = 0) and a worker thread with its own
// connection runs PASSIVE checkpoints, which neither wait for nor block the
// writer, after commits. The worker costs a few MB of resident memory.
//
// The worker is checkpoint-worker.ts. If it fails, the store falls back to
// SQLite's own checkpoints (onFailure) rather than letting the WAL grow
// without bound.
import type { Worker } from "node:worker_threads";
import type { CheckpointReply, CheckpointRequest, CheckpointResult } from "./checkpoint-worker.js";
import { startWorker } from "./worker-thread.js";

export type { CheckpointResult } from "./checkpoint-worker.js";

type Waiter = { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void };

export interface CheckpointerOptions {
  /** Least time between the starts of two checkpoints. */
  readonly minIntervalMs?: number;
  /** The worker failed or stopped on its own; the caller should checkpoint inline again. */
  readonly onFailure: (error: Error) => void;
}

export class Checkpointer {
  private inFlight = false;
  private lastStart = 0;
  private pending = false;
  private stopped = false;
  private readonly exited: Promise<void>;
  private timer: NodeJS.Timeout | null = null;
  /** Callers waiting for the run in flight, and for the one after it. */
  private current: Waiter[] = [];
  private queued: Waiter[] = [];
  readonly stats = { checkpoints: 0, framesCheckpointed: 0 };

  private constructor(private readonly worker: Worker, private readonly options: CheckpointerOptions) {
    this.exited = new Promise((resolve) => worker.once("exit", () => resolve()));
    worker.on("message", (reply: CheckpointReply) => this.onReply(reply));
    worker.on("error", (error) => this.fail(error));
    worker.on("exit", (code) => {
      if (!this.stopped) this.fail(new Error(`checkpointer exited with code ${code}`));
    });
    // A store nobody closed must not keep the process alive.
    worker.unref();
  }

  static start(dbFile: string, options: CheckpointerOptions): Checkpointer {
    const worker = startWorker(new URL("./checkpoint-worker.js", import.meta.url), {
      workerData: { file: dbFile },
      // The worker holds one connection and a few closures: keep its heap small.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
      stdout: false,
      stderr: false,
    });
    return new Checkpointer(worker, options);
  }

  /** After a commit: start a checkpoint unless one runs or the last one started too recently. */
  nudge(): void {
    if (this.stopped) return;
    if (this.inFlight) {
      this.pending = true;
      return;
    }
    const wait = this.lastStart + (this.options.minIntervalMs ?? 100) - Date.now();
    if (wait > 0) {
      this.pending = true;
      // The last commits of a burst get their checkpoint too.
      this.timer ??= setTimeout(() => {
        this.timer = null;
        if (this.pending && !this.inFlight && !this.stopped) this.run();
      }, wait).unref();
      return;
    }
    this.run();
  }

  /**
   * Runs a checkpoint that starts after this call (after the one in flight,
   * if any) and resolves with its result: everything committed before the
   * call is covered. For tests and diagnostics.
   */
  checkpoint(): Promise<CheckpointResult> {
    if (this.stopped) return Promise.reject(new Error("the checkpointer is stopped"));
    return new Promise((resolve, reject) => {
      if (this.inFlight) {
        this.queued.push({ resolve, reject });
        return;
      }
      this.current.push({ resolve, reject });
      this.run();
    });
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return this.exited;
    this.stopped = true;
    // The worker is unref'd so that it never keeps the process alive; while
    // something waits for it to exit, it must, or Node may end the process
    // with that wait (and whatever follows it) still pending.
    this.worker.ref();
    this.worker.postMessage("close" satisfies CheckpointRequest);
    await this.exited;
  }

  private run(): void {
    this.inFlight = true;
    this.pending = false;
    this.lastStart = Date.now();
    this.worker.postMessage("checkpoint" satisfies CheckpointRequest);
  }

  private onReply(reply: CheckpointReply): void {
    this.inFlight = false;
    if (!reply.ok) {
      this.fail(new Error(`WAL checkpoint failed: ${reply.message}`));
      return;
    }
    this.stats.checkpoints++;
    this.stats.framesCheckpointed += reply.result.checkpointed;
    for (const w of this.current) w.resolve(reply.result);
    this.current = this.queued;
    this.queued = [];
    if (this.current.length > 0) this.run();
    // Commits arrived while it ran: go again (nudge applies the interval).
    else if (this.pending) this.nudge();
  }

  private fail(error: Error): void {
    for (const w of [...this.current, ...this.queued]) w.reject(error);
    this.current = [];
    this.queued = [];
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    void this.worker.terminate();
    this.options.onFailure(error);
  }
}
