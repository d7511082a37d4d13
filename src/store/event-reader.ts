// Serves pages of the event log from a worker thread (event-reader-worker.ts)
// with its own read-only connection. A crowd of clients paging the log then
// competes for the other core, not for the event loop that answers writes.
// If the worker cannot start or dies, pages are read on the caller's thread
// instead: slower under a flood, never unavailable.
import type { Database } from "better-sqlite3";
import type { Worker } from "node:worker_threads";
import { eventQueries, pageBody, type PageQuery } from "./event-page.js";
import type { PageReply, PageRequest } from "./event-reader-worker.js";
import { startWorker } from "./worker-thread.js";

interface Waiting {
  readonly query: PageQuery;
  resolve(body: string): void;
  reject(error: Error): void;
}

export class EventReader {
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private readonly readHere: (query: PageQuery) => ReturnType<ReturnType<typeof eventQueries>>;
  private exited: Promise<void> = Promise.resolve();

  /** The worker is started for the first page: a thread and its connection cost about 9 MB. */
  private started = false;

  /** `fallback`: the caller's own read-only connection, used while there is no worker. */
  constructor(private readonly file: string, fallback: Database, private readonly onFailure: (error: Error) => void = () => undefined) {
    this.readHere = eventQueries(fallback);
  }

  page(query: PageQuery): Promise<string> {
    if (!this.started) {
      this.started = true;
      this.worker = this.start(this.file);
    }
    const worker = this.worker;
    if (!worker) return Promise.resolve(pageBody(this.readHere(query), query.after, query.limit));
    const id = ++this.nextId;
    // A request in flight keeps the process alive until it is answered.
    if (this.waiting.size === 0) worker.ref();
    return new Promise<string>((resolve, reject) => {
      this.waiting.set(id, { query, resolve, reject });
      worker.postMessage({ ...query, id } satisfies PageRequest);
    });
  }

  /** A worker serves the pages (false before the first page, and after a failure). */
  get running(): boolean {
    return this.worker !== null;
  }

  async close(): Promise<void> {
    this.started = true;
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    worker.ref();
    worker.postMessage("close");
    await this.exited;
  }

  private start(file: string): Worker | null {
    let worker: Worker;
    try {
      worker = startWorker(new URL("./event-reader-worker.js", import.meta.url), { workerData: { file } });
    } catch (error) {
      this.onFailure(error as Error);
      return null;
    }
    worker.unref();
    this.exited = new Promise((resolve) => worker.once("exit", () => resolve()));
    worker.on("message", (reply: PageReply) => {
      const waiting = this.waiting.get(reply.id);
      if (!waiting) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if (reply.ok) waiting.resolve(reply.body);
      else waiting.reject(new Error(reply.message));
    });
    const failed = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.onFailure(error);
      // What was asked of the dead worker is read here instead.
      for (const [id, waiting] of this.waiting) {
        this.waiting.delete(id);
        try {
          waiting.resolve(pageBody(this.readHere(waiting.query), waiting.query.after, waiting.query.limit));
        } catch (readError) {
          waiting.reject(readError as Error);
        }
      }
    };
    worker.once("error", failed);
    worker.once("exit", (code) => failed(new Error(`event reader exited with code ${code}`)));
    return worker;
  }
}
