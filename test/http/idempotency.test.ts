// Idempotency-Key: a retried state-changing request runs at most once, and its
// retries get the first answer again, byte for byte, refusals included.
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { afterEach, describe, expect, it, vi } from "vitest";
import { buildApp } from "../../src/http/app.js";
import type { ErrnoName } from "../../src/core/errno.js";
import { SqliteStore, type ArbiterStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import {
  Client, clientForFile, expectProblem, uniqueName,
  type FaultView, type Method, type Res, type UnitView,
} from "../helpers/http.js";
import { DRIVERS } from "../../src/drivers/index.js";

// Authentication does not exist yet: every request is "anonymous". To pin that
// keys are scoped per client, this file names the client with a test header.
vi.mock("../../src/http/client.js", () => ({
  clientOf: (request: FastifyRequest) => String(request.headers["x-test-client"] ?? "anonymous"),
}));

const c = clientForFile();
const newKey = () => `"${randomUUID()}"`;

function keyed<T = unknown>(client: Client, method: Method, url: string, body: unknown, key: string, headers: Record<string, string> = {}): Promise<Res<T>> {
  return client.send<T>(method, url, body, { "idempotency-key": key, ...headers });
}

/** What a replay must not change: the objects and the event log. */
async function sideEffects(client: Client) {
  return { objects: (await client.read<{ objects: Record<string, number> }>("/v1/stats")).objects, lastSeq: await client.lastSeq() };
}

interface Case {
  what: string;
  status: number;
  problem?: { errno: ErrnoName; reason: string };
  request: () => Promise<{ method: Method; url: string; body?: unknown }>;
}

async function attachable() {
  const unit = await c.unit({ driver: "mock" });
  const { group } = await c.groupWith(unit.id);
  const domain = await c.domain({ unitId: unit.id });
  return { unit, group, domain };
}

const CASES: Case[] = [
  { what: "201 create", status: 201, request: async () => ({ method: "POST", url: "/v1/units", body: { name: uniqueName("u"), driver: "mock" } }) },
  {
    what: "200 attach", status: 200,
    request: async () => {
      const { group, domain } = await attachable();
      return { method: "POST", url: `/v1/groups/${group.id}/attach`, body: { domainId: domain.id } };
    },
  },
  {
    what: "200 PATCH", status: 200,
    request: async () => ({ method: "PATCH", url: `/v1/units/${(await c.unit()).id}`, body: { online: false } }),
  },
  { what: "204 delete", status: 204, request: async () => ({ method: "DELETE", url: `/v1/units/${(await c.unit()).id}` }) },
  {
    what: "409 EBUSY refusal (an event is recorded once)", status: 409, problem: { errno: "EBUSY", reason: "group-attached" },
    request: async () => {
      const { unit, group, domain } = await attachable();
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: domain.id });
      const other = await c.domain({ unitId: unit.id });
      return { method: "POST", url: `/v1/groups/${group.id}/attach`, body: { domainId: other.id } };
    },
  },
  {
    what: "404 refusal", status: 404, problem: { errno: "ENOENT", reason: "no-such-domain" },
    request: async () => {
      const { group } = await attachable();
      return { method: "POST", url: `/v1/groups/${group.id}/attach`, body: { domainId: 999_999 } };
    },
  },
];

describe("a retry with the same key and request", () => {
  it.each(CASES)("replays the first answer exactly: $what", async ({ status, problem, request }) => {
    const { method, url, body } = await request();
    const key = newKey();
    const first = await keyed(c, method, url, body, key);
    expect(first.status, first.text).toBe(status);
    if (problem) expectProblem(first, status, problem.errno, problem.reason);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    const after = await sideEffects(c);

    for (let retry = 0; retry < 2; retry++) {
      const again = await keyed(c, method, url, body, key);
      expect(again.status).toBe(first.status);
      expect(again.text).toBe(first.text);
      expect(again.headers["content-type"]).toBe(first.headers["content-type"]);
      expect(again.headers.etag).toBe(first.headers.etag);
      expect(again.headers["idempotent-replayed"]).toBe("true");
    }
    expect(await sideEffects(c)).toEqual(after);
  });

  it("without a key, the same request runs again (the replay above is not the operation's own idempotence)", async () => {
    const body = { name: uniqueName("u"), driver: "mock" };
    expect((await c.post("/v1/units", body)).status).toBe(201);
    expectProblem(await c.post("/v1/units", body), 409, "EEXIST", "name-taken");
  });

  it("accepts escapes and 255 characters; the key is the unescaped string", async () => {
    for (const key of [`"a\\"b\\\\c ${randomUUID()}"`, `"${"k".repeat(219)}${randomUUID()}"`]) {
      const body = { name: uniqueName("u"), driver: "mock" };
      const first = await keyed(c, "POST", "/v1/units", body, key);
      expect(first.status, first.text).toBe(201);
      expect((await keyed(c, "POST", "/v1/units", body, key)).headers["idempotent-replayed"]).toBe("true");
    }
  });
});

