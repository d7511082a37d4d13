// The store: the narrow interface the HTTP layer sees, and its SQLite
// implementation.
//
// Single-writer assumption, made explicit: this process holds the SQLite
// file's writer lock (lock.ts) and keeps the live state in memory. Every
// operation runs synchronously against that model (so operations are
// linearizable by construction: JavaScript runs one at a time), all or
// nothing, and its changes are made durable by the group-commit runner before
// the caller hears the answer. Several replicas on one PostgreSQL database
// implement the same interface in postgres.ts (one lock per write batch and
// a change log the replicas follow).
//
// When the disk refuses a write, the operations in that write are answered
// 503, the model is rebuilt from what the disk holds, and further changes
// are refused at once (readiness says why) until a probe write succeeds
// again; then the store carries on by itself.
import type { DriverTable } from "../core/driver.js";
import type { EventRecord } from "../core/entities.js";
import { KINDS, type ChangeSet, type Model } from "../core/model.js";
import { perform } from "../core/operation.js";
import { fail, type Result } from "../core/result.js";
import { Checkpointer, type CheckpointResult } from "./checkpointer.js";
import { eventQueries, eventRow, type EventRow, type PageQuery } from "./event-page.js";
import { EventReader } from "./event-reader.js";
import { ReadBudget } from "./read-budget.js";
import { openDatabase, type Prisma } from "./database.js";
import {
  answerStep, encodeChanges, touchedRows, UnstorableValueError, WATERMARK_KINDS, watermarkSteps, type Step, type Watermarks,
} from "./encode.js";
import { loadTopology, type Loaded } from "./load.js";
import { APPLIED_MIGRATIONS_SQL, applyMigrations, migrationNames } from "./migrate.js";
import { commitFacts, type CommitFacts, type StoreObserver } from "./observer.js";
import { GroupCommitRunner, UnsyncedCommitError, type ItemFailure, type RunnerStats } from "./runner.js";
import type { Statement } from "better-sqlite3";
import { pino, type Logger } from "pino";
import { openReader, openWriter, type Connection, type Synchronous } from "./sqlite.js";
import { WalSync } from "./wal-sync.js";
import { isBusy, StoreLockedError, WriterLock } from "./lock.js";

export { StoreLockedError } from "./lock.js";
export type { StoreObserver, CommitFacts, CommittedEvent, AllocatedDomain } from "./observer.js";
export { ReadsThrottledError } from "./read-budget.js";

/** An HTTP answer as sent: replayed byte for byte to a retry with the same idempotency key. */
export interface StoredAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RememberedAnswer extends StoredAnswer {
  readonly fingerprint: string;
  /** Milliseconds since the epoch. */
  readonly storedAt: number;
}

export interface ExecuteOptions<T> {
  /** Remember the answer under an idempotency key, in the same transaction as the operation. */
  readonly remember?: {
    readonly client: string;
    readonly key: string;
    readonly fingerprint: string;
    /** Called synchronously right after the operation, with its result; what it returns is stored. */
    answer(result: Result<T>): StoredAnswer;
  };
}

export type EventListener = (events: readonly EventRow[]) => void;

export interface EventBounds {
  readonly durable: number;
  readonly prunedUpTo: number;
}

export interface StoreHealth {
  /** Takes changes now. */
  readonly ready: boolean;
  /** Why not, when not. */
  readonly cause: string | null;
}

