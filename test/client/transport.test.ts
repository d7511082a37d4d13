// The client's transport: what it retries (no answer; a busy server's 503 or
// 429 with Retry-After), what it never retries (an errno answer), that a
// retried write is answered once (Idempotency-Key), and that a call can be
// abandoned (AbortSignal, per-request timeout). The peers are real: the app
// on a real port, a small proxy that cuts a connection, tiny HTTP servers
// that answer as a busy or silent server would.
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ArbiterClient, ErrnoError, ProblemError, TransportError, type RetryInfo } from "../../src/client/index.js";
import { freePort, listeningArbiter, type Listening } from "../helpers/listening.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function arbiter(port = 0): Promise<Listening> {
  const s = await listeningArbiter("intel-2s-server.json", port);
  cleanups.push(() => s.close());
  return s;
}

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** A tiny HTTP server answering each request with `answer(n)` (n from 0), recording what it saw. */
async function tinyServer(answer: (n: number, req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    req.resume();
    answer(seen.length - 1, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function problem(res: http.ServerResponse, status: number, doc: Record<string, unknown>, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/problem+json", ...headers });
  res.end(JSON.stringify({ status, title: String(doc.reason), type: `urn:iommu-arbiter:problem:${String(doc.reason)}`, detail: "", ...doc }));
}

const overloaded = { errno: "EAGAIN", code: -11, soft: false, reason: "overloaded" };


describe("retried", () => {
  it("a server that is not listening yet: connection refused, then it comes up", async () => {
    const port = await freePort();
    const retries: RetryInfo[] = [];
    let starting: Promise<Listening> | null = null;
    const client = new ArbiterClient({
      // A budget of tens of seconds of retries: however slow the machine is to open the database, the server comes up within it.
      baseUrl: `http://127.0.0.1:${port}`, retry: { maxAttempts: 100, baseDelayMs: 20, maxDelayMs: 500 },
      onRetry: (info) => {
        retries.push(info);
        // The server starts once the client has been refused: the next tries find it (or are refused while it starts).
        starting ??= arbiter(port);
      },
    });
    const units = await client.units.list();
    expect(units.items.map((u) => u.name)).toEqual(["dmar0", "dmar1"]);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect((retries[0]!.cause as Error & { cause?: { code?: string } }).cause?.code).toBe("ECONNREFUSED");
    await starting;
  });

  it("a 503 with Retry-After, once: the same write is sent again with the same Idempotency-Key", async () => {
    const tiny = await tinyServer((n, _req, res) => {
      if (n === 0) problem(res, 503, overloaded, { "retry-after": "1" });
      else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ cleared: 0 }));
      }
    });
    const retries: RetryInfo[] = [];
    const client = new ArbiterClient({ baseUrl: tiny.base, onRetry: (i) => retries.push(i) });
    expect(await client.faults.clear()).toEqual({ cleared: 0 });
    expect(tiny.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["DELETE /v1/faults", "DELETE /v1/faults"]);
    const keys = tiny.seen.map((s) => s.headers["idempotency-key"]);
    expect(keys[0]).toMatch(/^"[0-9a-f-]{36}"$/);
    expect(keys[1]).toBe(keys[0]);
    // It waited at least what the server asked.
    expect(retries.map((r) => r.delayMs)).toEqual([expect.any(Number)]);
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(1000);
    expect(retries[0]!.cause).toBeInstanceOf(ProblemError);
  });

  it("a 429 asking for longer than the cap is the caller's: not waited for", async () => {
    const tiny = await tinyServer((_n, _req, res) => problem(res, 429, { ...overloaded, reason: "rate-limited" }, { "retry-after": "60" }));
    const client = new ArbiterClient({ baseUrl: tiny.base, retry: { maxDelayMs: 5000 } });
    const e = await client.units.list().catch((error: unknown) => error);
    expect(e).toBeInstanceOf(ProblemError);
    expect(e).toMatchObject({ status: 429, reason: "rate-limited", retryAfter: 60 });
    expect(tiny.seen).toHaveLength(1);
  });

  it("gives up after maxAttempts with a TransportError", async () => {
    const port = await freePort();
    const client = new ArbiterClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    const e = await client.units.list().catch((error: unknown) => error);
    expect(e).toBeInstanceOf(TransportError);
    expect(e).toMatchObject({ attempts: 3 });
    expect((e as Error).message).toContain("ECONNREFUSED");
  });
});

