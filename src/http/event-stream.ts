// The live event log: GET /v1/events as Server-Sent Events. Each durable
// event is one message, `id: <seq>` and `data: <the event as the paged log
// shows it>`; a client resumes with Last-Event-ID (what EventSource sends on
// reconnect) or ?after=, and gets exactly the events after that seq: the
// backlog read from the database, then the live ones, with no gap and no
// duplicate, also across a restart of the server (seqs are the database's).
//
// A stream subscribes before it reads its backlog, holds the live events
// that arrive meanwhile, and drops those the backlog already sent: seqs only
// grow, so "greater than the last one sent" is the whole rule. Events are
// announced by the store only once durable (runner.ts), so no client sees an
// event the disk could still lose.
//
// Bounded: at most `maxStreams` streams at once (503 beyond); a stream whose
// client does not read keeps at most `bufferEvents` events, then is closed
// (the client resumes where it stopped); the app's close ends every stream,
// so shutdown does not wait for clients that never hang up.
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from "fastify";
import type { EventRow } from "../store/event-page.js";
import type { ArbiterStore } from "../store/store.js";
import { failure } from "../core/result.js";
import { sendAnswer } from "./answer.js";
import { headerProblem, sendProblem, type Parsed } from "./problem.js";

export interface StreamLimits {
  /** Streams open at once; the next is refused with 503. */
  readonly maxStreams: number;
  /** ms between comment lines on a quiet stream (keeps proxies and the socket timeout from closing it). */
  readonly heartbeatMs: number;
  /** Events held for a client that does not read; past it the stream is closed. */
  readonly bufferEvents: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxStreams: 100, heartbeatMs: 15_000, bufferEvents: 10_000 };

/** Backlog rows read per query: the backlog is sent page by page, each after the client took the last. */
const BACKLOG_PAGE = 1000;

/** How a stream starts: after this seq, optionally one group's events only. */
export interface StreamRequest {
  readonly after: number | null;
  readonly groupId?: number | undefined;
}

/** Whether the client asked for the stream rather than the JSON page. */
export function wantsStream(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  return typeof accept === "string" && accept.toLowerCase().includes("text/event-stream");
}

/** Last-Event-ID: the seq of the last event the client has, a decimal integer. */
export function lastEventId(request: FastifyRequest): Parsed<number | null> {
  const raw = request.headers["last-event-id"];
  if (raw === undefined) return { ok: true, value: null };
  const text = Array.isArray(raw) ? raw[0] ?? "" : raw;
  const value = /^\d{1,16}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    return { ok: false, field: "headers.last-event-id", reason: "invalid-request", message: "must be the seq of an event (a non-negative integer)" };
  }
  return { ok: true, value };
}

function message(event: EventRow): string {
  return `id: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`;
}