export interface ArbiterStore {
  /**
   * Run one core operation, all or nothing: if it fails or throws, the model
   * is as it was (but for what a refusal must keep: consumed injected faults
   * and the attempt's event). Resolves once its effects are durable.
   */
  execute<T>(op: (model: Model) => Result<T>, options?: ExecuteOptions<T>): Promise<Result<T>>;
  /** Read the model; resolves once everything the read could observe is durable. */
  read<T>(view: (model: Model) => T): Promise<T>;
  /** The event log, oldest first, strictly after `after`; optionally one group's only. */
  events(after: number, limit: number, filter?: { groupId?: number }): Promise<EventRecord[]>;
  /** The same, as the API shows them (what GET /v1/events lists and the live stream sends). */
  eventRows(after: number, limit: number, filter?: { groupId?: number }): Promise<EventRow[]>;
  /** The same as the JSON body of GET /v1/events (`items`, `next`, `last`), read and serialized off the event loop. */
  eventPage(query: PageQuery): Promise<string>;
  /**
   * Calls `listener` with the events of every batch once it is durable, in
   * seq order, before the operations that recorded them are answered.
   * Returns the function that stops it.
   */
  subscribe(listener: EventListener): () => void;
  /** The newest durable event's seq, and how far the log is pruned (events up to that seq are gone). */
  eventBounds(): EventBounds;
  /** A remembered answer for (client, key), if one is stored and not expired. */
  remembered(client: string, key: string): Promise<RememberedAnswer | undefined>;
  health(): StoreHealth;
  /**
   * Readiness as a probe sees it: health(), and the database answers a
   * query now (on the reader connection, which waits for no write) showing
   * every migration of the migrations folder applied.
   */
  readiness(): Promise<StoreHealth>;
  stats(): StoreStats;
  /** Hear of what is committed from now on; returns the function that stops it. */
  observe(observer: StoreObserver): () => void;
  close(): Promise<void>;
}

/** How long an idempotent answer is remembered unless the store is told otherwise. */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface StoreStats extends RunnerStats {
  /** Operations waiting to be written or made durable. */
  readonly queued: number;
  readonly checkpoints: number;
  readonly framesCheckpointed: number;
  readonly objects: Record<string, number>;
}

/**
 * The store cannot answer: a write was refused (the model is then rebuilt
 * from disk), the disk could not be read back, the database cannot be
 * reached, or the store is closed.
 */
