// CORS: off by default (no Access-Control-* header, a preflight is not
// answered as one); with allowed origins, a preflight from one of them is
// answered before authentication, a simple request carries the header for
// that origin only, another origin is never reflected, and credentials are
// never allowed.
import { rmSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { DRIVERS } from "../../src/drivers/index.js";
import { buildApp } from "../../src/http/app.js";
import { makeTokenEntry, parseTokenTable } from "../../src/http/tokens.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";

const UI = "https://ui.example.com";
const OTHER = "https://evil.example.net";

let open: { app: FastifyInstance; dir: string } | null = null;
afterEach(async () => {
  await open?.app.close();
  if (open) rmSync(open.dir, { recursive: true, force: true });
  open = null;
});

/** An app with a token table (so that authentication runs), CORS as given. */
async function appWith(corsOrigins: string[] | null): Promise<{ app: FastifyInstance; token: string }> {
  const reader = makeTokenEntry("dashboard", "reader");
  const { dir, file } = tempDbFile();
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
  const app = await buildApp({ store, logger: false, corsOrigins, tokens: parseTokenTable(JSON.stringify({ tokens: [reader.entry] }), "test tokens") });
  app.addHook("onClose", () => store.close());
  open = { app, dir };
  return { app, token: reader.token };
}

const preflight = (app: FastifyInstance, origin: string) => app.inject({
  method: "OPTIONS", url: "/v1/units",
  headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
});

const corsHeaders = (headers: Record<string, unknown>) => Object.keys(headers).filter((h) => h.startsWith("access-control-"));

describe("CORS off (the default)", () => {
  it("adds no Access-Control header and answers no preflight", async () => {
    const { app, token } = await appWith(null);
    const simple = await app.inject({ method: "GET", url: "/v1/units", headers: { origin: UI, authorization: `Bearer ${token}` } });
    expect(simple.statusCode).toBe(200);
    expect(corsHeaders(simple.headers)).toEqual([]);
    const pre = await preflight(app, UI);
    expect(pre.statusCode).not.toBe(204);
    expect(corsHeaders(pre.headers)).toEqual([]);
  });
});

describe("CORS with allowed origins", () => {
  it("answers a preflight from an allowed origin before authentication, without credentials", async () => {
    const { app } = await appWith([UI]);
    const pre = await preflight(app, UI);
    expect(pre.statusCode).toBe(204);
    expect(pre.headers["access-control-allow-origin"]).toBe(UI);
    expect(String(pre.headers["access-control-allow-methods"])).toMatch(/POST/);
    expect(String(pre.headers["access-control-allow-headers"]).toLowerCase()).toMatch(/authorization/);
    expect(pre.headers["access-control-allow-credentials"]).toBeUndefined();
    expect(String(pre.headers.vary)).toMatch(/origin/i);
  });

  it("a simple request from an allowed origin carries its origin; another origin is not reflected", async () => {
    const { app, token } = await appWith([UI]);
    const ok = await app.inject({ method: "GET", url: "/v1/units", headers: { origin: UI, authorization: `Bearer ${token}` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers["access-control-allow-origin"]).toBe(UI);
    expect(String(ok.headers["access-control-expose-headers"])).toMatch(/x-request-id/);
    expect(ok.headers["access-control-allow-credentials"]).toBeUndefined();
    const other = await app.inject({ method: "GET", url: "/v1/units", headers: { origin: OTHER, authorization: `Bearer ${token}` } });
    expect(other.statusCode).toBe(200);
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
    const otherPre = await preflight(app, OTHER);
    expect(otherPre.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it('"*" answers "*" itself, never the request\'s origin, and never with credentials', async () => {
    const { app, token } = await appWith(["*"]);
    const res = await app.inject({ method: "GET", url: "/v1/units", headers: { origin: OTHER, authorization: `Bearer ${token}` } });
    expect(res.headers["access-control-allow-origin"]).toBe("*");
    expect(res.headers["access-control-allow-credentials"]).toBeUndefined();
  });
});