describe("the same key with another request", () => {
  it.each([
    { what: "another body", other: (u: string) => ({ method: "POST" as const, url: "/v1/units", body: { name: u + "-other", driver: "mock" }, headers: {} }) },
    { what: "another route", other: (u: string) => ({ method: "POST" as const, url: "/v1/containers", body: { name: u }, headers: {} }) },
    { what: "another If-Match", other: (u: string) => ({ method: "POST" as const, url: "/v1/units", body: { name: u, driver: "mock" }, headers: { "if-match": "*" } }) },
  ])("is refused with 422 idempotency-key-reused: $what", async ({ other }) => {
    const name = uniqueName("u");
    const key = newKey();
    const first = await keyed<UnitView>(c, "POST", "/v1/units", { name, driver: "mock" }, key);
    expect(first.status).toBe(201);
    const before = await sideEffects(c);
    const o = other(name);
    expectProblem(await keyed(c, o.method, o.url, o.body, key, o.headers), 422, "EINVAL", "idempotency-key-reused", { soft: false });
    expect(await sideEffects(c)).toEqual(before);
    // The original request still replays.
    expect((await keyed(c, "POST", "/v1/units", { name, driver: "mock" }, key)).text).toBe(first.text);
  });

  it("treats the body as validated: key order and spelled-out defaults are the same request", async () => {
    const unit = await c.unit({ driver: "mock" });
    const key = newKey();
    const first = await keyed<FaultView>(c, "POST", "/v1/faults", { unitId: unit.id, errno: "EIO" }, key);
    const same = await keyed<FaultView>(c, "POST", "/v1/faults", { count: 1, errno: "EIO", unitId: unit.id }, key);
    expect(same.headers["idempotent-replayed"]).toBe("true");
    expect(same.body.id).toBe(first.body.id);
  });
});

describe("a malformed key", () => {
  it.each([
    { what: "empty string", key: '""' },
    { what: "not quoted", key: "8e03978e-40d5-43e8-bc93-6894a57f9324" },
    { what: "256 characters", key: `"${"k".repeat(256)}"` },
    { what: "non-ASCII", key: '"clé"' },
    { what: "an unescaped quote", key: '"a"b"' },
    { what: "a bad escape", key: '"a\\nb"' },
    { what: "two keys", key: '"a", "b"' },
    { what: "a parameter", key: '"a";x=1' },
  ])("is a 400 naming the header: $what", async ({ key }) => {
    const name = uniqueName("u");
    const res = await c.send("POST", "/v1/units", { name, driver: "mock" }, { "idempotency-key": key });
    const problem = expectProblem(res, 400, "EINVAL", "invalid-idempotency-key");
    expect(problem.errors?.map((e) => e.field)).toEqual(["headers.idempotency-key"]);
    expect(problem.detail).toContain("idempotency-key");
    expect((await c.read<{ items: UnitView[] }>("/v1/units?limit=1000")).items.map((u) => u.name)).not.toContain(name);
  });
});

describe("keys are scoped per client", () => {
  it("the same key from two clients is two requests, each replayed to its own client", async () => {
    const unit = await c.unit({ driver: "mock" });
    const key = newKey();
    const body = { unitId: unit.id, errno: "EIO" };
    const send = (client: string) => keyed<FaultView>(c, "POST", "/v1/faults", body, key, { "x-test-client": client });
    const a = await send("alice");
    const b = await send("bob");
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers["idempotent-replayed"]).toBeUndefined();
    expect(b.body.id).not.toBe(a.body.id);
    expect((await send("alice")).text).toBe(a.text);
    expect((await send("bob")).text).toBe(b.text);
    // Another body under the same key is refused for its own client only.
    const carol = await keyed(c, "POST", "/v1/units", { name: uniqueName("u"), driver: "mock" }, key, { "x-test-client": "carol" });
    expect(carol.status).toBe(201);
  });
});

