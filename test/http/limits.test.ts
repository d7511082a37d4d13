// Bounded resources through inject: rate limits, load shedding, security
// headers, request ids, body size, and the settings that configure them.
// Timeouts and the connection cap need real sockets: limits-socket.test.ts.
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_LIMITS, parseConfig } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import type { LimitOptions } from "../../src/http/limits.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, TEST_LIMITS, tempDbFile } from "../helpers/app.js";
import { expectProblem, type Res } from "../helpers/http.js";
import { rmSync } from "node:fs";
import { DRIVERS } from "../../src/drivers/index.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function appWith(limits: LimitOptions, extra?: (app: FastifyInstance) => void, perTest = true): Promise<FastifyInstance> {
  const { dir, file } = tempDbFile();
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
  const app = await buildApp({ store, logger: false, limits: { ...TEST_LIMITS, ...limits } });
  app.addHook("onClose", async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  extra?.(app);
  await app.ready();
  if (perTest) cleanups.push(() => app.close());
  return app;
}

/** One app with the default limits for the tests that only read headers. */
let plain: Promise<FastifyInstance> | undefined;
const defaultApp = () => (plain ??= appWith({}, undefined, false));
afterAll(async () => { if (plain) await (await plain).close(); });

type Call = { method?: "GET" | "POST"; url: string; body?: object; ip?: string; headers?: Record<string, string> };
async function send(app: FastifyInstance, { method = "GET", url, body, ip = "127.0.0.1", headers = {} }: Call): Promise<Res<unknown>> {
  const res = await app.inject({ method, url, remoteAddress: ip, headers, ...(body ? { payload: body } : {}) });
  return { status: res.statusCode, headers: res.headers, text: res.body, body: res.body ? JSON.parse(res.body) : null };
}

let names = 0;
const unit = (ip?: string): Call => ({ method: "POST", url: "/v1/units", body: { name: `u${++names}`, driver: "mock" }, ...(ip ? { ip } : {}) });

describe("rate limits per client", () => {
  it("answers 429 problem+json with Retry-After once a client's write budget is spent; reads have their own", async () => {
    const app = await appWith({ rateLimitWrites: 3, rateLimitReads: 5, rateLimitWindow: 60_000 });
    for (let i = 0; i < 3; i++) expect((await send(app, unit())).status).toBe(201);
    const refused = await send(app, unit());
    expectProblem(refused, 429, "EAGAIN", "rate-limited", { soft: false, code: -11 });
    const retryAfter = Number(refused.headers["retry-after"]);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // The refused write changed nothing.
    const listed = await send(app, { url: "/v1/units" });
    expect((listed.body as { items: unknown[] }).items).toHaveLength(3);
    // Reads: 1 spent above, 4 more, then refused.
    for (let i = 0; i < 4; i++) expect((await send(app, { url: "/v1/units" })).status).toBe(200);
    expectProblem(await send(app, { url: "/v1/units" }), 429, "EAGAIN", "rate-limited");
  });

  it("counts each client apart, and never limits /healthz", async () => {
    const app = await appWith({ rateLimitWrites: 1, rateLimitReads: 1, rateLimitWindow: 60_000 });
    expect((await send(app, unit("10.0.0.1"))).status).toBe(201);
    expect((await send(app, unit("10.0.0.1"))).status).toBe(429);
    expect((await send(app, unit("10.0.0.2"))).status).toBe(201);
    for (let i = 0; i < 10; i++) expect((await send(app, { url: "/healthz", ip: "10.0.0.1" })).status).toBe(200);
  });

  it("never limits the other probes or the metrics scrape", async () => {
    const app = await appWith({ rateLimitWrites: 1, rateLimitReads: 1, rateLimitWindow: 60_000 });
    for (const url of ["/livez", "/readyz", "/metrics"]) {
      for (let i = 0; i < 5; i++) expect((await app.inject({ url, remoteAddress: "10.0.0.3" })).statusCode, url).toBe(200);
    }
    expect((await send(app, { url: "/v1/units", ip: "10.0.0.3" })).status).toBe(200);
    expect((await send(app, { url: "/v1/units", ip: "10.0.0.3" })).status).toBe(429);
  });

  it("a budget of 0 is unlimited", async () => {
    const app = await appWith({ rateLimitWrites: 0, rateLimitReads: 1, rateLimitWindow: 60_000 });
    for (let i = 0; i < 20; i++) expect((await send(app, unit())).status).toBe(201);
  });
});

