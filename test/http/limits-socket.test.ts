// Bounded resources over real sockets on 127.0.0.1: slow clients are cut
// off by the headers and request timeouts, the connection cap answers the
// extra connection, bad request ids never reach a log line. Raw `net`
// sockets, because a well-behaved HTTP client cannot be slow on purpose.
import { rmSync } from "node:fs";
import net from "node:net";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.js";
import type { LimitOptions } from "../../src/http/limits.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, TEST_LIMITS, tempDbFile } from "../helpers/app.js";
import { DRIVERS } from "../../src/drivers/index.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function listening(limits: LimitOptions): Promise<{ app: FastifyInstance; port: number }> {
  const { dir, file } = tempDbFile();
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
  const app = await buildApp({ store, logger: false, limits: { ...TEST_LIMITS, ...limits } });
  app.addHook("onClose", async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  cleanups.push(() => app.close());
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error("not listening on TCP");
  return { app, port: addr.port };
}

/** A raw client: everything the server sent, and whether it closed the connection. */
class RawClient {
  readonly socket: net.Socket;
  received = "";
  closed = false;
  private readonly closing: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => { this.received += chunk; });
    socket.on("error", () => undefined); // a reset after the server's answer is fine
    this.closing = new Promise((resolve) => socket.once("close", () => { this.closed = true; resolve(); }));
    cleanups.push(() => { socket.destroy(); });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  write(text: string): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(text);
  }

  /** Write `text` one byte per `everyMs` until it is all sent or the server closes. Returns the bytes sent. */
  async trickle(text: string, everyMs: number): Promise<number> {
    let sent = 0;
    while (sent < text.length && !this.closed) {
      this.write(text[sent]!);
      sent++;
      await Promise.race([this.closing, new Promise((r) => setTimeout(r, everyMs))]);
    }
    return sent;
  }

  /** Until the server closes the connection; bounded by `ms` (then the test fails on `closed`). */
  async untilClosed(ms = 15_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closing, new Promise((r) => { timer = setTimeout(r, ms); })]);
    clearTimeout(timer);
  }

  /** Until a whole response (headers and Content-Length body) has arrived; bounded by `ms`. */
  async response(ms = 15_000): Promise<Parsed> {
    const deadline = Date.now() + ms;
    for (;;) {
      const parsed = parse(this.received);
      if (parsed) return parsed;
      if (this.closed || Date.now() > deadline) throw new Error(`no complete response; got ${JSON.stringify(this.received.slice(0, 300))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

interface Parsed { status: number; headers: Record<string, string>; body: Record<string, unknown> }

function parse(text: string): Parsed | null {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers["content-length"] ?? 0);
  const body = text.slice(end + 4);
  if (body.length < length) return null;
  return { status: Number(statusLine!.split(" ")[1]), headers, body: length > 0 ? JSON.parse(body.slice(0, length)) : {} };
}

function expectProblemAnswer(res: Parsed, status: number, errno: string, reason: string): void {
  expect(res.status).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, errno, reason, type: `urn:iommu-arbiter:problem:${reason}` });
}

const GET = (url: string, extra = "") => `GET ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;

describe("slow clients are cut off", () => {
  const limits = { headersTimeout: 300, requestTimeout: 600, socketTimeout: 0 };

  it("a body trickled slower than the request timeout: 408 problem+json, connection closed", async () => {
    const { port } = await listening(limits);
    const client = await RawClient.connect(port);
    const body = JSON.stringify({ name: "slow-unit", driver: "mock", padding: "x".repeat(400) });
    client.write(`POST /v1/units HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    // Each byte well inside any idle timeout; the whole body would take ~20 s.
    const sent = await client.trickle(body, 50);
    await client.untilClosed();
    expect(client.closed).toBe(true);
    expect(sent).toBeLessThan(body.length);
    expectProblemAnswer(parse(client.received)!, 408, "ETIMEDOUT", "request-timeout");
  });

  it("headers never finished: 408 problem+json, connection closed", async () => {
    const { port } = await listening(limits);
    const client = await RawClient.connect(port);
    client.write("GET /v1/units HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const sent = await client.trickle(`X-Slow: ${"y".repeat(400)}\r\n\r\n`, 50);
    await client.untilClosed();
    expect(client.closed).toBe(true);
    expect(sent).toBeLessThan(410);
    expectProblemAnswer(parse(client.received)!, 408, "ETIMEDOUT", "request-timeout");
  });

  it("a client that keeps up is served", async () => {
    const { port } = await listening(limits);
    const client = await RawClient.connect(port);
    client.write(GET("/healthz"));
    expect(await client.response()).toMatchObject({ status: 200, body: { status: "ok" } });
  });
});

describe("the connection cap", () => {
  it("answers the connection over the cap 503 problem+json with Retry-After and closes it; a freed slot serves again", async () => {
    const { port } = await listening({ maxConnections: 2 });
    const held: RawClient[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await RawClient.connect(port);
      c.write(GET("/v1/units")); // answered: the server has counted this connection
      expect((await c.response()).status).toBe(200);
      held.push(c);
    }
    const extra = await RawClient.connect(port);
    extra.write(GET("/v1/units"));
    const refused = await extra.response();
    expectProblemAnswer(refused, 503, "EAGAIN", "too-many-connections");
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(refused.headers["connection"]).toBe("close");
    await extra.untilClosed();
    expect(extra.closed).toBe(true);
    // The held connections are still served.
    held[0]!.received = "";
    held[0]!.write(GET("/healthz"));
    expect((await held[0]!.response()).status).toBe(200);
    // Free one slot; a new connection is served once the server has seen the close.
    held[1]!.socket.end();
    await held[1]!.untilClosed();
    let served = false;
    for (let i = 0; i < 100 && !served; i++) {
      const c = await RawClient.connect(port);
      c.write(GET("/v1/units", "Connection: close\r\n"));
      served = (await c.response()).status === 200;
      await c.untilClosed();
    }
    expect(served).toBe(true);
  });
});

describe("X-Request-Id on the wire", () => {
  it("a 10 kB id is replaced by a generated one", async () => {
    const { port } = await listening({});
    const client = await RawClient.connect(port);
    client.write(GET("/v1/units/999", `X-Request-Id: ${"z".repeat(10_000)}\r\n`));
    const res = await client.response();
    expect(res.status).toBe(404);
    expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f]{6}-[0-9a-z]+$/);
    expect(res.body.requestId).toBe(res.headers["x-request-id"]);
  });

  it("a control character in a header is a malformed request: 400 problem+json, nothing echoed", async () => {
    const { port } = await listening({});
    const client = await RawClient.connect(port);
    client.write(GET("/v1/units", "X-Request-Id: a\u0001b\r\n"));
    const res = await client.response();
    expectProblemAnswer(res, 400, "EINVAL", "malformed-request");
    expect(client.received).not.toContain("a\u0001b");
    await client.untilClosed();
    expect(client.closed).toBe(true);
  });
});
