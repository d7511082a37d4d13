// The store on PostgreSQL: several replicas (processes, machines) serve one
// database, with the guarantees the SQLite store gives one process.
//
// Each replica keeps the model in memory, as the SQLite store does, but it
// is not the only writer, so it never runs an operation on what it merely
// remembers. Writes queue up and go as a batch (group commit): the batch's
// transaction first takes one transaction-scoped advisory lock, so batches
// of all replicas run one at a time; then reads the change log past the
// last batch this replica has applied, and applies those batches (the other
// replicas' writes) to the model; only then runs its operations, and writes
// their rows, their events and its own change-log entry before COMMIT
// releases the lock. Operations are therefore linearizable across replicas:
// each runs on the state every earlier commit left, ids and event seqs
// continue where the last writer stopped, and two conflicting attaches on
// two replicas give one winner and one clean refusal.
//
// A read first asks the database for the newest change-log seq (one small
// query, shared by the reads that arrive together), applies what it lacks,
// and then reads the model: it sees every write answered before it began,
// on any replica. LISTEN/NOTIFY tells idle replicas of new batches at once,
// so their live event streams carry every replica's events.
//
// Lost connection: the operations in flight are answered 503 (with "may
// have applied" when COMMIT was sent and no answer came back), the model is
// put back to the last state known committed, and every request is refused
// with 503 until a new connection works; the replica then applies the
// change log, its own last batch included if it did commit, and serves
// again, without a restart.
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { pino, type Logger } from "pino";
import type { DriverTable } from "../core/driver.js";
import type { EventRecord } from "../core/entities.js";
import { KINDS, type ChangeSet, type Model } from "../core/model.js";
import { perform } from "../core/operation.js";
import { fail, type Result } from "../core/result.js";
import { storedOutcome } from "../core/outcome.js";
import { applyChangeBody, changeBody, mergeRows, type ChangeBody } from "./change-log.js";
import { batchStatements, watermarkStatement } from "./postgres-batch.js";
import {
  answerStep, checkStorable, UnstorableValueError, WATERMARK_KINDS, type Step, type Watermarks,
} from "./encode.js";
import { eventRow, pageBody, type EventRow, type PageQuery } from "./event-page.js";
import { loadTopology, type Loaded } from "./load.js";
import { migrationNames } from "./migrate.js";
import { commitFacts, type CommitFacts, type StoreObserver } from "./observer.js";
import { describePostgresUrl } from "./postgres-connect.js";
import { inline, isConnectionLoss, literal, STORE_TYPES } from "./postgres-sql.js";
import { applyPostgresMigrations, APPLIED_POSTGRES_MIGRATIONS_SQL } from "./postgres-migrate.js";
import { ReadBudget } from "./read-budget.js";
import { PrismaClient } from "./generated-pg/client.js";
import {
  AnsweredEarlierError, CommitOutcomeUnknownError, DEFAULT_IDEMPOTENCY_TTL_MS, StoreUnavailableError,
  type ArbiterStore, type EventBounds, type EventListener, type ExecuteOptions, type RememberedAnswer, type StoreHealth,
  type StoredAnswer, type StoreStats,
} from "./store.js";

/**
 * The advisory lock every write batch takes (pg_advisory_xact_lock): one
 * key for the whole database, since any operation may touch any part of the
 * topology (a container search walks every unit). "iommu-ar" in ASCII.
 */
export const WRITE_LOCK_KEY = 0x696f6d6d752d6172n;
/** The NOTIFY channel a committed batch announces its change-log seq on. */
export const CHANGES_CHANNEL = "iommu_arbiter_changes";
/** Change-log batches kept; a replica further behind than this reloads the whole model. */
const CHANGE_LOG_KEPT = 10_000;
/** Why a replica reloads when the database went back in time. */
const BEHIND_US = "the database holds fewer change-log entries than this replica applied (a failover that lost acknowledged commits?)";
/** At most this many operations per batch: one transaction's text stays a few MB at most. */
const MAX_BATCH = 512;
/** A replica with no notification for this long asks the database itself (a lost NOTIFY connection is noticed here). */
const POLL_MS = 1000;
/**
 * TCP keep-alive probes start after this much silence (the system default is
 * two hours): a connection a NAT or a dead host dropped without a reset is
 * noticed in seconds, and its requests answered 503, instead of hanging.
 */
const KEEPALIVE_MS = 5_000;
/** The longest a writer may sit in an open transaction before PostgreSQL ends it (ms). */
const IDLE_IN_TRANSACTION_MS = 10_000;