describe("never retried blindly", () => {
  it("an errno answer: one request, the ErrnoError", async () => {
    const tiny = await tinyServer((_n, _req, res) => problem(res, 409, { errno: "EINVAL", code: -22, soft: true, reason: "snoop-control" }));
    const client = new ArbiterClient({ baseUrl: tiny.base, retry: { maxAttempts: 5 } });
    const e = await client.groups.attach(9, { domainId: 11 }).catch((error: unknown) => error);
    expect(e).toBeInstanceOf(ErrnoError);
    expect(tiny.seen).toHaveLength(1);
  });

  it("a 503 without Retry-After, and a 500", async () => {
    const tiny = await tinyServer((n, _req, res) => (n === 0
      ? problem(res, 503, { errno: "EIO", code: -5, soft: false, reason: "not-ready" })
      : problem(res, 500, { errno: "EIO", code: -5, soft: false, reason: "internal-error" })));
    const client = new ArbiterClient({ baseUrl: tiny.base, retry: { maxAttempts: 5 } });
    expect(await client.units.list().catch((e: unknown) => e)).toMatchObject({ status: 503 });
    expect(await client.units.list().catch((e: unknown) => e)).toMatchObject({ status: 500 });
    expect(tiny.seen).toHaveLength(2);
  });

});

describe("a write retried after the connection was reset is answered once", () => {
  it("the proxy drops the first answer; the retry gets it replayed, and the group moved once", async () => {
    const s = await arbiter();
    const upstream = new URL(s.base);
    let connections = 0;
    const sockets = new Set<net.Socket>();
    // Forwards every connection; on the first, the answer is swallowed and the client's socket reset.
    const proxy = net.createServer((downstream) => {
      const first = connections++ === 0;
      const up = net.connect(Number(upstream.port), upstream.hostname);
      sockets.add(downstream).add(up);
      downstream.pipe(up);
      up.on("data", (chunk) => {
        if (first) downstream.resetAndDestroy();
        else downstream.write(chunk);
      });
      up.on("end", () => downstream.end());
      up.on("error", () => downstream.destroy());
      downstream.on("error", () => up.destroy());
      downstream.on("close", () => up.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      proxy.close(() => resolve());
    }));
    const retries: RetryInfo[] = [];
    const client = new ArbiterClient({
      baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, retry: { baseDelayMs: 10 }, onRetry: (i) => retries.push(i),
    });
    const direct = new ArbiterClient(s.base);

    const answer = await client.request<{ changed: boolean }>("POST", "/v1/groups/1/attach", { body: { domainId: 11 } });
    expect(retries).toHaveLength(1);
    // The first try ran the attach; the retry was answered with its answer, not a second run.
    expect(answer.status).toBe(200);
    expect(answer.headers.get("idempotent-replayed")).toBe("true");
    expect(answer.body.changed).toBe(true);
    const log = await direct.events.page({ groupId: 1 });
    expect(log.items.map((e) => [e.op, e.domainId])).toEqual([["attach-group", 11]]);
  });
});

describe("abandoned", () => {
  it("an AbortSignal ends a call in flight with its reason, and is not retried", async () => {
    const controller = new AbortController();
    const tiny = await tinyServer(() => controller.abort());
    const client = new ArbiterClient({ baseUrl: tiny.base, retry: { maxAttempts: 5 } });
    const e = await client.units.list({}, { signal: controller.signal }).catch((error: unknown) => error);
    expect(e).toBe(controller.signal.reason);
    expect((e as Error).name).toBe("AbortError");
    expect(tiny.seen).toHaveLength(1);
  });

  it("an AbortSignal ends the wait between retries", async () => {
    const controller = new AbortController();
    const tiny = await tinyServer((_n, _req, res) => problem(res, 503, overloaded, { "retry-after": "1" }));
    const client = new ArbiterClient({ baseUrl: tiny.base, retry: { maxAttempts: 5 }, onRetry: () => controller.abort() });
    const e = await client.units.list({}, { signal: controller.signal }).catch((error: unknown) => error);
    expect((e as Error).name).toBe("AbortError");
    expect(tiny.seen).toHaveLength(1);
  });

  it("a try that gets no answer within the timeout is abandoned and retried, then a TransportError", async () => {
    const tiny = await tinyServer(() => undefined); // never answers
    const client = new ArbiterClient({ baseUrl: tiny.base, timeoutMs: 100, retry: { maxAttempts: 2, baseDelayMs: 1 } });
    const e = await client.units.list().catch((error: unknown) => error);
    expect(e).toBeInstanceOf(TransportError);
    expect(e).toMatchObject({ attempts: 2 });
    expect((e as TransportError).message).toContain("no answer in time");
    expect(((e as TransportError).cause as Error).name).toBe("TimeoutError");
    expect(tiny.seen).toHaveLength(2);
  });

  it("a call's own timeout overrides the client's", async () => {
    const tiny = await tinyServer(() => undefined);
    const client = new ArbiterClient({ baseUrl: tiny.base, timeoutMs: 0, retry: { maxAttempts: 1 } });
    const e = await client.units.list({}, { timeoutMs: 50 }).catch((error: unknown) => error);
    expect(e).toBeInstanceOf(TransportError);
    expect(((e as TransportError).cause as Error).name).toBe("TimeoutError");
  });
});
