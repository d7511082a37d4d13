// Log levels follow the kernel's rule: a soft EINVAL is a legitimate probe
// (debug, never an error), other refusals warn, 5xx are errors; and every
// line about a request carries its id.
import { Writable } from "node:stream";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import type { FastifyInstance } from "fastify";
import { DRIVERS } from "../../src/drivers/index.js";

interface Line { level: number; reqId?: string; reason?: string; msg?: string }

const lines: Line[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const text of chunk.toString().split("\n")) if (text.trim()) lines.push(JSON.parse(text) as Line);
    done();
  },
});

let app: FastifyInstance;
const db = tempDbFile();

beforeAll(async () => {
  const store = await SqliteStore.open({ drivers: DRIVERS, file: db.file, migrationsDir: MIGRATIONS });
  app = await buildApp({ store, logger: { level: "debug", stream: sink } });
  app.addHook("onClose", () => store.close());
  app.get("/test/boom", async () => { throw new Error("a bug"); });
  await app.ready();
  const post = (url: string, payload: object) => app.inject({ method: "POST", url, payload });
  await post("/v1/units", { name: "dmar0", driver: "intel-vtd", capabilities: { snoopControl: false } });
  await post("/v1/groups", { name: "g0", unitId: 1 });
  await post("/v1/devices", { name: "0000:00:01.0", groupId: 1 });
  await post("/v1/domains", { type: "paging", unitId: 1, config: { enforceCacheCoherency: true } }); // id 2: incompatible
  await post("/v1/domains", { type: "paging", unitId: 1 }); // id 3
  await post("/v1/domains", { type: "paging", unitId: 1 }); // id 4
});
afterAll(async () => {
  await app.close();
  rmSync(db.dir, { recursive: true, force: true });
});

async function linesOf(method: "POST", url: string, payload: object, requestId: string): Promise<Line[]> {
  const res = await app.inject({ method, url, payload, headers: { "x-request-id": requestId } });
  expect(res.headers["x-request-id"]).toBe(requestId);
  return lines.filter((l) => l.reqId === requestId);
}

const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 };

describe("log levels", () => {
  it("a soft EINVAL is logged at debug, never at warn or error", async () => {
    const mine = await linesOf("POST", "/v1/groups/1/attach", { domainId: 2 }, "soft-1");
    const refusal = mine.filter((l) => l.reason === "snoop-control");
    expect(refusal).toHaveLength(1);
    expect(refusal[0]!.level).toBe(LEVEL.debug);
    expect(mine.every((l) => l.level < LEVEL.warn)).toBe(true);
  });

  it("a hard failure (EBUSY) is logged at warn", async () => {
    await app.inject({ method: "POST", url: "/v1/groups/1/attach", payload: { domainId: 3 } });
    const mine = await linesOf("POST", "/v1/groups/1/attach", { domainId: 4 }, "hard-1");
    const refusal = mine.filter((l) => l.reason === "group-attached");
    expect(refusal).toHaveLength(1);
    expect(refusal[0]!.level).toBe(LEVEL.warn);
  });

  it("a 5xx is logged at error, and the client gets a problem without internals", async () => {
    const res = await app.inject({ method: "GET", url: "/test/boom", headers: { "x-request-id": "bug-1" } });
    expect(res.statusCode).toBe(500);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    expect(res.json()).toMatchObject({ errno: "EIO", reason: "internal-error", soft: false });
    expect(res.body).not.toContain("a bug");
    const mine = lines.filter((l) => l.reqId === "bug-1");
    expect(mine.filter((l) => l.level === LEVEL.error).length).toBeGreaterThanOrEqual(1);
  });

  it("every line about a request carries its id (incoming, outcome, completed)", async () => {
    const mine = await linesOf("POST", "/v1/groups/1/detach", { domainId: 3 }, "ok-1");
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(mine.map((l) => l.msg)).toEqual(expect.arrayContaining(["incoming request", "request completed"]));
  });
});
