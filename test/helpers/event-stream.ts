// A Server-Sent Events reader for tests: one GET with
// `Accept: text/event-stream` on its own connection, parsed message by
// message as the bytes arrive.
import http from "node:http";

export interface StreamMessage {
  readonly id: string | null;
  readonly event: string | null;
  readonly data: string;
}

export interface EventStreamReader {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Every message so far (comments excluded). */
  readonly messages: StreamMessage[];
  /** The data of the messages without an `event:` field, parsed. */
  events<T = Record<string, unknown>>(): T[];
  /** Resolves once `count` plain events have arrived (rejects if the stream ends first). */
  waitFor(count: number): Promise<void>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  /** The raw body, for non-200 answers. */
  body(): string;
  pause(): void;
  resume(): void;
  close(): void;
}

export function openEventStream(base: string, path = "/v1/events", headers: Record<string, string> = {}): Promise<EventStreamReader> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { accept: "text/event-stream", ...headers } }, (res) => {
      const messages: StreamMessage[] = [];
      let raw = "";
      let buffered = "";
      let waiters: { count: number; resolve: () => void; reject: (e: Error) => void }[] = [];
      let done = false;
      const plain = () => messages.filter((m) => m.event === null);
      const settle = () => {
        waiters = waiters.filter((w) => {
          if (plain().length >= w.count) w.resolve();
          else if (done) w.reject(new Error(`the stream ended after ${plain().length} of ${w.count} events`));
          else return true;
          return false;
        });
      };
      const ended = new Promise<void>((end) => {
        res.on("end", () => { done = true; settle(); end(); });
        res.on("close", () => { done = true; settle(); end(); });
      });
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        raw += chunk;
        buffered += chunk;
        let cut: number;
        while ((cut = buffered.indexOf("\n\n")) >= 0) {
          const block = buffered.slice(0, cut);
          buffered = buffered.slice(cut + 2);
          let id: string | null = null;
          let event: string | null = null;
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":") || line.startsWith("retry:")) continue;
            if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length > 0) messages.push({ id, event, data: data.join("\n") });
        }
        settle();
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages,
        events: <T>() => plain().map((m) => JSON.parse(m.data) as T),
        waitFor: (count) => new Promise<void>((ok, fail) => {
          waiters.push({ count, resolve: ok, reject: fail });
          settle();
        }),
        ended,
        body: () => raw,
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
  });
}