export class StoreUnavailableError extends Error {
  /**
   * Whether the refused change may still be in the database: "no" when it
   * was not written, "unknown" when it was committed but the sync after it
   * failed, or COMMIT was sent and the connection was lost before its answer.
   */
  readonly mayHaveApplied: boolean;
  constructor(cause: unknown, readonly retryAfterSeconds = 1, readonly use: "read" | "write" = "write") {
    super(`the store is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.mayHaveApplied = cause instanceof UnsyncedCommitError || cause instanceof CommitOutcomeUnknownError;
  }
}

/** COMMIT was sent and the connection was lost before its answer: the change may or may not be in the database. */
export class CommitOutcomeUnknownError extends Error {
  constructor(cause: unknown) {
    super(`the connection was lost while committing: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * A request with this Idempotency-Key was answered by another replica while
 * this one was on its way: the caller replays that answer (or refuses the
 * key, if the requests differ) instead of running the operation twice.
 */
export class AnsweredEarlierError extends Error {
  constructor(readonly answer: RememberedAnswer) {
    super("a request with this Idempotency-Key was answered earlier");
  }
}

/** An operation refused because an earlier one in its batch, which it built on, could not be written. */
class BuiltOnRefusedWrite extends Error {
  constructor(cause: unknown) {
    super(`an operation this one built on could not be written: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** One operation's changes, ready to write. */
interface Stamped {
  readonly steps: Step[];
  readonly touched: ReadonlySet<string>;
  /** The model's id watermarks and the last event seq after the operation. */
  readonly watermarks: Readonly<Watermarks>;
  readonly events: number;
  /** For observers; null when nobody observes. */
  readonly facts: CommitFacts | null;
  /** The events themselves, announced to subscribers once durable. */
  readonly records: readonly EventRecord[];
}

export interface SqliteStoreOptions {
  readonly file: string;
  readonly migrationsDir: string;
  /** The drivers the model runs: server.ts hands in the registry (the core and the store import none). */
  readonly drivers: DriverTable;
  /**
   * Where the store reports what happens to it: migrations applied, a write
   * the disk refused, the model rebuilt from disk (or not), recovery, a
   * worker thread lost. The service hands it the logger it made first.
   * Default: silent.
   */
  readonly logger?: Logger;
  /** Keep this many most recent events (0: all). Older ones are pruned as new ones are written. */
  readonly eventRetention?: number;
  /** Event rows per second all readers of the log may have read, together (0: no limit). Default 0. */
  readonly eventReadRate?: number;
  /** Default "full": an answered operation survives a power loss. */
  readonly synchronous?: Synchronous;
  /** How long an idempotency key's answer is kept (ms). Default 24 hours. */
  readonly idempotencyTtlMs?: number;
  /** Pause between recovery attempts after a failed write (ms). Default 500. */
  readonly recoveryIntervalMs?: number;
  /** The clock remembered answers are stamped and expired with (tests inject one). */
  readonly now?: () => number;
}


export class SqliteStore implements ArbiterStore {
  private readonly runner: GroupCommitRunner<Stamped>;
  private readonly checkpointer: Checkpointer;
  /** With synchronous "full": syncs the WAL after commits, before their callers are answered. */
  private readonly walSync: WalSync | null;
  private readonly eventReader: EventReader;
  private readonly readBudget: ReadBudget;
  private readEvents: ReturnType<typeof eventQueries> | null = null;
  private readonly statements = new Map<string, Statement<unknown[]>>();
  private readonly batchWrite: (items: readonly Stamped[], housekeeping: boolean) => { prunedUpTo: number; watermarks: Watermarks };
  private closed = false;
  /** The model may hold changes the disk refused: nothing is served until it is rebuilt. */
  private diverged = false;
  private reloading: Promise<void> | null = null;
  /** Set while the disk refuses writes: changes are refused at once until a probe write succeeds. */
  private writeFault: unknown = null;
  private recovery: Promise<void> | null = null;

  private model: Model;
  private lastSeq: number;
  /** Events with seq up to this have been pruned (or never existed). */
  private prunedUpTo: number;
  /** Ids (and event seqs) storage knows were handed out; an id shown to a client is never reused. */
  private idWatermarks: Watermarks;
  private lastAnswerPrune = 0;
  private readonly log: Logger;
  private readonly observers = new Set<StoreObserver>();
  /** The newest event known to be on disk: what a live stream has announced up to. */
  private durableSeq: number;
  private readonly listeners = new Set<EventListener>();

  private constructor(
    private readonly prisma: Prisma,
    private readonly lock: WriterLock,
    private readonly db: Connection,
    private readonly reader: Connection,
    loaded: Loaded,
    private readonly options: SqliteStoreOptions,
  ) {
    this.log = options.logger ?? SILENT;
    this.model = loaded.model;
    this.lastSeq = loaded.lastEventSeq;
    this.idWatermarks = loaded.idWatermarks;
    this.prunedUpTo = loaded.firstEventSeq - 1;
    this.walSync = (options.synchronous ?? "full") === "full" ? new WalSync(options.file) : null;
    const walSync = this.walSync;
    this.durableSeq = loaded.lastEventSeq;
    this.runner = new GroupCommitRunner<Stamped>((batch) => this.write(batch), (failures) => this.writeFailed(failures),
      walSync && (() => walSync.sync()), (items) => this.announce(items));
    this.runner.onBatchDurable = (size, seconds) => {
      for (const o of this.observers) this.tell(() => o.batchCommitted?.(size, seconds));
    };
    this.batchWrite = db.transaction((items: readonly Stamped[], housekeeping: boolean) => this.apply(items, housekeeping));
    this.checkpointer = Checkpointer.start(options.file, { onFailure: (error) => this.checkpointInline(error) });
    this.eventReader = new EventReader(options.file, reader, (error) => {
      this.log.warn({ err: error }, "event reader worker failed; event pages are read on the event loop from now on");
    });
    this.readBudget = new ReadBudget(options.eventReadRate ?? 0);
  }

  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    // The lock first: a second process must not even migrate the file.
    const lock = WriterLock.acquire(options.file);
    const opened: { close(): unknown }[] = [];
    let prisma: Prisma | null = null;
    try {
      const { applied } = applyMigrations(options.file, options.migrationsDir);
      if (applied.length > 0) options.logger?.info({ file: options.file, migrations: applied }, "database migrated");
      prisma = await openDatabase(options.file);
      const db = openWriter(options.file);
      opened.push(db);
      const reader = openReader(options.file);
      opened.push(reader);
      return new SqliteStore(prisma, lock, db, reader, await loadTopology(prisma, options.drivers), options);
    } catch (error) {
      for (const c of opened) c.close();
      await prisma?.$disconnect();
      lock.release();
      throw isBusy(error) ? new StoreLockedError(options.file) : error;
    }
  }

  async execute<T>(op: (model: Model) => Result<T>, options?: ExecuteOptions<T>): Promise<Result<T>> {
    await this.ready();
    if (this.writeFault !== null) throw new StoreUnavailableError(this.writeFault);
    const model = this.model;
    const { result, presented: answer } = perform(model, op, options?.remember?.answer);
    const remember = options?.remember && answer ? { ...options.remember, answer } : null;
    if (!model.hasChanges() && !remember) {
      // Nothing to write, but the answer may rest on changes not yet durable.
      await this.commit(null);
      return result;
    }
    const changes = model.takeChanges();
    const firstSeq = this.lastSeq;
    let stamped: Stamped;
    try {
      stamped = this.stamp(changes, remember);
    } catch (error) {
      if (!(error instanceof UnstorableValueError)) throw error;
      // Nothing else ran since the operation: put its changes back, alone.
      model.restore(changes);
      this.lastSeq = firstSeq;
      return fail("invalid-request", `${error.message}; nothing was changed`);
    }
    await this.commit(stamped);
    return result;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private expired(answer: { storedAt: number }): boolean {
    return this.now() - answer.storedAt >= this.idempotencyTtl();
  }

  async read<T>(view: (model: Model) => T): Promise<T> {
    await this.ready();
    const value = view(this.model);
    await this.commit(null);
    return value;
  }

  /**
   * Straight from the reader connection, which never waits for a write. It
   * sees every committed batch, synced or not: the answer waits until what
   * it read is durable.
   */
  async events(after: number, limit: number, filter: { groupId?: number } = {}): Promise<EventRecord[]> {
    return (await this.eventRows(after, limit, filter)).map((e) => ({ ...e, at: new Date(e.at) }));
  }

  async eventRows(after: number, limit: number, filter: { groupId?: number } = {}): Promise<EventRow[]> {
    if (this.closed) throw new StoreUnavailableError("store is closed");
    // Shares the page readers' rate: a stream's backlog is read the same way.
    await this.readBudget.take(limit);
    if (this.closed) throw new StoreUnavailableError("store is closed");
    this.readEvents ??= eventQueries(this.reader);
    const rows = this.readEvents({ after, limit, groupId: filter.groupId });
    await this.runner.synced();
    return rows;
  }

  async eventPage(query: PageQuery): Promise<string> {
    if (this.closed) throw new StoreUnavailableError("store is closed");
    await this.readBudget.take(query.limit);
    if (this.closed) throw new StoreUnavailableError("store is closed");
    const page = await this.eventReader.page(query);
    // The worker read only commits made before its answer arrived.
    await this.runner.synced();
    return page;
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  eventBounds(): EventBounds {
    return { durable: this.durableSeq, prunedUpTo: this.prunedUpTo };
  }

  /** The runner's onDurable: these items' events are on disk now. */
  private announce(items: readonly Stamped[]): void {
    let events: EventRow[] | null = null;
    for (const item of items) {
      if (item.records.length === 0) continue;
      this.durableSeq = Math.max(this.durableSeq, item.records[item.records.length - 1]!.seq);
      if (this.listeners.size === 0) continue;
      events ??= [];
      for (const e of item.records) events.push(eventRow(e));
    }
    if (!events) return;
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch (error) {
        this.log.error({ err: error }, "an event listener failed");
      }
    }
  }

  async remembered(client: string, key: string): Promise<RememberedAnswer | undefined> {
    if (this.closed) throw new StoreUnavailableError("store is closed");
    const row = this.readerStatement(`SELECT "fingerprint", "status", "contentType", "headers", "body", "storedAt" FROM "IdempotentAnswer" WHERE "client" = ? AND "key" = ?`)
      .get(client, key) as { fingerprint: string; status: number; contentType: string; headers: string; body: string; storedAt: number } | undefined;
    if (!row || this.expired(row)) return undefined;
    const headers = JSON.parse(row.headers) as Record<string, string>;
    return {
      fingerprint: row.fingerprint, status: row.status, contentType: row.contentType, body: row.body, storedAt: Number(row.storedAt),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    };
  }

  health(): StoreHealth {
    if (this.closed) return { ready: false, cause: "the store is closed" };
    if (this.diverged) return { ready: false, cause: "rebuilding the model from the database after a failed write" };
    if (this.writeFault !== null) return { ready: false, cause: `the database refuses writes: ${messageOf(this.writeFault)}` };
    return { ready: true, cause: null };
  }

  async readiness(): Promise<StoreHealth> {
    const health = this.health();
    if (!health.ready) return health;
    try {
      const applied = new Set((this.readerStatement(APPLIED_MIGRATIONS_SQL).all() as { migration_name: string }[]).map((r) => r.migration_name));
      const missing = migrationNames(this.options.migrationsDir).filter((name) => !applied.has(name));
      if (missing.length > 0) return { ready: false, cause: `migration ${missing.join(", ")} is not applied to the database` };
      return health;
    } catch (error) {
      return { ready: false, cause: `the database does not answer: ${messageOf(error)}` };
    }
  }

  stats(): StoreStats {
    const objects: Record<string, number> = {};
    for (const kind of KINDS) objects[kind] = this.model.count(kind);
    return { ...this.runner.stats, queued: this.runner.depth, ...this.checkpointer.stats, objects };
  }

  /** An observer that throws must not fail a write that committed: logged, not raised. */
  private tell(notify: () => void): void {
    try {
      notify();
    } catch (error) {
      this.log.error({ err: error }, "a store observer failed");
    }
  }

  observe(observer: StoreObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.runner.settled();
    await this.recovery?.catch(() => undefined);
    await this.reloading;
    this.walSync?.close();
    await this.checkpointer.close();
    this.readBudget.close();
    await this.eventReader.close();
    this.reader.close();
    // The last connection to close checkpoints the rest and removes the WAL.
    await this.prisma.$disconnect();
    this.db.close();
    this.lock.release();
  }

  /** Runs a WAL checkpoint now, off the event loop (tests, diagnostics). */
  checkpoint(): Promise<CheckpointResult> {
    return this.checkpointer.checkpoint();
  }

  // ---- writing ------------------------------------------------------------

  private async commit(stamped: Stamped | null): Promise<void> {
    try {
      await this.runner.commit(stamped);
    } catch (error) {
      throw new StoreUnavailableError(error);
    }
  }

  private stamp(changes: ChangeSet, remember: { client: string; key: string; fingerprint: string; answer: StoredAnswer } | null): Stamped {
    const at = new Date();
    const events = changes.events.map((e): EventRecord => ({ ...e, seq: ++this.lastSeq, at }));
    const steps = encodeChanges(changes, events);
    if (remember) steps.push(answerStep(remember, remember.answer, this.now()));
    const watermarks = { ...this.model.lastIds(), event: this.lastSeq };
    const facts = this.observers.size > 0 ? commitFacts(this.model, changes, events) : null;
    return { steps, touched: touchedRows(changes), watermarks, events: events.length, facts, records: events };
  }

  /**
   * The runner's writer: the batch in one transaction; if that fails, each
   * operation alone, so one that cannot be written fails by itself. An
   * operation that changed a row a failed one changed was computed on top
   * of it, so it is refused too.
   */
  private write(batch: readonly Stamped[]): ItemFailure[] {
    try {
      this.transaction(batch, true);
      return [];
    } catch (error) {
      if (batch.length === 1) return [{ index: 0, error }];
    }
    const failures: ItemFailure[] = [];
    const tainted = new Set<string>();
    batch.forEach((item, index) => {
      const built = [...item.touched].some((row) => tainted.has(row));
      try {
        if (built) throw new BuiltOnRefusedWrite(failures.at(-1)?.error);
        this.transaction([item], false);
      } catch (error) {
        failures.push({ index, error });
        for (const row of item.touched) tainted.add(row);
      }
    });
    return failures;
  }

  private transaction(items: readonly Stamped[], housekeeping: boolean): void {
    this.settleConnection();
    // Counters change only once the transaction has committed.
    const { prunedUpTo, watermarks } = this.batchWrite(items, housekeeping);
    this.prunedUpTo = prunedUpTo;
    this.idWatermarks = watermarks;
    this.checkpointer.nudge();
    for (const item of items) {
      if (item.facts) for (const o of this.observers) this.tell(() => o.operationCommitted?.(item.facts!));
    }
  }

  /**
   * A transaction left open by a failure that even the rollback could not
   * undo must not swallow the next batch as a nested savepoint: roll it back
   * now, or refuse to write.
   */
  private settleConnection(): void {
    if (!this.db.inTransaction) return;
    this.db.exec("ROLLBACK");
    if (this.db.inTransaction) throw new Error("the database connection is stuck in a transaction");
  }

  /**
   * Inside the transaction (better-sqlite3 commits, or rolls back on any
   * throw, commit failures included). Returns how far events are pruned
   * and the watermarks now stored.
   */
  private apply(items: readonly Stamped[], housekeeping: boolean): { prunedUpTo: number; watermarks: Watermarks } {
    this.statement("PRAGMA defer_foreign_keys = ON").run();
    let events = 0;
    const watermarks = { ...this.idWatermarks };
    for (const item of items) {
      for (const step of item.steps) this.statement(step.sql).run(...step.params);
      events += item.events;
      for (const kind of WATERMARK_KINDS) watermarks[kind] = Math.max(watermarks[kind], item.watermarks[kind]);
    }
    // Ids the service handed out but never stored (an automatic domain
    // allocated and rolled back in the same operation) are covered too.
    for (const step of watermarkSteps(this.idWatermarks, watermarks)) this.statement(step.sql).run(...step.params);
    const prunedUpTo = housekeeping ? this.prune(watermarks.event, events) : this.prunedUpTo;
    return { prunedUpTo, watermarks };
  }

  /**
   * Events past the retention, a bounded slice per batch (at most twice what
   * the batch adds, plus a little) so that turning retention on for a large
   * log never stalls one commit; and expired idempotency answers, at most
   * once a second.
   */
  private prune(lastSeq: number, added: number): number {
    const retention = this.options.eventRetention ?? 0;
    let prunedUpTo = this.prunedUpTo;
    if (retention > 0 && lastSeq - retention > prunedUpTo) {
      const upTo = Math.min(lastSeq - retention, prunedUpTo + 2 * added + 1000);
      this.statement(`DELETE FROM "Event" WHERE "seq" > ? AND "seq" <= ?`).run(prunedUpTo, upTo);
      prunedUpTo = upTo;
    }
    const now = this.now();
    if (now - this.lastAnswerPrune >= 1000) {
      this.lastAnswerPrune = now;
      this.statement(`DELETE FROM "IdempotentAnswer" WHERE rowid IN (SELECT rowid FROM "IdempotentAnswer" WHERE "storedAt" <= ? LIMIT 1000)`)
        .run(now - this.idempotencyTtl());
    }
    return prunedUpTo;
  }

  private statement(sql: string): Statement<unknown[]> {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  private readonly readerStatements = new Map<string, Statement<unknown[]>>();
  private readerStatement(sql: string): Statement<unknown[]> {
    let s = this.readerStatements.get(sql);
    if (!s) this.readerStatements.set(sql, (s = this.reader.prepare(sql)));
    return s;
  }

  private idempotencyTtl(): number {
    return this.options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
  }

  private checkpointInline(error: Error): void {
    this.log.warn({ err: error }, "background WAL checkpointer failed; SQLite checkpoints inline from now on");
    try {
      this.db.pragma("wal_autocheckpoint = 1000");
    } catch {
      // The store is closing; nothing to fall back for.
    }
  }

  // ---- failure and recovery ---------------------------------------------

  /**
   * Some operations could not be written: their callers have been answered.
   * The model holds changes the disk does not: rebuild it from the disk, and
   * refuse changes until the disk takes a write again.
   */
  private writeFailed(failures: ItemFailure[]): void {
    const error = failures.find((f) => !(f.error instanceof BuiltOnRefusedWrite))?.error ?? failures[0]!.error;
    this.diverged = true;
    this.writeFault = error;
    this.log.error({ err: error, refused: failures.length },
      "a database write failed: its operations were answered 503; changes are refused until the model is rebuilt from the database and the disk takes writes again");
    this.recovery ??= this.recover().finally(() => { this.recovery = null; });
  }

  private async recover(): Promise<void> {
    while (!this.closed) {
      if (this.diverged) await this.reload();
      if (!this.diverged && this.probe()) {
        this.writeFault = null;
        this.log.warn("the database takes writes again; changes are accepted");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.recoveryIntervalMs ?? 500).unref());
    }
  }

  /** A real write that must reach the disk: true when it did. */
  private probe(): boolean {
    try {
      this.settleConnection();
      this.db.transaction(() => {
        this.statement(`INSERT INTO "Heartbeat" ("id", "at") VALUES (1, ?) ON CONFLICT ("id") DO UPDATE SET "at" = excluded."at"`).run(Date.now());
      })();
      this.walSync?.syncNow();
      return true;
    } catch (error) {
      this.writeFault = error;
      return false;
    }
  }

  /**
   * Waits out a reload in progress. While the model may be ahead of the disk
   * (a write failed and reading it back failed too), nothing is served from
   * it: each request tries the reload again and is refused if it fails.
   */
  private async ready(): Promise<void> {
    if (this.closed) throw new StoreUnavailableError("store is closed");
    while (this.reloading) await this.reloading;
    if (this.diverged) await this.reload();
    if (this.diverged) throw new StoreUnavailableError("the database could not be read back after a failed write");
    if (this.closed) throw new StoreUnavailableError("store is closed");
  }

  /** Never rejects: a failed reload leaves `diverged` set. */
  private reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        await this.runner.settled();
        const loaded = await loadTopology(this.prisma, this.options.drivers);
        this.model = loaded.model;
        this.lastSeq = loaded.lastEventSeq;
        this.idWatermarks = loaded.idWatermarks;
        this.diverged = false;
        this.log.warn({ lastEventSeq: loaded.lastEventSeq }, "the model was rebuilt from the database after a failed write");
      } catch (error) {
        this.log.error({ err: error }, "the model could not be rebuilt from the database after a failed write; nothing is served until it can");
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }
}

const SILENT = pino({ level: "silent" });

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