describe("load shedding", () => {
  it("answers 503 problem+json with Retry-After while the event loop lags; /healthz keeps answering", async () => {
    // The lag is sampled every 200 ms; the sample due while the loop is held
    // runs as soon as it is free and sees the lag, and the next one, 200 ms
    // later, would see none. So each probe goes 20 ms after the block, well
    // inside that window.
    const app = await appWith({ maxEventLoopDelay: 1, pressureSampleInterval: 200 }, (a) => {
      a.get("/test/block", async () => {
        const until = Date.now() + 200;
        while (Date.now() < until) { /* hold the event loop */ }
        return { blocked: true };
      });
    });
    let shed: Res<unknown> | null = null;
    for (let i = 0; i < 50 && shed === null; i++) {
      await send(app, { url: "/test/block" });
      // inject() runs on promises only; give the lag monitor's timer its turn.
      await new Promise((r) => setTimeout(r, 20));
      const res = await send(app, { url: "/v1/units" });
      if (res.status === 503) shed = res;
      else expect(res.status).toBe(200);
    }
    expect(shed, "never shed load").not.toBeNull();
    expectProblem(shed!, 503, "EAGAIN", "overloaded", { soft: false });
    expect(Number(shed!.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(await send(app, { url: "/healthz" })).toMatchObject({ status: 200, body: { status: "ok" } });
  });

  it("is off with max event loop delay 0 (the in-process tests' setting)", async () => {
    const app = await appWith({ maxEventLoopDelay: 0 });
    expect(app.hasDecorator("isUnderPressure")).toBe(false);
  });
});

describe("security headers", () => {
  const KEPT = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
  };
  const DROPPED = ["content-security-policy", "strict-transport-security", "cross-origin-opener-policy",
    "cross-origin-embedder-policy", "origin-agent-cluster", "x-xss-protection", "x-dns-prefetch-control",
    "x-download-options", "x-permitted-cross-domain-policies", "x-powered-by"];

  it.each([
    ["a success", { url: "/healthz" }, 200],
    ["a created object", unit(), 201],
    ["a 404 problem", { url: "/v1/units/999" }, 404],
    ["a schema refusal", { method: "POST", url: "/v1/units", body: { name: 5 } } as Call, 400],
    ["an unknown route", { url: "/nope" }, 404],
  ])("on %s", async (_what, call, status) => {
    const app = await defaultApp();
    const res = await send(app, call);
    expect(res.status).toBe(status);
    expect(res.headers).toMatchObject(KEPT);
    for (const h of DROPPED) expect(res.headers[h], h).toBeUndefined();
  });
});

describe("X-Request-Id", () => {
  it.each(["abc", "a".repeat(64), "req-1.2_3:4", "550e8400-e29b-41d4-a716-446655440000"])("echoes an acceptable id %j", async (id) => {
    const app = await defaultApp();
    const res = await send(app, { url: "/v1/units/999", headers: { "x-request-id": id } });
    expect(res.headers["x-request-id"]).toBe(id);
    expect((res.body as { requestId: string }).requestId).toBe(id);
  });

  it.each([
    ["empty", ""],
    ["65 characters", "a".repeat(65)],
    ["10 kB", "x".repeat(10_000)],
    ["a space", "a b"],
    ["a newline", "a\nInjected: yes"],
    ["a carriage return", "a\rb"],
    ["a tab", "a\tb"],
    ["a control character", "a\u0001b"],
    ["a DEL", "a\u007fb"],
    ["non-ASCII", "zürich"],
    ["a list separator", "a,b"],
    ["JSON", "{\"a\":1}"],
  ])("replaces an id with %s by a generated one", async (_what, id) => {
    const app = await defaultApp();
    const res = await send(app, { url: "/v1/units/999", headers: { "x-request-id": id } });
    const given = res.headers["x-request-id"];
    expect(given).not.toBe(id);
    expect(given).toMatch(/^[0-9a-f]{6}-[0-9a-z]+$/);
    expect((res.body as { requestId: string }).requestId).toBe(given);
  });
});

describe("body size", () => {
  it("refuses a body over the limit with 413 problem+json, before parsing it", async () => {
    const app = await appWith({ bodyLimit: 200 });
    expect((await send(app, unit())).status).toBe(201);
    const res = await send(app, { method: "POST", url: "/v1/units", body: { name: "x".repeat(300), driver: "mock" } });
    expectProblem(res, 413, "E2BIG", "body-too-large");
  });
});

describe("settings", () => {
  it("default to the documented values and reach Limits", () => {
    expect(parseConfig([], {}).limits).toEqual(DEFAULT_LIMITS);
    expect(DEFAULT_LIMITS).toEqual({
      bodyLimit: 65536, headersTimeout: 10_000, requestTimeout: 30_000, socketTimeout: 60_000, keepAliveTimeout: 10_000,
      maxConnections: 1000, rateLimitReads: 10_000, rateLimitWrites: 2000, rateLimitWindow: 10_000, maxEventLoopDelay: 1000,
    });
  });

  it("are read from flags and the environment", () => {
    const config = parseConfig(
      ["--body-limit", "1024", "--headers-timeout", "500", "--request-timeout", "800", "--max-connections", "0",
        "--rate-limit-reads", "7", "--rate-limit-writes", "3"],
      { SOCKET_TIMEOUT: "0", KEEP_ALIVE_TIMEOUT: "2000", RATE_LIMIT_WINDOW: "1000", MAX_EVENT_LOOP_DELAY: "0" },
    );
    expect(config.limits).toEqual({
      bodyLimit: 1024, headersTimeout: 500, requestTimeout: 800, socketTimeout: 0, keepAliveTimeout: 2000,
      maxConnections: 0, rateLimitReads: 7, rateLimitWrites: 3, rateLimitWindow: 1000, maxEventLoopDelay: 0,
    });
  });

  it.each([
    [["--headers-timeout", "5000", "--request-timeout", "4000"], /headers timeout .* must not exceed request timeout/],
    [["--request-timeout", "0"], /request timeout must be an integer from 1/],
    [["--body-limit", "0"], /body limit must be an integer from 1/],
    [["--max-connections=-1"], /max connections must be an integer/],
    [["--rate-limit-window", "soon"], /rate limit window must be an integer/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });

  it("buildApp refuses a headers timeout over the request timeout", async () => {
    await expect(appWith({ headersTimeout: 2000, requestTimeout: 1000 })).rejects.toThrow(/headersTimeout/);
  });
});