class Stream {
  /** The seq of the last event written (or skipped by the filter); only greater ones follow. */
  private sent: number;
  /** Live events that arrived while the backlog was read or the client was not reading. */
  private held: EventRow[] = [];
  private caughtUp = false;
  private congested = false;
  private closed = false;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly reply: FastifyReply,
    private readonly store: ArbiterStore,
    start: number,
    private readonly groupId: number | undefined,
    private readonly limits: StreamLimits,
    private readonly log: FastifyBaseLogger,
    private readonly onClose: (stream: Stream) => void,
  ) {
    this.sent = start;
    const raw = reply.raw;
    // Sent at once so the client knows the stream is open; `retry` sets EventSource's reconnect delay.
    this.write(`retry: 2000\n: events after ${start}\n\n`);
    this.unsubscribe = store.subscribe((events) => this.live(events));
    this.heartbeat = setInterval(() => {
      if (!this.congested) raw.write(": heartbeat\n\n");
    }, limits.heartbeatMs);
    this.heartbeat.unref();
    raw.on("close", () => this.close());
    raw.on("drain", () => this.drained());
  }

  /** Sends the backlog after `start`, then whatever arrived live meanwhile. */
  async run(): Promise<void> {
    const { prunedUpTo } = this.store.eventBounds();
    if (this.sent < prunedUpTo) {
      // The events the client asked to resume after are gone: it must know
      // it missed some, and rebuild what it shows from the resources.
      this.write(`event: gap\ndata: ${JSON.stringify({ after: this.sent, prunedUpTo })}\n\n`);
      this.sent = prunedUpTo;
    }
    try {
      for (;;) {
        const page = await this.store.eventRows(this.sent, BACKLOG_PAGE, this.groupId === undefined ? {} : { groupId: this.groupId });
        if (this.closed) return;
        for (const e of page) this.send(e);
        if (page.length < BACKLOG_PAGE) break;
        if (this.congested) await this.untilDrained();
        if (this.closed) return;
      }
    } catch (error) {
      this.log.warn({ err: error }, "event stream: the backlog could not be read; closing the stream");
      this.end();
      return;
    }
    this.caughtUp = true;
    this.flush();
  }

  private live(events: readonly EventRow[]): void {
    if (this.closed) return;
    for (const e of events) {
      if (e.seq <= this.sent) continue;
      if (this.groupId !== undefined && e.groupId !== this.groupId) continue;
      this.held.push(e);
    }
    if (this.held.length > this.limits.bufferEvents) {
      this.log.info({ held: this.held.length }, "event stream: the client does not keep up; closing it (it resumes with Last-Event-ID)");
      this.end();
      return;
    }
    if (this.caughtUp) this.flush();
  }

  private flush(): void {
    while (this.held.length > 0 && !this.congested && !this.closed) {
      const batch = this.held;
      this.held = [];
      for (let i = 0; i < batch.length; i++) {
        if (this.congested) {
          this.held = batch.slice(i).concat(this.held);
          return;
        }
        this.send(batch[i]!);
      }
    }
  }

  private send(event: EventRow): void {
    if (event.seq <= this.sent) return;
    this.sent = event.seq;
    this.write(message(event));
  }

  private write(text: string): void {
    if (!this.reply.raw.write(text)) this.congested = true;
  }

  private drainWaiters: (() => void)[] = [];

  private untilDrained(): Promise<void> {
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private drained(): void {
    this.congested = false;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
    if (this.caughtUp) this.flush();
  }

  /** Ends the response; the client sees the stream end and may reconnect. */
  end(): void {
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.held = [];
    clearInterval(this.heartbeat);
    this.unsubscribe();
    this.drained();
    this.onClose(this);
  }
}

export class EventStreams {
  private readonly open = new Set<Stream>();

  constructor(private readonly store: ArbiterStore, private readonly limits: StreamLimits) {}

  get size(): number {
    return this.open.size;
  }

  /** Answers the request with a stream, or with the problem that refuses it. */
  start(request: FastifyRequest, reply: FastifyReply, query: StreamRequest): FastifyReply | undefined {
    const resume = lastEventId(request);
    if (!resume.ok) return sendAnswer(reply, headerProblem(reply, resume));
    if (this.open.size >= this.limits.maxStreams) {
      reply.header("retry-after", "5");
      return sendProblem(reply, failure("too-many-streams", `the server already holds its ${this.limits.maxStreams} event streams; retry later or page GET /v1/events`));
    }
    // Last-Event-ID wins: it is where a reconnecting client really is.
    const start = resume.value ?? query.after ?? this.store.eventBounds().durable;
    const headers = {
      ...reply.getHeaders(),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // Proxies (nginx) would otherwise buffer the stream.
      "x-accel-buffering": "no",
    };
    reply.hijack();
    reply.raw.writeHead(200, headers as Record<string, string>);
    const stream = new Stream(reply, this.store, start, query.groupId, this.limits, request.log, (s) => this.open.delete(s));
    this.open.add(stream);
    void stream.run();
    return undefined;
  }

  /** Ends every stream (the app is closing). */
  closeAll(): void {
    for (const stream of [...this.open]) stream.end();
  }
}
