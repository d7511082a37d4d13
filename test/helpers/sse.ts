// A Server-Sent Events client for tests: one GET on its own connection
// (node:http), the body parsed into messages as they arrive.
import http from "node:http";

export interface SseMessage {
  readonly id: string | null;
  readonly event: string | null;
  readonly data: string;
}

export interface SseStream {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Messages (not comments) received so far, in order. */
  readonly messages: SseMessage[];
  /** Comment lines received so far (without the leading colon). */
  readonly comments: string[];
  /** Resolves once `count` messages in all have arrived (rejects if the stream ends first). */
  waitFor(count: number): Promise<SseMessage[]>;
  /** Resolves once a comment matching `pattern` has arrived. */
  waitForComment(pattern: RegExp): Promise<void>;
  /** Resolves when the server ends or drops the stream. */
  readonly ended: Promise<void>;
  /** The body as text when the answer is not a stream (a problem document). */
  text(): Promise<string>;
  close(): void;
}

/** Opens `url` with Accept: text/event-stream and resolves once the response headers arrive. */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: "text/event-stream", ...headers }, agent: false }, (res) => {
      const messages: SseMessage[] = [];
      const comments: string[] = [];
      let buffer = "";
      let raw = "";
      let done = false;
      const waiters: (() => void)[] = [];
      const notify = () => { for (const w of waiters.splice(0)) w(); };
      let endedResolve!: () => void;
      const ended = new Promise<void>((r) => { endedResolve = r; });
      const finish = () => {
        if (done) return;
        done = true;
        endedResolve();
        notify();
      };
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        raw += chunk;
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let id: string | null = null;
          let event: string | null = null;
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length > 0 || id !== null || event !== null) messages.push({ id, event, data: data.join("\n") });
        }
        notify();
      });
      res.on("end", finish);
      res.on("close", finish);
      res.on("error", finish);
      const wait = (ready: () => boolean, what: string) => new Promise<void>((ok, fail) => {
        const check = () => {
          if (ready()) return ok();
          if (done) return fail(new Error(`the stream ended before ${what}; got ${JSON.stringify(messages)}`));
          waiters.push(check);
        };
        check();
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages,
        comments,
        ended,
        waitFor: async (count) => {
          await wait(() => messages.length >= count, `${count} messages`);
          return messages.slice(0, count);
        },
        waitForComment: (pattern) => wait(() => comments.some((c) => pattern.test(c)), `a comment like ${pattern}`),
        text: async () => {
          await ended;
          return raw;
        },
        close: () => { req.destroy(); },
      });
    });
    req.on("error", reject);
  });
}