// ---- apps of their own: a store that holds answers back, and a clock --------

const opened: { app: FastifyInstance; dir: string }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.app.close();
    rmSync(o.dir, { recursive: true, force: true });
  }
});

async function appOn(store: ArbiterStore, dir: string): Promise<Client> {
  const app = await buildApp({ store, logger: false });
  app.addHook("onClose", () => store.close());
  await app.ready();
  opened.push({ app, dir });
  return new Client(app);
}

describe("while the first request is still in flight", () => {
  it("a retry is a 409, another request under the key a 422; once answered, the retry replays", async () => {
    const { dir, file } = tempDbFile();
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
    // The first keyed write is held after its operation ran, before the caller hears it is durable.
    let hold = false;
    let ran!: () => void;
    const operationRan = new Promise<void>((r) => { ran = r; });
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const held: ArbiterStore = {
      async execute(op, options) {
        const result = await store.execute(op, options);
        if (hold && options?.remember) {
          hold = false;
          ran();
          await released;
        }
        return result;
      },
      remembered: (client, key) => store.remembered(client, key),
      health: () => store.health(),
      readiness: () => store.readiness(),
      observe: (observer) => store.observe(observer),
      read: (view) => store.read(view),
      events: (after, limit, filter) => store.events(after, limit, filter),
      eventRows: (after, limit, filter) => store.eventRows(after, limit, filter),
      eventPage: (query) => store.eventPage(query),
      subscribe: (listener) => store.subscribe(listener),
      eventBounds: () => store.eventBounds(),
      stats: () => store.stats(),
      close: () => store.close(),
    };
    const client = await appOn(held, dir);
    const unit = await client.unit({ driver: "mock" });
    const key = newKey();
    const body = { unitId: unit.id, errno: "EIO" };

    hold = true;
    const first = keyed<FaultView>(client, "POST", "/v1/faults", body, key);
    await operationRan;
    expectProblem(await keyed(client, "POST", "/v1/faults", body, key), 409, "EAGAIN", "idempotency-key-in-flight");
    expectProblem(await keyed(client, "POST", "/v1/faults", { ...body, errno: "ENOMEM" }, key), 422, "EINVAL", "idempotency-key-reused");
    release();
    const answered = await first;
    expect(answered.status).toBe(201);
    const retry = await keyed(client, "POST", "/v1/faults", body, key);
    expect(retry.headers["idempotent-replayed"]).toBe("true");
    expect(retry.text).toBe(answered.text);
    expect((await client.faults()).map((f) => f.id)).toEqual([answered.body.id]);
  });
});

describe("expiry", () => {
  it("a key is remembered for the configured time, then the request runs afresh", async () => {
    const { dir, file } = tempDbFile();
    let now = 1_000_000;
    const ttl = 60_000;
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS, idempotencyTtlMs: ttl, now: () => now });
    const client = await appOn(store, dir);
    const unit = await client.unit({ driver: "mock" });
    const key = newKey();
    const body = { unitId: unit.id, errno: "EIO" };
    const first = await keyed<FaultView>(client, "POST", "/v1/faults", body, key);
    now += ttl - 1;
    expect((await keyed(client, "POST", "/v1/faults", body, key)).text).toBe(first.text);
    now += 1;
    const fresh = await keyed<FaultView>(client, "POST", "/v1/faults", body, key);
    expect(fresh.status).toBe(201);
    expect(fresh.headers["idempotent-replayed"]).toBeUndefined();
    expect(fresh.body.id).not.toBe(first.body.id);
    // The fresh answer is the one remembered from now on.
    expect((await keyed(client, "POST", "/v1/faults", body, key)).text).toBe(fresh.text);
  });

  it("is configured in seconds, 24 hours by default", async () => {
    const { parseConfig } = await import("../../src/config.js");
    expect(parseConfig([], {}).idempotencyTtl).toBe(86_400);
    expect(parseConfig(["--idempotency-ttl", "60"], {}).idempotencyTtl).toBe(60);
    expect(parseConfig([], { IDEMPOTENCY_TTL: "3600" }).idempotencyTtl).toBe(3600);
    expect(() => parseConfig(["--idempotency-ttl", "0"], {})).toThrow(/idempotency ttl/);
  });
});
