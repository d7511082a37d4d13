// One GET /v1/events stream (Server-Sent Events, text/event-stream): every
// event committed after the client's cursor, as `id: <seq>` and `data: <Event
// JSON>`, then each new one once it is durable.
//
// The stream never holds events of its own: it keeps only its cursor (the
// last seq sent) and, whenever the store announces a commit, reads what lies
// after the cursor from the database, up to the last durable seq. Catching up
// from a resume point and following live are the same loop, so there is no
// window between "read the backlog" and "subscribe" in which an event could
// be missed or sent twice, and a restarted server (seqs come from the
// database) continues where the client's Last-Event-ID says.
//
// A slow client: what it has not read waits in the response's buffer. Past
// `bufferLimit` bytes the stream is closed (the client resumes with
// Last-Event-ID, from the database), so one stream holds at most about that
// much memory, whatever the commit rate.
import type { ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import type { EventRecord } from "../core/entities.js";
import type { ArbiterStore } from "../store/store.js";

export interface EventStreamOptions {
  /** Bytes the response may have queued for the client before the stream is closed. */
  readonly bufferLimit: number;
  /** Ms between heartbeat comments. */
  readonly heartbeatMs: number;
}

/** Rows read from the database per round while catching up. */
const PAGE = 500;

/** Why a stream ended (logged). */
export type EndCause = "client-closed" | "slow-client" | "shutdown" | "store-unavailable";

export class EventStream {
  private cursor: number;
  private pumping = false;
  private again = false;
  private closed = false;
  private sent = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: ArbiterStore,
    private readonly res: ServerResponse,
    /** The stream sends events with seq strictly greater. */
    after: number,
    private readonly groupId: number | undefined,
    private readonly options: EventStreamOptions,
    private readonly log: FastifyBaseLogger,
    private readonly onEnd: (stream: EventStream) => void,
  ) {
    this.cursor = after;
    res.once("close", () => this.finish("client-closed"));
    this.heartbeat = setInterval(() => this.write(": heartbeat\n\n"), options.heartbeatMs).unref();
    // Subscribed before the first read: a commit during that read sets `again`.
    this.unsubscribe = store.onCommit((events) => {
      if (groupId === undefined || events.some((e) => e.groupId === groupId)) void this.pump();
    });
    const { firstSeq } = store.eventLog();
    // Events after the cursor were pruned: say so before the rest (an SSE
    // message with its own event type, so EventSource's onmessage skips it).
    if (after < firstSeq - 1) {
      this.write(`event: reset\ndata: ${JSON.stringify({ after, firstSeq })}\n\n`);
    } else {
      this.write(`: events after ${after}\n\n`);
    }
    void this.pump();
  }

  /** Ends the stream: gracefully when everything was flushed, else at once (the client resumes). */
  end(cause: EndCause): void {
    if (this.closed) return;
    if (this.res.writableLength > 0) this.res.destroy();
    else this.res.end();
    this.finish(cause);
  }

  private finish(cause: EndCause): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.unsubscribe();
    this.log.debug({ cause, sent: this.sent, lastEventId: this.cursor }, "event stream ended");
    this.onEnd(this);
  }

  /** Sends what lies between the cursor and the last durable event; one round at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        const target = this.store.eventLog().lastSeq;
        while (!this.closed && this.cursor < target) {
          const rows = await this.store.events(this.cursor, PAGE, this.groupId === undefined ? {} : { groupId: this.groupId });
          for (const event of rows) {
            if (event.seq > target || this.closed) break;
            this.send(event);
          }
          // Everything up to the target was read: nothing of this stream's lies before it.
          const last = rows[rows.length - 1];
          if (rows.length < PAGE || (last !== undefined && last.seq >= target)) this.cursor = Math.max(this.cursor, target);
        }
      } while (this.again && !this.closed);
    } catch (error) {
      this.log.warn({ err: error }, "event stream could not read the event log; closing it");
      this.end("store-unavailable");
    } finally {
      this.pumping = false;
    }
  }

  private send(event: EventRecord): void {
    this.write(`id: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`);
    this.cursor = event.seq;
    this.sent++;
  }

  private write(chunk: string): void {
    if (this.closed) return;
    this.res.write(chunk);
    if (this.res.writableLength > this.options.bufferLimit) {
      this.log.info({ queued: this.res.writableLength, lastEventId: this.cursor }, "event stream client too slow; closing the stream");
      this.res.destroy();
      this.finish("slow-client");
    }
  }
}
