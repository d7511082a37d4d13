// /livez, /healthz and /readyz: live while the process answers; ready only
// while the database answers a query with every migration applied, and not
// while draining for a shutdown.
import { afterEach, describe, expect, it } from "vitest";
import { makeTestApp, onTheDatabase, type TestApp } from "../helpers/app.js";

let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function get(url: string) {
  const res = await t!.app.inject({ method: "GET", url });
  return { status: res.statusCode, type: String(res.headers["content-type"]), retryAfter: res.headers["retry-after"], body: JSON.parse(res.body) as Record<string, unknown> };
}

function expectNotReady(a: Awaited<ReturnType<typeof get>>, detail: RegExp): void {
  expect(a.status).toBe(503);
  expect(a.type).toMatch(/^application\/problem\+json/);
  expect(a.retryAfter).toMatch(/^\d+$/);
  expect(a.body).toMatchObject({ reason: "not-ready", errno: "EIO" });
  expect(String(a.body.detail)).toMatch(detail);
}

describe("probes", () => {
  it("/livez and /healthz: the process answers", async () => {
    t = await makeTestApp();
    expect(await get("/livez")).toMatchObject({ status: 200, body: { status: "ok" } });
    expect(await get("/healthz")).toMatchObject({ status: 200, body: { status: "ok" } });
  });

  it("/readyz: ready on a migrated database that answers", async () => {
    t = await makeTestApp();
    expect(await get("/readyz")).toMatchObject({ status: 200, body: { status: "ready" } });
  });

  it("/readyz: 503 while the database refuses the query, ready again once it answers", async () => {
    t = await makeTestApp();
    await onTheDatabase(t, `ALTER TABLE "_prisma_migrations" RENAME TO "_hidden"`);
    expectNotReady(await get("/readyz"), /the database does not answer: .*_prisma_migrations/);
    // Live all the same: the process answers.
    expect((await get("/livez")).status).toBe(200);
    await onTheDatabase(t, `ALTER TABLE "_hidden" RENAME TO "_prisma_migrations"`);
    expect((await get("/readyz")).status).toBe(200);
  });

  it("/readyz: 503 while a migration of the folder is not applied to the database", async () => {
    t = await makeTestApp();
    const [row] = await onTheDatabase(t, `SELECT migration_name AS name FROM "_prisma_migrations" ORDER BY migration_name DESC LIMIT 1`);
    const last = String(row!.name);
    await onTheDatabase(t, `UPDATE "_prisma_migrations" SET rolled_back_at = finished_at WHERE migration_name = '${last}'`);
    expectNotReady(await get("/readyz"), new RegExp(`migration ${last} is not applied`));
  });

  it("while draining: /readyz 503, other requests refused with a problem document and Connection: close, /livez still 200", async () => {
    t = await makeTestApp();
    t.app.startDraining();
    expect(t.app.draining).toBe(true);
    expectNotReady(await get("/readyz"), /shutting down/);
    const units = await t.app.inject({ method: "GET", url: "/v1/units" });
    expect(units.statusCode).toBe(503);
    expect(units.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(units.headers["retry-after"]).toMatch(/^\d+$/);
    expect(units.headers.connection).toBe("close");
    expect(JSON.parse(units.body)).toMatchObject({ reason: "not-ready" });
    const live = await t.app.inject({ method: "GET", url: "/livez" });
    expect(live.statusCode).toBe(200);
    expect(live.headers.connection).toBe("close");
  });
});
