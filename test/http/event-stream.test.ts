// GET /v1/events as Server-Sent Events, on a real listening server: live
// events after their commit, resume after Last-Event-ID or ?after= with no
// gap and no duplicate, the group filter, the refusals, the stream cap, the
// bounded buffer of a client that does not read, and the app's close.
import { EventEmitter } from "node:events";
import { rmSync } from "node:fs";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.js";
import { EventStreams } from "../../src/http/event-stream.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { createUnit } from "../../src/core/objects.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile, TEST_LIMITS } from "../helpers/app.js";
import { openEventStream } from "../helpers/event-stream.js";
import { Client, type EventView, type GroupView, type UnitView } from "../helpers/http.js";

interface Served {
  readonly app: FastifyInstance;
  readonly store: SqliteStore;
  readonly base: string;
  readonly c: Client;
  close(): Promise<void>;
}

async function serve(eventStreams: { maxStreams?: number; heartbeatMs?: number; bufferEvents?: number } = {}): Promise<Served> {
  const { dir, file } = tempDbFile();
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
  const app = await buildApp({ store, logger: false, limits: TEST_LIMITS, eventStreams });
  app.addHook("onClose", () => store.close());
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    app, store, base, c: new Client(app),
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const strip = ({ at: _at, ...rest }: EventView) => rest;

describe("GET /v1/events as text/event-stream", () => {
  let s: Served;
  let unit: UnitView;
  let group: GroupView;
  let domainId: number;

  beforeAll(async () => {
    s = await serve({ heartbeatMs: 200 });
    unit = await s.c.unit({ driver: "intel-vtd" });
    ({ group } = await s.c.groupWith(unit.id));
    domainId = (await s.c.domain({ unitId: unit.id })).id;
  });
  afterAll(() => s.close());

  it("streams an attach once it is committed, the same event the page lists", async () => {
    const stream = await openEventStream(s.base);
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(stream.headers["x-request-id"]).toBeTruthy();
    await s.c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId });
    await stream.waitFor(1);
    const [live] = stream.events<EventView>();
    expect(live).toMatchObject({ op: "attach-group", groupId: group.id, domainId, errno: null });
    const page = await s.c.read<{ items: EventView[] }>(`/v1/events?after=${live!.seq - 1}&limit=1`);
    expect(page.items).toEqual([live]);
    expect(stream.messages[0]!.id).toBe(String(live!.seq));
    await s.c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId });
    await stream.waitFor(2);
    expect(stream.events<EventView>().map((e) => e.op)).toEqual(["attach-group", "detach-group"]);
    stream.close();
  });

  it("resumes after Last-Event-ID: the missed events, then live ones, none twice", async () => {
    const from = await s.c.lastSeq();
    for (let i = 0; i < 3; i++) {
      await s.c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId });
      await s.c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId });
    }
    const missed = await s.c.events(from + 2);
    expect(missed).toHaveLength(4);
    const stream = await openEventStream(s.base, "/v1/events", { "last-event-id": String(from + 2) });
    await stream.waitFor(4);
    await s.c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId });
    await s.c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId });
    await stream.waitFor(6);
    const got = stream.events<EventView>();
    expect(got.slice(0, 4)).toEqual(missed);
    const seqs = got.map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 6 }, (_, i) => from + 3 + i));
    stream.close();
  });

  it("takes ?after= as the resume point; Last-Event-ID wins over it", async () => {
    const last = await s.c.lastSeq();
    const byQuery = await openEventStream(s.base, `/v1/events?after=${last - 2}`);
    await byQuery.waitFor(2);
    expect(byQuery.events<EventView>().map((e) => e.seq)).toEqual([last - 1, last]);
    const both = await openEventStream(s.base, `/v1/events?after=${last - 2}`, { "last-event-id": String(last - 1) });
    await both.waitFor(1);
    expect(both.events<EventView>().map((e) => e.seq)).toEqual([last]);
    byQuery.close();
    both.close();
  });

  it("without a resume point starts at the end of the log", async () => {
    const stream = await openEventStream(s.base);
    const unit2 = await s.c.unit({ driver: "mock" });
    await stream.waitFor(1);
    expect(stream.events<EventView>().map((e) => ({ op: e.op, kind: e.kind, objectId: e.objectId }))).toEqual([
      { op: "create", kind: "unit", objectId: unit2.id },
    ]);
    stream.close();
  });

  it("filters by groupId, backlog and live alike", async () => {
    const { group: other } = await s.c.groupWith(unit.id);
    const from = await s.c.lastSeq();
    await s.c.ok("POST", `/v1/groups/${other.id}/attach`, { domainId });
    await s.c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId });
    const stream = await openEventStream(s.base, `/v1/events?after=${from}&groupId=${group.id}`);
    await s.c.ok("POST", `/v1/groups/${other.id}/detach`, { domainId });
    await s.c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId });
    await stream.waitFor(2);
    expect(stream.events<EventView>().map((e) => [e.op, e.groupId])).toEqual([["attach-group", group.id], ["detach-group", group.id]]);
    stream.close();
  });

  it("sends heartbeat comments on a quiet stream", async () => {
    const stream = await openEventStream(s.base);
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (stream.body().includes(": heartbeat\n\n")) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
    expect(stream.events()).toEqual([]);
    stream.close();
  });

  it.each([
    ["not a number", "abc"],
    ["negative", "-1"],
    ["fractional", "1.5"],
    ["beyond 2^53", "9007199254740993"],
  ])("refuses a Last-Event-ID that is %s with 400 naming the header", async (_what, value) => {
    const stream = await openEventStream(s.base, "/v1/events", { "last-event-id": value });
    await stream.ended;
    expect(stream.status).toBe(400);
    expect(stream.headers["content-type"]).toContain("application/problem+json");
    const body = JSON.parse(stream.body()) as { reason: string; errors: { field: string }[] };
    expect(body.reason).toBe("invalid-request");
    expect(body.errors[0]!.field).toBe("headers.last-event-id");
  });

  it("keeps answering the JSON page without the stream's Accept", async () => {
    const res = await s.c.send("GET", "/v1/events?limit=1", undefined, { accept: "application/json" });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toContain("application/json");
  });
});

