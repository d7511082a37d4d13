// GET /v1/events as a Server-Sent Events stream, through a real listening
// server: live events after their commit, resume without gap or duplicate,
// the group filter, the stream cap, shutdown, and a client that never reads.
import { rmSync } from "node:fs";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import type { SqliteStore } from "../../src/store/store.js";
import { openApp, tempDbFile, TEST_LIMITS } from "../helpers/app.js";
import { Client, type EventView } from "../helpers/http.js";
import { openSse, type SseMessage, type SseStream } from "../helpers/sse.js";
import type { LimitOptions } from "../../src/http/limits.js";

interface Served {
  readonly app: FastifyInstance;
  readonly store: SqliteStore;
  readonly c: Client;
  readonly base: string;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function serve(limits: LimitOptions = {}, file?: string): Promise<Served & { file: string }> {
  let db = file;
  if (db === undefined) {
    const temp = tempDbFile();
    db = temp.file;
    cleanup.push(() => rmSync(temp.dir, { recursive: true, force: true }));
  }
  const { app, store } = await openApp(db, { ...TEST_LIMITS, ...limits });
  await app.listen({ host: "127.0.0.1", port: 0 });
  cleanup.push(() => app.close());
  const { port } = app.server.address() as AddressInfo;
  return { app, store, c: new Client(app), base: `http://127.0.0.1:${port}`, file: db };
}

function stream(s: { base: string }, query = "", headers: Record<string, string> = {}): Promise<SseStream> {
  return openSse(`${s.base}/v1/events${query}`, headers).then((sse) => {
    cleanup.push(() => sse.close());
    return sse;
  });
}

const eventsOf = (messages: readonly SseMessage[]): EventView[] => messages.map((m) => JSON.parse(m.data) as EventView);

/** A group on a fresh unit and a domain to attach it to. */
async function fixture(c: Client): Promise<{ groupId: number; domainId: number }> {
  const unit = await c.unit({ driver: "intel-vtd" });
  const { group } = await c.groupWith(unit.id);
  const domain = await c.domain({ unitId: unit.id });
  return { groupId: group.id, domainId: domain.id };
}

async function attachDetach(c: Client, f: { groupId: number; domainId: number }): Promise<void> {
  await c.ok("POST", `/v1/groups/${f.groupId}/attach`, { domainId: f.domainId });
  await c.ok("POST", `/v1/groups/${f.groupId}/detach`, { domainId: f.domainId });
}

describe("GET /v1/events as text/event-stream", () => {
  it("starts at the current end and sends each event after it commits, as the page shows it", async () => {
    const s = await serve();
    const f = await fixture(s.c);
    await attachDetach(s.c, f);
    const before = await s.c.lastSeq();
    const sse = await stream(s);
    expect(sse.status).toBe(200);
    expect(sse.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(sse.headers["x-request-id"]).toBeTruthy();
    await s.c.ok("POST", `/v1/groups/${f.groupId}/attach`, { domainId: f.domainId });
    const [message] = await sse.waitFor(1);
    // The event is on disk: the page (read from the database) shows the very same object.
    const page = await s.c.events(before);
    expect(page).toHaveLength(1);
    expect(message!.id).toBe(String(page[0]!.seq));
    expect(message!.event).toBeNull();
    expect(JSON.parse(message!.data)).toEqual(page[0]);
    expect(page[0]).toMatchObject({ op: "attach-group", groupId: f.groupId, domainId: f.domainId });
  });

  it("resumes after Last-Event-ID (or after=) with exactly the events missed", async () => {
    const s = await serve();
    const f = await fixture(s.c);
    const start = await s.c.lastSeq();
    for (let i = 0; i < 3; i++) await attachDetach(s.c, f);
    const all = await s.c.events(start);
    expect(all).toHaveLength(6);
    const cut = all[1]!.seq;
    for (const [how, query, headers] of [
      ["header", "", { "last-event-id": String(cut) }],
      ["query", `?after=${cut}`, {}],
      // EventSource keeps the URL it was opened with: the header wins.
      ["header over query", `?after=${start}`, { "last-event-id": String(cut) }],
    ] as const) {
      const sse = await stream(s, query, headers);
      const got = eventsOf(await sse.waitFor(4));
      expect(got, how).toEqual(all.slice(2));
      // Then live, with no duplicate.
      await s.c.ok("POST", `/v1/groups/${f.groupId}/attach`, { domainId: f.domainId });
      const live = eventsOf(await sse.waitFor(5))[4]!;
      expect(live.seq, how).toBeGreaterThan(all[5]!.seq);
      await s.c.ok("POST", `/v1/groups/${f.groupId}/detach`, { domainId: f.domainId });
      await sse.waitFor(6);
      const seqs = sse.messages.map((m) => Number(m.id));
      expect(new Set(seqs).size, how).toBe(seqs.length);
      expect(seqs, how).toEqual([...seqs].sort((a, b) => a - b));
      sse.close();
    }
  });

  it("a resume while events are being committed misses none and repeats none", async () => {
    const s = await serve();
    const f = await fixture(s.c);
    const start = await s.c.lastSeq();
    const writing = (async () => { for (let i = 0; i < 20; i++) await attachDetach(s.c, f); })();
    const sse = await stream(s, `?after=${start}`);
    await writing;
    const all = await s.c.events(start);
    expect(all).toHaveLength(40);
    expect(eventsOf(await sse.waitFor(40))).toEqual(all);
  });

  it("filters by groupId", async () => {
    const s = await serve();
    const a = await fixture(s.c);
    const b = await fixture(s.c);
    const sse = await stream(s, `?groupId=${b.groupId}`);
    await attachDetach(s.c, a);
    await attachDetach(s.c, b);
    await attachDetach(s.c, a);
    await s.c.ok("POST", `/v1/groups/${b.groupId}/attach`, { domainId: b.domainId });
    const got = eventsOf(await sse.waitFor(3));
    expect(got.map((e) => [e.op, e.groupId])).toEqual([["attach-group", b.groupId], ["detach-group", b.groupId], ["attach-group", b.groupId]]);
  });

  it("a plain GET (JSON or no Accept) still answers the page", async () => {
    const s = await serve();
    for (const accept of [undefined, "application/json", "*/*", "text/event-stream;q=0, application/json"]) {
      const res = await fetch(`${s.base}/v1/events`, { headers: accept ? { accept } : {} });
      expect(res.status, accept).toBe(200);
      expect(res.headers.get("content-type"), accept).toMatch(/^application\/json/);
      expect(await res.json(), accept).toMatchObject({ items: [] });
    }
  });

  it("refuses a Last-Event-ID that is not a seq, naming the header", async () => {
    const s = await serve();
    const sse = await stream(s, "", { "last-event-id": "abc" });
    expect(sse.status).toBe(400);
    const problem = JSON.parse(await sse.text()) as { reason: string; errors: { field: string }[] };
    expect(problem.reason).toBe("invalid-request");
    expect(problem.errors[0]!.field).toBe("last-event-id");
  });

  it("answers 503 too-many-streams past the cap, and takes a stream again once one closed", async () => {
    const s = await serve({ eventStreams: 2 });
    const first = await stream(s);
    await stream(s);
    const third = await stream(s);
    expect(third.status).toBe(503);
    expect(third.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(third.headers["retry-after"]).toBe("1");
    expect(JSON.parse(await third.text())).toMatchObject({ reason: "too-many-streams", errno: "EAGAIN", status: 503 });
    first.close();
    await first.ended;
    // The server sees the close on its own schedule: retry until the slot is free.
    let again = await stream(s);
    while (again.status === 503) {
      await again.ended;
      await new Promise((r) => setTimeout(r, 20));
      again = await stream(s);
    }
    expect(again.status).toBe(200);
  });

  it("app.close() ends open streams instead of waiting for their clients", async () => {
    const s = await serve();
    const sse = await stream(s);
    await sse.waitForComment(/events after/);
    await s.app.close();
    await sse.ended;
  });

  it("closes the stream of a client that never reads once its buffer is full, and keeps serving", async () => {
    const s = await serve({ eventStreamBuffer: 64 * 1024 });
    const start = await s.store.eventLog().lastSeq;
    // A large backlog, committed in one operation: far more than the socket buffers hold.
    await s.store.execute((model) => {
      for (let i = 0; i < 60_000; i++) {
        model.record({ op: "claim", owner: `owner-${i}`, groupId: null, deviceId: null, domainId: null, containerId: null, errno: null, code: 0, soft: false, reason: null, detail: null });
      }
      return { ok: true, value: null };
    });
    const { port } = s.app.server.address() as AddressInfo;
    const serverSide = new Promise<net.Socket>((resolve) => s.app.server.once("connection", resolve));
    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => { socket.destroy(); });
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.pause();
    socket.write(`GET /v1/events?after=${start} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    // Never read: the server must give up on the client rather than buffer the backlog.
    const dropped = await serverSide;
    await new Promise<void>((resolve) => dropped.once("close", () => resolve()));
    // The client then sees the end of what reached it, far short of the backlog.
    let received = 0;
    socket.on("data", (chunk: Buffer) => { received += chunk.length; });
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.resume();
    await closed;
    expect(received).toBeLessThan(60_000 * 200);
    // The server still answers, and serves the next stream.
    expect((await s.c.get("/healthz")).status).toBe(200);
    expect((await stream(s)).status).toBe(200);
  });
});