export interface PostgresStoreOptions {
  /** postgresql://user:password@host:port/database */
  readonly url: string;
  readonly migrationsDir: string;
  readonly drivers: DriverTable;
  readonly logger?: Logger;
  readonly eventRetention?: number;
  readonly eventReadRate?: number;
  readonly idempotencyTtlMs?: number;
  /** Pause between attempts to reach the database again after losing it (ms). Default 500. */
  readonly recoveryIntervalMs?: number;
  /**
   * LISTEN for other replicas' commits (default true). Reads never depend on
   * it (they ask for the newest seq themselves); live event streams hear of
   * other replicas' events at once with it, else at the next poll.
   */
  readonly notifications?: boolean;
  /** How often an idle replica looks for other replicas' commits itself (ms). Default 1000. */
  readonly pollIntervalMs?: number;
  /** Connections for reads (event pages, remembered answers, seq checks). Default 4. */
  readonly readConnections?: number;
  readonly now?: () => number;
}

/** An operation waiting for its batch. */
interface Pending {
  readonly op: (model: Model) => Result<unknown>;
  readonly remember: NonNullable<ExecuteOptions<unknown>["remember"]> | null;
  resolve(result: Result<unknown>): void;
  reject(error: unknown): void;
}

/** An operation run in the batch being written. */
interface Performed {
  readonly pending: Pending;
  readonly result: Result<unknown>;
  /** null: it changed nothing and remembers nothing. */
  readonly changes: ChangeSet | null;
  /** The remembered answer's statement, for a request with an Idempotency-Key. */
  readonly answer: Step | null;
  readonly events: EventRecord[];
  readonly facts: CommitFacts | null;
  /** The event seq before it ran (to put back if its batch fails). */
  readonly seqBefore: number;
  /** What the operation threw (it then changed nothing): its caller gets this. */
  readonly thrown?: unknown;
}

interface ChangeRow {
  readonly seq: number;
  readonly body: string;
}