describe("event stream limits", () => {
  it("refuses a stream beyond the cap with 503 too-many-streams and Retry-After, and takes one again once a stream closes", async () => {
    const s = await serve({ maxStreams: 1 });
    try {
      const first = await openEventStream(s.base);
      expect(first.status).toBe(200);
      const second = await openEventStream(s.base);
      await second.ended;
      expect(second.status).toBe(503);
      expect(second.headers["retry-after"]).toBe("5");
      expect(JSON.parse(second.body())).toMatchObject({ errno: "EAGAIN", reason: "too-many-streams" });
      first.close();
      await first.ended;
      await waitUntil(() => s.app.eventStreams.size === 0);
      const third = await openEventStream(s.base);
      expect(third.status).toBe(200);
      third.close();
    } finally {
      await s.close();
    }
  });

  it("ends every open stream when the app closes, so closing does not wait for the clients", async () => {
    const s = await serve();
    const streams = [await openEventStream(s.base), await openEventStream(s.base)];
    expect(s.app.eventStreams.size).toBe(2);
    await s.close();
    await Promise.all(streams.map((x) => x.ended));
    expect(s.app.eventStreams.size).toBe(0);
  });

  it("sends a gap event when the events to resume after were pruned, then the oldest kept ones", async () => {
    const { dir, file } = tempDbFile();
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS, eventRetention: 2 });
    const app = await buildApp({ store, logger: false, limits: TEST_LIMITS });
    app.addHook("onClose", () => store.close());
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const c = new Client(app);
      for (let i = 0; i < 6; i++) await c.unit({ driver: "mock" });
      const { prunedUpTo, durable } = store.eventBounds();
      expect(prunedUpTo).toBeGreaterThan(1);
      const stream = await openEventStream(base, "/v1/events", { "last-event-id": "1" });
      await stream.waitFor(durable - prunedUpTo);
      expect(stream.messages[0]).toEqual({ id: null, event: "gap", data: JSON.stringify({ after: 1, prunedUpTo }) });
      expect(stream.events<EventView>().map((e) => e.seq)).toEqual(Array.from({ length: durable - prunedUpTo }, (_, i) => prunedUpTo + 1 + i));
      stream.close();
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A client that stops reading: the response's writes report a full buffer
 * from the first one on, as a socket's do once the peer's window and the
 * kernel's buffers are full. The store is real.
 */
class StalledResponse extends EventEmitter {
  written: string[] = [];
  writableEnded = false;
  writeHead(): this { return this; }
  write(chunk: string): boolean {
    this.written.push(chunk);
    return false;
  }
  end(): void {
    this.writableEnded = true;
    this.emit("close");
  }
}

describe("a client that does not read", () => {
  it("gets at most bufferEvents held for it, then its stream is closed and unsubscribed", async () => {
    const { dir, file } = tempDbFile();
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
    try {
      const streams = new EventStreams(store, { maxStreams: 10, heartbeatMs: 60_000, bufferEvents: 5 });
      const raw = new StalledResponse();
      const request = { headers: {}, log: { warn() {}, info() {} } } as unknown as FastifyRequest;
      const reply = { raw, getHeaders: () => ({}), hijack() {}, header() { return reply; } } as unknown as FastifyReply;
      streams.start(request, reply, { after: null });
      expect(streams.size).toBe(1);
      let n = 0;
      const create = () => store.execute((m) => createUnit(m, { name: `u${++n}`, driver: "mock" }));
      for (let i = 0; i < 5; i++) await create();
      // Five held for it: still open. The sixth is one too many.
      expect(raw.writableEnded).toBe(false);
      expect(streams.size).toBe(1);
      await create();
      expect(raw.writableEnded).toBe(true);
      expect(streams.size).toBe(0);
      // Nothing past the opening lines was written: the first write already reported a full buffer.
      expect(raw.written.some((w) => w.startsWith("id: "))).toBe(false);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}
