// The event-stream follower against a peer that speaks the protocol as
// COMMON's spec and the WHATWG event-stream format have it (id + data per
// event, comment heartbeats, resume after Last-Event-ID), and that ends its
// streams early and splits its writes anywhere: the follower must reconnect
// and resume with no gap and no duplicate; and the real route, in process
// (test/cli/events-follow.test.ts follows it across a server restart).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ArbiterClient, ProblemError, type Event } from "../../src/client/index.js";
import { listeningArbiter } from "../helpers/listening.js";

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

function event(seq: number): Event {
  return {
    seq, at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(), op: "attach-group", owner: null,
    groupId: 1, deviceId: null, domainId: 11, containerId: null, errno: null, code: 0, soft: false, reason: null, detail: null,
    kind: null, objectId: null,
  };
}

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function take<T>(iterable: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  if (n === 0) return out;
  for await (const item of iterable) {
    out.push(item);
    if (out.length === n) break;
  }
  return out;
}

describe("following the event stream", () => {
  it("reconnects after each early end with Last-Event-ID, and gets every event once, in order", async () => {
    const log = [1, 2, 3, 4, 5, 6, 7].map(event);
    const resumedAfter: (string | undefined)[] = [];
    const base = await listen((req, res) => {
      const last = req.headers["last-event-id"] as string | undefined;
      resumedAfter.push(last);
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
      res.write(": heartbeat\n\n");
      // Two events per connection, each split in the middle of its JSON and with CRLF line ends, then the stream ends.
      const next = log.filter((e) => e.seq > Number(last ?? 0)).slice(0, 2);
      for (const e of next) {
        const text = `id: ${e.seq}\r\ndata: ${JSON.stringify(e)}\r\n\r\n`;
        res.write(text.slice(0, 20));
        res.write(text.slice(20));
      }
      res.end();
    });
    const client = new ArbiterClient({ baseUrl: base, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
    const got = await take(client.events.follow({ after: 0 }), 7);
    expect(got).toEqual(log);
    expect(resumedAfter).toEqual(["0", "2", "4", "6"]);
  });

  it("without after, connects with no Last-Event-ID (the stream starts at the current end)", async () => {
    const headers: http.IncomingHttpHeaders[] = [];
    const base = await listen((req, res) => {
      headers.push(req.headers);
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(`id: 41\ndata: ${JSON.stringify(event(41))}\n\n`);
    });
    const client = new ArbiterClient({ baseUrl: base, token: "tok" });
    const [first] = await take(client.events.follow({ groupId: 1 }), 1);
    expect(first!.seq).toBe(41);
    expect(headers[0]).toMatchObject({ accept: "text/event-stream", authorization: "Bearer tok" });
    expect(headers[0]!["last-event-id"]).toBeUndefined();
  });

  it("a connection that goes silent (no heartbeat) is replaced, resuming after the last event", async () => {
    const resumedAfter: (string | undefined)[] = [];
    const base = await listen((req, res) => {
      const last = Number(req.headers["last-event-id"] ?? 0);
      resumedAfter.push(req.headers["last-event-id"] as string | undefined);
      res.writeHead(200, { "content-type": "text/event-stream" });
      // One event, then silence with the connection left open, as a vanished server's would be.
      res.write(`id: ${last + 1}\ndata: ${JSON.stringify(event(last + 1))}\n\n`);
    });
    const client = new ArbiterClient({ baseUrl: base, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
    const got = await take(client.events.follow({ after: 0, idleTimeoutMs: 100 }), 3);
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(resumedAfter).toEqual(["0", "1", "2"]);
  });

  it("a refusal ends the follow with the ProblemError", async () => {
    const base = await listen((_req, res) => {
      res.writeHead(401, { "content-type": "application/problem+json", "www-authenticate": "Bearer" });
      res.end(JSON.stringify({
        type: "urn:iommu-arbiter:problem:unauthenticated", title: "A valid bearer token is required", status: 401,
        errno: "EACCES", code: -13, soft: false, reason: "unauthenticated", detail: "no token",
      }));
    });
    const client = new ArbiterClient(base);
    const e = await take(client.events.follow(), 1).catch((error: unknown) => error);
    expect(e).toBeInstanceOf(ProblemError);
    expect(e).toMatchObject({ status: 401, errno: "EACCES" });
  });

  it("an abort ends the iteration, while connected or while waiting to reconnect", async () => {
    const controller = new AbortController();
    const base = await listen((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`id: 1\ndata: ${JSON.stringify(event(1))}\n\n`);
      // ...and then nothing: the connection stays open.
    });
    const client = new ArbiterClient(base);
    const got: Event[] = [];
    for await (const e of client.events.follow({ signal: controller.signal })) {
      got.push(e);
      controller.abort();
    }
    expect(got.map((e) => e.seq)).toEqual([1]);

    // Nothing listens there any more: refused, and the wait to reconnect is cut short.
    const gone = await listen(() => undefined);
    await closers.pop()!();
    const refused = new AbortController();
    const down = new ArbiterClient({ baseUrl: gone, retry: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    const none = await take(down.events.follow({ signal: refused.signal, onReconnect: () => refused.abort() }), 1);
    expect(none).toEqual([]);
  });
});

describe("following the real route", () => {
  it("gets the events committed after it, each once, with the page's shape", async () => {
    const server = await listeningArbiter();
    closers.push(() => server.close());
    const client = new ArbiterClient(server.base);
    let start = 0;
    for (let page = await client.events.page(); ; page = await client.events.page({ after: page.next })) {
      start = page.last;
      if (page.next === null) break;
    }
    const stream = client.events.follow({ after: start, groupId: 9 });
    await client.groups.attach(1, { domainId: 11 }); // another group's: filtered out
    await client.groups.attach(9, { domainId: 11 }).catch(() => undefined);
    await client.groups.attach(9, { domainId: 13 });
    const got = await take(stream, 2);
    expect(got.map((e) => [e.op, e.groupId, e.domainId, e.errno, e.soft])).toEqual([
      ["attach-group", 9, 11, "EINVAL", true],
      ["attach-group", 9, 13, null, false],
    ]);
    const page = await client.events.page({ after: start, groupId: 9 });
    expect(got).toEqual(page.items);
  });
});
