// The live event log: GET /v1/events as Server-Sent Events. Each message is
// one Event (the same object as an item of the paged log), its `id` the
// event's seq. When the stream ends (the server stopped) or the connection
// fails, the follower reconnects with Last-Event-ID: the server resumes right
// after the last event received, so nothing is missed or seen twice.
// The parser is the WHATWG event-stream format, reduced to what the client
// reads: `id`, `data`, `retry` and comment lines.
import { setTimeout as sleep } from "node:timers/promises";
import { isProblemDocument, problemError, TransportError } from "./errors.js";
import { isConnectionError, parseJson, retryAfterSeconds, type Transport } from "./transport.js";
import type { Event } from "./types.js";

export interface FollowOptions {
  /** Start right after this seq (else: only events committed from now on). */
  after?: number;
  /** Only this group's events. */
  groupId?: number;
  /** Stop following: the iteration ends. */
  signal?: AbortSignal;
  /**
   * ms without a byte (an event or a heartbeat comment) after which the
   * connection is taken for dead and replaced (default 60000; 0: never). A
   * server that vanished without closing the connection is noticed so.
   */
  idleTimeoutMs?: number;
  /** Reconnections in a row without receiving anything before giving up (default: unbounded). */
  maxReconnects?: number;
  /** Told before each reconnection wait (for a log line). */
  onReconnect?: (info: { attempt: number; delayMs: number; cause: unknown }) => void;
}

interface Message {
  id: string | null;
  data: string;
  retry: number | null;
}

/** Messages of an event stream, as they complete. */
async function* messages(body: AsyncIterable<Uint8Array>): AsyncGenerator<Message> {
  let buffer = "";
  let data: string[] = [];
  let id: string | null = null;
  let retry: number | null = null;
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = buffer.search(/[\r\n]/);
      if (end < 0) break;
      // A CR at the end may be the first half of a CRLF still on its way.
      if (buffer[end] === "\r" && end === buffer.length - 1) break;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(buffer.startsWith("\r\n", end) ? end + 2 : end + 1);
      if (line === "") {
        if (data.length > 0 || retry !== null) yield { id, data: data.join("\n"), retry };
        data = [];
        retry = null;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
      else if (field === "retry" && /^\d+$/.test(value)) retry = Number(value);
    }
  }
}

/** The events, in seq order, for as long as the signal lets it run. */
export async function* followEvents(transport: Transport, options: FollowOptions = {}): AsyncGenerator<Event, void, undefined> {
  const { signal } = options;
  let lastId: string | null = options.after !== undefined ? String(options.after) : null;
  let failures = 0;
  let serverRetryMs: number | null = null;
  const url = transport.url("/v1/events", { groupId: options.groupId });
  const idleMs = options.idleTimeoutMs ?? 60_000;
  while (!signal?.aborted) {
    let cause: unknown;
    const idle = new IdleTimer(idleMs);
    try {
      const response = await fetch(url, {
        headers: transport.headers({ accept: "text/event-stream", ...(lastId !== null ? { "last-event-id": lastId } : {}) }),
        signal: signal ? AbortSignal.any([signal, idle.signal]) : idle.signal,
      });
      if (!response.ok) {
        const text = await response.text();
        const parsed = parseJson(text);
        if (!isProblemDocument(parsed)) throw new TransportError(`event stream: ${response.status} ${response.statusText}`, failures + 1);
        const retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
        const error = problemError(parsed, retryAfter);
        // Only a busy server is waited for; any other refusal (a token, a bad groupId) ends the follow.
        if (!((response.status === 503 || response.status === 429) && retryAfter !== null)) throw error;
        serverRetryMs = retryAfter * 1000;
        cause = error;
      } else if (!response.headers.get("content-type")?.startsWith("text/event-stream") || !response.body) {
        throw new TransportError(`event stream: the server answered ${response.headers.get("content-type") ?? "nothing"}, not text/event-stream`, failures + 1);
      } else {
        for await (const message of messages(idle.watch(response.body))) {
          if (message.retry !== null) serverRetryMs = message.retry;
          if (message.id !== null) lastId = message.id;
          if (message.data === "") continue;
          failures = 0;
          // The consumer's time with the event is not the server's silence.
          idle.pause();
          yield JSON.parse(message.data) as Event;
          idle.restart();
        }
        cause = new TransportError("event stream ended", failures + 1);
      }
    } catch (error) {
      if (signal?.aborted) return;
      if (idle.signal.aborted) cause = new TransportError(`event stream: nothing for ${idleMs} ms`, failures + 1, { cause: error });
      else if (isConnectionError(error)) cause = error;
      else throw error;
    } finally {
      idle.pause();
    }
    failures++;
    if (options.maxReconnects !== undefined && failures > options.maxReconnects) {
      throw new TransportError(`event stream: no events after ${failures} connections`, failures, { cause });
    }
    const delayMs = Math.max(serverRetryMs ?? 0, transport.backoff(failures));
    options.onReconnect?.({ attempt: failures, delayMs, cause });
    try {
      await sleep(delayMs, undefined, signal ? { signal } : {});
    } catch {
      return;
    }
  }
}


/** Aborts its signal when `ms` pass without a chunk of the stream it watches. */
class IdleTimer {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  readonly signal = this.controller.signal;

  constructor(private readonly ms: number) {
    this.restart();
  }

  restart(): void {
    this.pause();
    if (this.ms > 0) this.timer = setTimeout(() => this.controller.abort(), this.ms);
  }

  pause(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  async *watch(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      this.restart();
      yield chunk;
    }
  }
}