export class PostgresStore implements ArbiterStore {
  private readonly log: Logger;
  private model: Model;
  /** The last change-log batch applied to the model. */
  private seen: number;
  private lastSeq: number;
  private idWatermarks: Watermarks;
  private prunedUpTo: number;
  private durableSeq: number;
  private queue: Pending[] = [];
  private flushScheduled = false;
  /** Everything that reads or changes the model runs in turn, one at a time. */
  private turn: Promise<void> = Promise.resolve();
  /** Write batches, one at a time: each waits for the lock outside the model's turn. */
  private writing: Promise<void> = Promise.resolve();
  private pullQueued = false;
  private writer: pg.Client | null = null;
  private listener: pg.Client | null = null;
  /** The notification connection being opened, if it is. */
  private listening: Promise<void> | null = null;
  /** Set while the database cannot be reached: every request is answered 503 until a connection works again. */
  private outage: unknown = null;
  private recovery: Promise<void> | null = null;
  private closed = false;
  private poller: NodeJS.Timeout;
  private lastAnswerPrune = 0;
  private readonly readBudget: ReadBudget;
  private readonly listeners = new Set<EventListener>();
  private readonly observers = new Set<StoreObserver>();
  private readonly runnerStats = { batches: 0, items: 0, largestBatch: 0, refused: 0 };
  /** Reads waiting for the next "newest seq" query, and whether one is in flight. */
  private seqWaiters: { resolve(seq: number): void; reject(error: unknown): void }[] = [];
  private seqQuery = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly prisma: PrismaClient,
    loaded: Loaded & { seen: number },
    private readonly options: PostgresStoreOptions,
  ) {
    this.log = options.logger ?? SILENT;
    this.model = loaded.model;
    this.seen = loaded.seen;
    this.lastSeq = loaded.lastEventSeq;
    this.idWatermarks = loaded.idWatermarks;
    this.prunedUpTo = loaded.firstEventSeq - 1;
    this.durableSeq = loaded.lastEventSeq;
    this.readBudget = new ReadBudget(options.eventReadRate ?? 0);
    this.pool.on("error", (error) => this.log.warn({ err: error }, "an idle PostgreSQL read connection failed"));
    this.poller = setInterval(() => this.pullSoon(), options.pollIntervalMs ?? POLL_MS).unref();
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const { applied } = await applyPostgresMigrations(options.url, options.migrationsDir);
    if (applied.length > 0) options.logger?.info({ database: describePostgresUrl(options.url), migrations: applied }, "database migrated");
    const pool = new pg.Pool({
      connectionString: options.url, max: options.readConnections ?? 4, types: STORE_TYPES, application_name: "iommu-arbiter reader",
      connectionTimeoutMillis: 5000, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_MS,
    });
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: options.url }) });
    let loaded: Loaded & { seen: number };
    try {
      loaded = await loadConsistent(prisma, options.drivers);
    } catch (error) {
      await pool.end().catch(() => undefined);
      await prisma.$disconnect().catch(() => undefined);
      throw error;
    }
    const store = new PostgresStore(pool, prisma, loaded, options);
    try {
      if (options.notifications ?? true) await store.connectListener();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  // ---- the interface --------------------------------------------------------

  execute<T>(op: (model: Model) => Result<T>, options?: ExecuteOptions<T>): Promise<Result<T>> {
    this.refuseIfDown("write");
    return new Promise<Result<T>>((resolve, reject) => {
      this.queue.push({
        op: op as Pending["op"],
        remember: (options?.remember ?? null) as Pending["remember"],
        resolve: resolve as Pending["resolve"],
        reject,
      });
      this.scheduleFlush();
    });
  }

  async read<T>(view: (model: Model) => T): Promise<T> {
    this.refuseIfDown("read");
    const newest = await this.newestSeq();
    return this.exclusive(async () => {
      if (this.seen < newest) await this.pull();
      return view(this.model);
    });
  }

  async events(after: number, limit: number, filter: { groupId?: number } = {}): Promise<EventRecord[]> {
    return (await this.eventRows(after, limit, filter)).map((e) => ({ ...e, at: new Date(e.at) }));
  }

  async eventRows(after: number, limit: number, filter: { groupId?: number } = {}): Promise<EventRow[]> {
    this.refuseIfDown("read");
    await this.readBudget.take(limit);
    this.refuseIfDown("read");
    const where = filter.groupId !== undefined ? `"groupId" = $3::bigint AND ` : "";
    const params = filter.groupId !== undefined ? [after, limit, filter.groupId] : [after, limit];
    const { rows } = await this.query<EventTableRow>(
      `SELECT ${EVENT_COLUMNS} FROM "Event" WHERE ${where}"seq" > $1::bigint ORDER BY "seq" LIMIT $2`, params);
    return rows.map(eventOfTable);
  }

  async eventPage(query: PageQuery): Promise<string> {
    const rows = await this.eventRows(query.after, query.limit, query.groupId !== undefined ? { groupId: query.groupId } : {});
    return pageBody(rows, query.after, query.limit);
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  eventBounds(): EventBounds {
    return { durable: this.durableSeq, prunedUpTo: this.prunedUpTo };
  }

  async remembered(client: string, key: string): Promise<RememberedAnswer | undefined> {
    this.refuseIfDown("read");
    const { rows } = await this.query<AnswerRow>(`SELECT ${ANSWER_COLUMNS} FROM "IdempotentAnswer" WHERE "client" = $1 AND "key" = $2`, [client, key]);
    const row = rows[0];
    return row && !this.expired(row) ? rememberedAnswer(row) : undefined;
  }

  health(): StoreHealth {
    if (this.closed) return { ready: false, cause: "the store is closed" };
    if (this.outage !== null) return { ready: false, cause: `the PostgreSQL database cannot be reached: ${messageOf(this.outage)}` };
    return { ready: true, cause: null };
  }

  async readiness(): Promise<StoreHealth> {
    const health = this.health();
    if (!health.ready) return health;
    try {
      const { rows } = await this.query<{ migration_name: string }>(APPLIED_POSTGRES_MIGRATIONS_SQL);
      const applied = new Set(rows.map((r) => r.migration_name));
      const missing = migrationNames(this.options.migrationsDir).filter((name) => !applied.has(name));
      if (missing.length > 0) return { ready: false, cause: `migration ${missing.join(", ")} is not applied to the database` };
      return this.health();
    } catch (error) {
      return { ready: false, cause: `the database does not answer: ${messageOf(error)}` };
    }
  }

  stats(): StoreStats {
    const objects: Record<string, number> = {};
    for (const kind of KINDS) objects[kind] = this.model.count(kind);
    return { ...this.runnerStats, queued: this.queue.length, checkpoints: 0, framesCheckpointed: 0, objects };
  }

  observe(observer: StoreObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // What is queued is still written: its callers are waiting for an answer.
    while (this.queue.length > 0 || this.flushScheduled) {
      await new Promise((resolve) => setImmediate(resolve));
      await this.writing;
    }
    this.closed = true;
    clearInterval(this.poller);
    await this.writing;
    await this.turn;
    await this.recovery?.catch(() => undefined);
    this.readBudget.close();
    for (const waiter of this.seqWaiters.splice(0)) waiter.reject(new StoreUnavailableError("store is closed"));
    await this.listening?.catch(() => undefined);
    await Promise.allSettled([this.writer?.end(), this.listener?.end(), this.pool.end(), this.prisma.$disconnect()]);
    this.writer = null;
    this.listener = null;
  }

  // ---- one at a time ----------------------------------------------------------

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(work);
    this.turn = run.then(() => undefined, () => undefined);
    return run;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Let the requests already on the event loop join this batch. Batches
    // go one at a time (one write connection); reads and catching up go
    // between them, and while one waits for the lock.
    setImmediate(() => {
      const run = this.writing.then(async () => {
        this.flushScheduled = false;
        const batch = this.queue.splice(0, MAX_BATCH);
        if (this.queue.length > 0) this.scheduleFlush();
        if (batch.length === 0) return;
        if (this.outage !== null || this.closed) {
          for (const p of batch) p.reject(new StoreUnavailableError(this.outage ?? "store is closed"));
          return;
        }
        if ((await this.writeBatch(batch)) === "split") {
          // PostgreSQL refused a statement: find whose, by writing each
          // operation on its own, so that one it refuses fails alone.
          for (const pending of batch) await this.writeBatch([pending], false);
        }
      });
      this.writing = run.then(() => undefined, () => undefined);
    });
  }

  // ---- writing --------------------------------------------------------------

  /**
   * Runs and writes one batch; settles every caller in it, or answers
   * "split" when PostgreSQL refused the batch as a whole (its operations
   * are to be written one by one). Waits for the lock outside the model's
   * turn; runs the operations and commits in it.
   */
  private async writeBatch(first: readonly Pending[], join = true): Promise<"done" | "split"> {
    let batch = first;
    const started = performance.now();
    const keyed = batch.filter((p) => p.remember !== null).map((p) => p.remember!);
    let client: pg.Client;
    let opened: pg.QueryResult[];
    try {
      ({ client, opened } = await this.begin(
        `BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK_KEY}); SELECT "seq", "body" FROM "ChangeLog" WHERE "seq" > ${this.seen} ORDER BY "seq"; ` +
        `SELECT coalesce(max("seq"), 0) AS "newest" FROM "ChangeLog"` +
        (keyed.length > 0
          ? `; SELECT ${ANSWER_COLUMNS} FROM "IdempotentAnswer" WHERE ("client", "key") IN (${keyed.map((k) => `(${literal(k.client)}, ${literal(k.key)})`).join(", ")})`
          : ""),
      ));
    } catch (error) {
      this.fail(batch, error, false);
      return "done";
    }
    if (join) batch = [...batch, ...this.lateJoiners(MAX_BATCH - batch.length)];
    const locked = batch;
    return this.exclusive(() => this.underLock(client, opened, locked, started));
  }

  /**
   * Under the lock now: nothing commits until this transaction ends, and it
   * must end whatever happens here, or every replica's writes wait. Called in turn.
   */
  private async underLock(client: pg.Client, opened: pg.QueryResult[], batch: readonly Pending[], started: number): Promise<"done" | "split"> {
    const performed: Performed[] = [];
    const earlier = new Map<string, AnswerRow>();
    let text = "";
    let seq = this.seen;
    let watermarks: Watermarks = this.idWatermarks;
    let prunedUpTo = this.prunedUpTo;
    let events: EventRecord[] = [];
    try {
      const newest = (opened[3]!.rows[0] as { newest: number }).newest;
      if (newest < this.seen) await this.reload(BEHIND_US);
      else if (!this.follow(opened[2]!.rows as ChangeRow[])) await this.reload("the change log was pruned past this replica's position");
      for (const row of (opened[4]?.rows ?? []) as AnswerRow[]) if (!this.expired(row)) earlier.set(`${row.client}\0${row.key}`, row);

      for (const pending of batch) {
        const answered = pending.remember && earlier.get(`${pending.remember.client}\0${pending.remember.key}`);
        // Another replica ran a request with this key while this one was on its way.
        if (answered) performed.push({ pending, result: fail("internal-error", "answered earlier"), changes: null, answer: null, events: [], facts: null, seqBefore: this.lastSeq });
        else performed.push(this.perform(pending));
      }
      const changed = performed.filter((p) => p.changes !== null);
      seq = this.seen + 1;
      watermarks = { ...this.idWatermarks };
      const lastIds = this.model.lastIds();
      for (const kind of WATERMARK_KINDS) watermarks[kind] = Math.max(watermarks[kind], kind === "event" ? this.lastSeq : lastIds[kind]);
      events = changed.flatMap((p) => p.events);
      prunedUpTo = this.eventsToPrune(events.length);
      if (changed.length > 0) {
        const merged = mergeRows(changed.map((p) => p.changes!));
        const statements = batchStatements(merged, events);
        for (const p of changed) if (p.answer) statements.push(inline(p.answer));
        const raised = watermarkStatement(this.idWatermarks, watermarks);
        if (raised) statements.push(raised);
        const body: ChangeBody = changeBody(merged, events, watermarks, prunedUpTo);
        statements.push(`INSERT INTO "ChangeLog" ("seq", "body") VALUES (${seq}, ${literal(JSON.stringify(body))})`);
        if (prunedUpTo > this.prunedUpTo) statements.push(`DELETE FROM "Event" WHERE "seq" > ${this.prunedUpTo} AND "seq" <= ${prunedUpTo}`);
        if (seq % 100 === 0) statements.push(`DELETE FROM "ChangeLog" WHERE "seq" <= ${seq - CHANGE_LOG_KEPT}`);
        statements.push(...this.answersToPrune());
        statements.push(`SELECT pg_notify('${CHANGES_CHANNEL}', '${seq}')`);
        text = statements.join(";\n") + ";\n";
      }
    } catch (error) {
      await this.rollback(client, error);
      this.undo(performed);
      this.fail(batch, error, false);
      return "done";
    }
    try {
      await client.query(text + "COMMIT");
    } catch (error) {
      const unknown = isConnectionLoss(error);
      await this.rollback(client, error);
      this.undo(performed);
      if (unknown || batch.length === 1) {
        this.fail(batch, unknown ? new CommitOutcomeUnknownError(error) : error, unknown);
        return "done";
      }
      this.log.warn({ err: error, batch: batch.length }, "a write batch was refused; writing its operations one at a time");
      return "split";
    }
    // Committed.
    this.runnerStats.batches++;
    this.runnerStats.items += batch.length;
    this.runnerStats.largestBatch = Math.max(this.runnerStats.largestBatch, batch.length);
    if (text !== "") {
      this.seen = seq;
      this.idWatermarks = watermarks;
      this.prunedUpTo = prunedUpTo;
      this.announce(events);
    }
    for (const p of performed) {
      if (p.facts) for (const o of this.observers) this.tell(() => o.operationCommitted?.(p.facts!));
    }
    const seconds = (performance.now() - started) / 1000;
    for (const o of this.observers) this.tell(() => o.batchCommitted?.(batch.length, seconds));
    for (const p of performed) {
      const answered = p.pending.remember && earlier.get(`${p.pending.remember.client}\0${p.pending.remember.key}`);
      if (answered) p.pending.reject(new AnsweredEarlierError(rememberedAnswer(answered)));
      else if (p.thrown !== undefined) p.pending.reject(p.thrown);
      else p.pending.resolve(p.result);
    }
    return "done";
  }

  /**
   * Requests that arrived while this replica waited for the lock: they join
   * the batch now, which makes batches larger the longer other replicas
   * hold the lock. Not those with an Idempotency-Key: whether another
   * replica answered their key was not asked under this lock, so they wait
   * for the next batch.
   */
  private lateJoiners(room: number): Pending[] {
    const joining: Pending[] = [];
    const staying: Pending[] = [];
    for (const p of this.queue) (p.remember === null && joining.length < room ? joining : staying).push(p);
    this.queue = staying;
    return joining;
  }

  /**
   * Opens a batch's transaction and takes the lock. A kept connection found
   * dead (the server closed it while idle) is replaced once: nothing was
   * sent on it that could have applied.
   */
  private async begin(text: string): Promise<{ client: pg.Client; opened: pg.QueryResult[] }> {
    for (let attempt = 0; ; attempt++) {
      const reused = this.writer !== null;
      const client = await this.writerConnection();
      try {
        return { client, opened: (await client.query(text)) as unknown as pg.QueryResult[] };
      } catch (error) {
        await this.rollback(client, error);
        if (!(reused && attempt === 0 && isConnectionLoss(error))) throw error;
      }
    }
  }

  /** Runs one operation on the model and encodes what it changed. */
  private perform(pending: Pending): Performed {
    const seqBefore = this.lastSeq;
    let performed: ReturnType<typeof perform<unknown, StoredAnswer>>;
    try {
      performed = perform(this.model, pending.op, pending.remember?.answer);
    } catch (error) {
      // perform put the model back: the operation alone fails, once its batch is settled.
      return { pending, result: fail("internal-error", "the operation threw"), changes: null, answer: null, events: [], facts: null, seqBefore, thrown: error };
    }
    const { result, presented } = performed;
    if (!this.model.hasChanges() && !presented) return { pending, result, changes: null, answer: null, events: [], facts: null, seqBefore };
    const changes = this.model.takeChanges();
    const at = new Date();
    const events = changes.events.map((e): EventRecord => ({ ...e, seq: ++this.lastSeq, at }));
    try {
      // Refused here, for this operation alone; the batch is written set by set (postgres-batch.ts).
      checkStorable(changes, events);
      const answer = pending.remember && presented ? answerStep(pending.remember, presented, this.now()) : null;
      const facts = this.observers.size > 0 ? commitFacts(this.model, changes, events) : null;
      return { pending, result, changes, answer, events, facts, seqBefore };
    } catch (error) {
      // Nothing else ran since the operation: its changes go back, alone.
      this.model.restore(changes);
      this.lastSeq = seqBefore;
      if (error instanceof UnstorableValueError) {
        return { pending, result: fail("invalid-request", `${error.message}; nothing was changed`), changes: null, answer: null, events: [], facts: null, seqBefore };
      }
      return { pending, result: fail("internal-error", "encoding the operation threw"), changes: null, answer: null, events: [], facts: null, seqBefore, thrown: error };
    }
  }

  /** Puts the model back to before the batch, newest operation first. */
  private undo(performed: readonly Performed[]): void {
    for (let i = performed.length - 1; i >= 0; i--) {
      const p = performed[i]!;
      if (p.changes) this.model.restore(p.changes);
    }
    if (performed.length > 0) this.lastSeq = performed[0]!.seqBefore;
  }

  /** The batch's callers get 503; a lost connection also starts the outage. */
  private fail(batch: readonly Pending[], error: unknown, mayHaveApplied: boolean): void {
    this.runnerStats.refused += batch.length;
    const refusal = new StoreUnavailableError(mayHaveApplied && !(error instanceof CommitOutcomeUnknownError) ? new CommitOutcomeUnknownError(error) : error);
    for (const p of batch) p.reject(refusal);
    const cause = error instanceof CommitOutcomeUnknownError ? error.cause : error;
    if (isConnectionLoss(cause) || cause instanceof ConnectError) this.lost(cause);
    else this.log.error({ err: cause, refused: batch.length }, "PostgreSQL refused a write; its operations were answered 503");
  }

  private async rollback(client: pg.Client, error: unknown): Promise<void> {
    if (isConnectionLoss(error)) {
      this.dropWriter();
      return;
    }
    try {
      await client.query("ROLLBACK");
    } catch {
      this.dropWriter();
    }
  }

  private eventsToPrune(added: number): number {
    const retention = this.options.eventRetention ?? 0;
    if (retention <= 0 || this.lastSeq - retention <= this.prunedUpTo) return this.prunedUpTo;
    // A bounded slice per batch, so that turning retention on never stalls one commit.
    return Math.min(this.lastSeq - retention, this.prunedUpTo + 2 * added + 1000);
  }

  private answersToPrune(): string[] {
    const now = this.now();
    if (now - this.lastAnswerPrune < 1000) return [];
    this.lastAnswerPrune = now;
    const before = now - (this.options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS);
    return [`DELETE FROM "IdempotentAnswer" WHERE ctid IN (SELECT ctid FROM "IdempotentAnswer" WHERE "storedAt" <= ${before} LIMIT 1000)`];
  }

  // ---- following the other replicas -------------------------------------------

  /**
   * Applies change-log batches (in seq order) that follow this replica's
   * position. False when the first one does not: the log was pruned past
   * it, and only a full reload can catch up.
   */
  private follow(fetched: readonly ChangeRow[]): boolean {
    // A read may have applied some of them since they were fetched.
    const rows = fetched.filter((row) => row.seq > this.seen);
    if (rows.length > 0 && rows[0]!.seq !== this.seen + 1) return false;
    const events: EventRow[] = [];
    for (const row of rows) {
      const body = JSON.parse(row.body) as ChangeBody;
      applyChangeBody(this.model, body);
      this.seen = row.seq;
      this.lastSeq = Math.max(this.lastSeq, body.watermarks.event);
      for (const kind of WATERMARK_KINDS) this.idWatermarks[kind] = Math.max(this.idWatermarks[kind], body.watermarks[kind]);
      this.prunedUpTo = Math.max(this.prunedUpTo, body.prunedUpTo);
      events.push(...body.events);
    }
    this.announceRows(events);
    return true;
  }

  /** Applies what other replicas committed since this one last looked. Called in turn. */
  private async pull(): Promise<void> {
    const { rows } = await this.query<ChangeRow>(`SELECT "seq", "body" FROM "ChangeLog" WHERE "seq" > $1 ORDER BY "seq" LIMIT 1000`, [this.seen]);
    if (!this.follow(rows)) {
      await this.reload("the change log was pruned past this replica's position");
      return;
    }
    if (rows.length === 1000) await this.pull();
  }

  /** A notification or the poll: catch up in the background (once queued, not again). */
  private pullSoon(notified = false): void {
    if (this.pullQueued || this.closed || this.outage !== null) return;
    // Reads and writes catch up by themselves, a batch on its way under the
    // lock. Each notification is pulled at once only for live streams; the
    // poll keeps an idle replica near the head of the log all the same, so
    // that its next batch has little to apply while it holds the lock.
    if (this.flushScheduled || this.queue.length > 0 || (notified && this.listeners.size === 0)) return;
    this.pullQueued = true;
    void this.exclusive(async () => {
      this.pullQueued = false;
      if (this.closed || this.outage !== null) return;
      try {
        await this.pull();
      } catch (error) {
        if (isConnectionLoss(error)) this.lost(error);
        else this.log.error({ err: error }, "could not apply the change log");
      }
    });
  }

  /**
   * The whole model from the database, in one consistent snapshot; the
   * events committed meanwhile are announced so that live streams have no
   * hole. Called in turn.
   */
  private async reload(why: string): Promise<void> {
    const before = this.durableSeq;
    const loaded = await loadConsistent(this.prisma, this.options.drivers);
    this.model = loaded.model;
    this.seen = loaded.seen;
    this.lastSeq = loaded.lastEventSeq;
    this.idWatermarks = loaded.idWatermarks;
    this.prunedUpTo = Math.max(this.prunedUpTo, loaded.firstEventSeq - 1);
    this.log.warn({ seen: this.seen, lastEventSeq: this.lastSeq }, `the model was reloaded from the database: ${why}`);
    for (let after = before; after < this.lastSeq;) {
      const { rows } = await this.query<EventTableRow>(`SELECT ${EVENT_COLUMNS} FROM "Event" WHERE "seq" > $1 AND "seq" <= $2 ORDER BY "seq" LIMIT 1000`, [after, this.lastSeq]);
      if (rows.length === 0) break;
      this.announceRows(rows.map(eventOfTable));
      after = rows[rows.length - 1]!.seq;
    }
    // A database that lost commits hands their seqs out again: announce from there.
    this.durableSeq = why === BEHIND_US ? this.lastSeq : Math.max(this.durableSeq, this.lastSeq);
  }

  /** This replica's own events, just committed; rows are built only for someone to hear them. */
  private announce(events: readonly EventRecord[]): void {
    if (events.length === 0) return;
    if (this.listeners.size === 0) this.durableSeq = Math.max(this.durableSeq, events[events.length - 1]!.seq);
    else this.announceRows(events.map(eventRow));
  }

  private announceRows(events: readonly EventRow[]): void {
    if (this.listeners.size === 0 && events.length > 0) {
      this.durableSeq = Math.max(this.durableSeq, events[events.length - 1]!.seq);
      return;
    }
    const fresh = events.filter((e) => e.seq > this.durableSeq);
    if (fresh.length === 0) return;
    this.durableSeq = fresh[fresh.length - 1]!.seq;
    for (const listener of this.listeners) {
      try {
        listener(fresh);
      } catch (error) {
        this.log.error({ err: error }, "an event listener failed");
      }
    }
  }

  /**
   * The newest change-log seq, from a query sent after the call: reads
   * that arrive while one is in flight wait for the next, which then
   * serves them all.
   */
  private newestSeq(): Promise<number> {
    const answer = new Promise<number>((resolve, reject) => this.seqWaiters.push({ resolve, reject }));
    if (!this.seqQuery) void this.askNewestSeq();
    return answer;
  }

  private async askNewestSeq(): Promise<void> {
    this.seqQuery = true;
    while (this.seqWaiters.length > 0) {
      const waiting = this.seqWaiters.splice(0);
      try {
        const { rows } = await this.query<{ seq: number | null }>(`SELECT max("seq") AS "seq" FROM "ChangeLog"`);
        const seq = rows[0]?.seq ?? 0;
        for (const w of waiting) w.resolve(seq);
      } catch (error) {
        const refusal = new StoreUnavailableError(error, 1, "read");
        for (const w of waiting) w.reject(isConnectionLoss(error) ? refusal : error);
      }
    }
    this.seqQuery = false;
  }

  // ---- connections and outages --------------------------------------------------

  /** A read; one retry on a fresh connection when the pooled one was found dead (reads change nothing). */
  private async query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      try {
        return await this.pool.query<R>(text, params);
      } catch (error) {
        if (!isConnectionLoss(error)) throw error;
        return await this.pool.query<R>(text, params);
      }
    } catch (error) {
      if (isConnectionLoss(error)) {
        this.lost(error);
        throw new StoreUnavailableError(error, 1, "read");
      }
      throw error;
    }
  }

  private async writerConnection(): Promise<pg.Client> {
    if (this.writer) return this.writer;
    const client = new pg.Client({
      connectionString: this.options.url, types: STORE_TYPES, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_MS, connectionTimeoutMillis: 5000,
      application_name: "iommu-arbiter writer",
      // A replica that stops (SIGSTOP, a hung VM) in the middle of a batch
      // would hold the write lock of every replica: the server ends its
      // transaction. The store's own transactions are never idle that long.
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    });
    client.on("error", (error) => {
      this.log.warn({ err: error }, "the PostgreSQL write connection failed");
      if (this.writer === client) this.dropWriter();
    });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw new ConnectError(error);
    }
    this.writer = client;
    return client;
  }

  private dropWriter(): void {
    const writer = this.writer;
    this.writer = null;
    void writer?.end().catch(() => undefined);
  }

  /** Connects the notification connection, once: callers at the same time share one attempt. */
  private connectListener(): Promise<void> {
    this.listening ??= this.openListener().finally(() => { this.listening = null; });
    return this.listening;
  }

  private async openListener(): Promise<void> {
    if (this.listener || this.closed) return;
    const client = new pg.Client({
      connectionString: this.options.url, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_MS, connectionTimeoutMillis: 5000,
      application_name: "iommu-arbiter listener",
    });
    client.on("notification", (message) => {
      if (Number(message.payload) > this.seen) this.pullSoon(true);
    });
    client.on("error", (error) => {
      if (this.listener === client) this.listener = null;
      void client.end().catch(() => undefined);
      if (this.closed) return;
      // The poll carries on meanwhile; if the database itself is gone, so is the replica.
      this.log.warn({ err: error }, "the PostgreSQL notification connection failed; reconnecting");
      this.connectListener().catch((again: unknown) => this.lost(again));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
  }

  /** The database is gone: refuse everything until it is back. */
  private lost(error: unknown): void {
    if (this.closed) return;
    if (this.outage === null) this.log.error({ err: error }, "lost the PostgreSQL database; requests are answered 503 until it is back");
    this.outage = error;
    this.recovery ??= this.recover().finally(() => { this.recovery = null; });
  }

  private async recover(): Promise<void> {
    while (!this.closed) {
      await new Promise((resolve) => setTimeout(resolve, this.options.recoveryIntervalMs ?? 500).unref());
      if (this.closed) return;
      try {
        const client = await this.writerConnection();
        await client.query("SELECT 1");
        if (!this.listener && (this.options.notifications ?? true)) await this.connectListener();
        // Whatever committed meanwhile, this replica's last batch included if
        // its COMMIT went through; nothing exclusive runs meanwhile, so a
        // log shorter than this replica's position is a database that lost
        // commits it had acknowledged (a failover to a standby behind it).
        await this.exclusive(async () => {
          const { rows } = await this.query<{ newest: number }>(`SELECT coalesce(max("seq"), 0) AS "newest" FROM "ChangeLog"`);
          if (rows[0]!.newest < this.seen) await this.reload(BEHIND_US);
          else await this.pull();
        });
        this.outage = null;
        this.log.warn({ seen: this.seen }, "the PostgreSQL database is back; requests are served again");
        return;
      } catch (error) {
        this.outage = error instanceof StoreUnavailableError ? error.cause : error;
        this.dropWriter();
      }
    }
  }

  private refuseIfDown(use: "read" | "write"): void {
    if (this.closed) throw new StoreUnavailableError("store is closed", 1, use);
    if (this.outage !== null) throw new StoreUnavailableError(this.outage, 1, use);
  }

  private tell(notify: () => void): void {
    try {
      notify();
    } catch (error) {
      this.log.error({ err: error }, "a store observer failed");
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private expired(answer: { storedAt: number }): boolean {
    return this.now() - answer.storedAt >= (this.options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS);
  }
}

/** A connection could not be opened (the database is down or unreachable). */
class ConnectError extends Error {
  constructor(cause: unknown) {
    super(`cannot connect to PostgreSQL: ${messageOf(cause)}`, { cause });
  }
}

const EVENT_COLUMNS = `"seq", "at", "op", "owner", "groupId", "deviceId", "domainId", "containerId", "errno", "code", "reason", "detail", "kind", "objectId"`;
type EventTableRow = Omit<EventRow, "errno" | "reason" | "detail" | "code"> & {
  errno: string | null; code: number; reason: string | null; detail: string | null;
};

/** An Event row as the API shows it (the outcome completed as the SQLite store's pages complete it). */
function eventOfTable(r: EventTableRow): EventRow {
  return {
    seq: r.seq, at: r.at, op: r.op, owner: r.owner, groupId: r.groupId, deviceId: r.deviceId, domainId: r.domainId,
    containerId: r.containerId, ...storedOutcome(r.errno, r.code, r.reason, r.detail), kind: r.kind, objectId: r.objectId,
  };
}

const ANSWER_COLUMNS = `"client", "key", "fingerprint", "status", "contentType", "headers", "body", "storedAt"`;
interface AnswerRow {
  client: string; key: string; fingerprint: string; status: number; contentType: string; headers: string; body: string; storedAt: number;
}

function rememberedAnswer(row: AnswerRow): RememberedAnswer {
  const headers = JSON.parse(row.headers) as Record<string, string>;
  return {
    fingerprint: row.fingerprint, status: row.status, contentType: row.contentType, body: row.body, storedAt: Number(row.storedAt),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
  };
}

/** The model, the id watermarks and the change-log position, all from one snapshot. */
async function loadConsistent(prisma: PrismaClient, drivers: DriverTable): Promise<Loaded & { seen: number }> {
  return prisma.$transaction(async (tx) => {
    const loaded = await loadTopology(tx, drivers);
    const newest = await tx.changeLog.findFirst({ orderBy: { seq: "desc" }, select: { seq: true } });
    return { ...loaded, seen: Number(newest?.seq ?? 0) };
  }, { isolationLevel: "RepeatableRead", timeout: 600_000, maxWait: 10_000 });
}

const SILENT = pino({ level: "silent" });

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
