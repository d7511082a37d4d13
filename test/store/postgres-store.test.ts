// Two replicas in one process, each its own PostgresStore and app, on one
// real PostgreSQL database: what one commits, the other sees at once; they
// race for one lock and give one arbitrated answer; a lost database is a 503
// that heals by itself; a statement PostgreSQL refuses fails only its own
// operation. (Separate processes, kill -9 and a database restart are in
// test/server/replicas-*.test.ts.)
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/http/app.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { PostgresStore, WRITE_LOCK_KEY } from "../../src/store/postgres.js";
import type { EventRow } from "../../src/store/event-page.js";
import { POSTGRES_MIGRATIONS, TEST_LIMITS } from "../helpers/app.js";
import { Client, uniqueName, type ContainerView, type GroupView, type PageView, type SearchView, type UnitView } from "../helpers/http.js";
import { createTestDatabase, POSTGRES_SERVER_URL, type TestDatabase } from "../helpers/postgres.js";

interface Replica {
  readonly store: PostgresStore;
  readonly app: FastifyInstance;
  readonly c: Client;
}

let db: TestDatabase;
let a: Replica;
let b: Replica;

async function replica(url: string, options: { notifications?: boolean; pollIntervalMs?: number } = {}): Promise<Replica> {
  const store = await PostgresStore.open({ drivers: DRIVERS, url, migrationsDir: POSTGRES_MIGRATIONS, recoveryIntervalMs: 100, ...options });
  const app = await buildApp({ store, logger: false, limits: TEST_LIMITS });
  app.addHook("onClose", () => store.close());
  await app.ready();
  return { store, app, c: new Client(app) };
}

/** Runs SQL on the test database as an operator would, from a connection of its own. */
async function admin<T extends pg.QueryResultRow>(sql: string, url = db.url): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Waits (without a deadline of its own: the test's timeout is the bound) until `check` holds. */
async function eventually(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 20));
}

beforeAll(async () => {
  db = await createTestDatabase("replicas");
  // Both start on the new database together: the migrations run once.
  [a, b] = await Promise.all([replica(db.url), replica(db.url)]);
});

afterAll(async () => {
  await a?.app.close();
  await b?.app.close();
  await db?.drop();
});

describe("two replicas on one PostgreSQL database", () => {
  it("applied each migration once, and every foreign key is checked at commit (deferred), as the SQLite writer checks them", async () => {
    const rows = await admin<{ migration_name: string; n: string }>(`SELECT migration_name, count(*) AS n FROM "_prisma_migrations" GROUP BY migration_name`);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
    const fks = await admin<{ conname: string; condeferrable: boolean; condeferred: boolean }>(
      `SELECT conname, condeferrable, condeferred FROM pg_constraint WHERE contype = 'f'`);
    expect(fks.length).toBeGreaterThan(10);
    expect(fks.filter((k) => !k.condeferrable || !k.condeferred).map((k) => k.conname)).toEqual([]);
  });

  it("what one replica committed, the other reads at once (no wait, no stale answer)", async () => {
    for (let i = 0; i < 5; i++) {
      const unit = await a.c.unit();
      expect((await b.c.read<UnitView>(`/v1/units/${unit.id}`)).name).toBe(unit.name);
      const online = i % 2 === 1;
      await b.c.ok("PATCH", `/v1/units/${unit.id}`, { online });
      expect((await a.c.read<UnitView>(`/v1/units/${unit.id}`)).online).toBe(online);
    }
  });

  it("a replica that hears nothing of the others (no NOTIFY, no poll) still reads what they committed before the read began", async () => {
    const deaf = await replica(db.url, { notifications: false, pollIntervalMs: 3_600_000 });
    try {
      for (let i = 0; i < 5; i++) {
        const unit = await a.c.unit();
        expect((await deaf.c.read<UnitView>(`/v1/units/${unit.id}`)).name).toBe(unit.name);
        await a.c.ok("PATCH", `/v1/units/${unit.id}`, { online: false });
        expect((await deaf.c.read<UnitView>(`/v1/units/${unit.id}`)).online).toBe(false);
      }
    } finally {
      await deaf.app.close();
    }
  });

  it("ids continue where the last writer stopped, on either replica, and are never handed out twice", async () => {
    const unit = await a.c.unit();
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).c.group(unit.id)));
    const ids = made.map((g) => g.id);
    expect(new Set(ids).size).toBe(20);
    const last = Math.max(...ids);
    await a.c.expect(204, "DELETE", `/v1/groups/${last}`);
    const next = await b.c.group(unit.id);
    expect(next.id).toBeGreaterThan(last);
  });

  it("the same name created on both replicas at once: one 201, one clean 409", async () => {
    for (let i = 0; i < 5; i++) {
      const name = uniqueName("contended");
      const [x, y] = await Promise.all([a.c.post("/v1/units", { name, driver: "intel-vtd" }), b.c.post("/v1/units", { name, driver: "intel-vtd" })]);
      expect([x.status, y.status].sort()).toEqual([201, 409]);
    }
  });

  it("a container search on one replica finds the domain a search on the other allocated a moment ago", async () => {
    const unit = await a.c.unit({ driver: "intel-vtd" });
    const ct = await a.c.container();
    const first = await a.c.groupWith(unit.id);
    const second = await b.c.groupWith(unit.id);
    const r1 = await a.c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: first.group.id });
    const r2 = await b.c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: second.group.id });
    expect(r1.allocated).toBe(true);
    expect(r2.allocated).toBe(false);
    expect(r2.domain.id).toBe(r1.domain.id);
    expect((await a.c.read<ContainerView>(`/v1/containers/${ct.id}`)).domainIds).toEqual([r1.domain.id]);
  });

  it("racing container searches spread over both replicas make one automatic domain for one compatible set", async () => {
    const unit = await a.c.unit({ driver: "intel-vtd" });
    const ct = await b.c.container();
    const groups: GroupView[] = [];
    for (let i = 0; i < 8; i++) groups.push((await a.c.groupWith(unit.id)).group);
    const answers = await Promise.all(groups.map((g, i) => (i % 2 === 0 ? a : b).c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: g.id })));
    expect(answers.filter((r) => r.allocated)).toHaveLength(1);
    expect(new Set(answers.map((r) => r.domain.id)).size).toBe(1);
  });

  it("a replica's live subscribers get the events another replica commits, in seq order, with no gap", async () => {
    const seen: EventRow[] = [];
    const stop = b.store.subscribe((events) => seen.push(...events));
    try {
      const before = b.store.eventBounds().durable;
      for (let i = 0; i < 5; i++) await a.c.unit();
      const last = (await a.c.events(before)).at(-1)!.seq;
      await eventually(() => seen.some((e) => e.seq === last));
      const seqs = seen.map((e) => e.seq).filter((s) => s > before && s <= last);
      expect(seqs).toEqual(Array.from({ length: last - before }, (_, i) => before + 1 + i));
    } finally {
      stop();
    }
  });

  it("an Idempotency-Key answered on one replica is replayed by the other; sent to both at once, it runs once", async () => {
    const key = uniqueName("key");
    const name = uniqueName("keyed");
    const first = await a.c.send("POST", "/v1/units", { name, driver: "intel-vtd" }, { "idempotency-key": `"${key}"` });
    expect(first.status).toBe(201);
    const again = await b.c.send("POST", "/v1/units", { name, driver: "intel-vtd" }, { "idempotency-key": `"${key}"` });
    expect(again.status).toBe(201);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.text).toBe(first.text);

    for (let i = 0; i < 5; i++) {
      const both = uniqueName("both");
      const k = uniqueName("key");
      const [x, y] = await Promise.all([a, b].map((r) => r.c.send("POST", "/v1/units", { name: both, driver: "intel-vtd" }, { "idempotency-key": `"${k}"` })));
      expect([x!.status, y!.status]).toEqual([201, 201]);
      expect(x!.text).toBe(y!.text);
      const units = (await a.c.read<PageView<UnitView>>("/v1/units?limit=1000")).items.filter((u) => u.name === both);
      expect(units).toHaveLength(1);
    }
  });

  it("a statement PostgreSQL refuses fails only its own operation; the batch's others commit", async () => {
    await admin(`CREATE FUNCTION refuse_unit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql`);
    await admin(`CREATE TRIGGER refuse_unit BEFORE INSERT ON "Unit" FOR EACH ROW WHEN (NEW.name LIKE 'refused-%') EXECUTE FUNCTION refuse_unit()`);
    try {
      const names = ["fine-1", "refused-1", "fine-2", "fine-3"].map((n) => uniqueName(n));
      // Sent together, so that they share a batch.
      const answers = await Promise.all(names.map((name) => a.c.post("/v1/units", { name, driver: "intel-vtd" })));
      expect(answers.map((r) => r.status)).toEqual([201, 503, 201, 201]);
      expect(answers[1]!.headers["retry-after"]).toMatch(/^\d+$/);
      expect(answers[1]!.body).toMatchObject({ reason: "store-unavailable" });
      const listed = (await b.c.read<PageView<UnitView>>("/v1/units?limit=1000")).items.map((u) => u.name);
      expect(names.filter((n) => listed.includes(n))).toEqual([names[0], names[2], names[3]]);
      // Neither replica kept the refused unit in its model.
      expect((await a.c.read<PageView<UnitView>>("/v1/units?limit=1000")).items.map((u) => u.name)).not.toContain(names[1]);
      expect(a.store.health().ready).toBe(true);
    } finally {
      await admin(`DROP TRIGGER refuse_unit ON "Unit"; DROP FUNCTION refuse_unit()`);
    }
  });

  it("losing the database: 503 problem+json with Retry-After (never a stale success), then serving again by itself", async () => {
    const kept = await a.c.unit();
    // New connections are refused and the open ones are cut: the database is gone for the replicas.
    await admin(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS false`, POSTGRES_SERVER_URL);
    await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND pid <> pg_backend_pid()`, POSTGRES_SERVER_URL);
    try {
      await eventually(() => !a.store.health().ready && !b.store.health().ready);
      for (const r of [a, b]) {
        const write = await r.c.post("/v1/units", { name: uniqueName("during"), driver: "intel-vtd" });
        expect(write.status).toBe(503);
        expect(write.headers["content-type"]).toMatch(/^application\/problem\+json/);
        expect(write.headers["retry-after"]).toMatch(/^\d+$/);
        expect(write.body).toMatchObject({ reason: "store-unavailable" });
        const read = await r.c.get(`/v1/units/${kept.id}`);
        expect(read.status).toBe(503);
        expect(read.headers["retry-after"]).toMatch(/^\d+$/);
        expect((await r.c.get("/readyz")).status).toBe(503);
      }
    } finally {
      await admin(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS true`, POSTGRES_SERVER_URL);
    }
    await eventually(() => a.store.health().ready && b.store.health().ready);
    expect((await a.c.get("/readyz")).status).toBe(200);
    const after = await b.c.unit();
    expect((await a.c.read<UnitView>(`/v1/units/${after.id}`)).id).toBe(after.id);
    expect((await b.c.read<UnitView>(`/v1/units/${kept.id}`)).name).toBe(kept.name);
    // Nothing written while the database was gone.
    const names = (await a.c.read<PageView<UnitView>>("/v1/units?limit=1000")).items.map((u) => u.name);
    expect(names.filter((n) => n.startsWith("during"))).toEqual([]);
  });

  it("a replica the change log was pruned past reloads the whole model and still announces every event", async () => {
    const seen: EventRow[] = [];
    const stop = b.store.subscribe((events) => seen.push(...events));
    try {
      const before = b.store.eventBounds().durable;
      // As if both replicas had been away while thousands of batches were
      // written and pruned: the entries after their position are gone.
      await admin(`UPDATE "ChangeLog" SET "seq" = "seq" + 100000`);
      const made: UnitView[] = [];
      for (let i = 0; i < 3; i++) made.push(await a.c.unit());
      for (const unit of made) expect((await b.c.read<UnitView>(`/v1/units/${unit.id}`)).name).toBe(unit.name);
      await b.c.ok("PATCH", `/v1/units/${made[0]!.id}`, { online: false });
      expect((await a.c.read<UnitView>(`/v1/units/${made[0]!.id}`)).online).toBe(false);
      const last = (await a.c.events(before)).at(-1)!.seq;
      await eventually(() => seen.some((e) => e.seq === last));
      expect(seen.map((e) => e.seq).filter((s) => s > before && s <= last)).toEqual(Array.from({ length: last - before }, (_, i) => before + 1 + i));
    } finally {
      stop();
    }
  });

  it("a database that lost this replica's last commits (a failover to a standby behind): its next write reloads the model first", async () => {
    const kept = await a.c.unit();
    const lost = await a.c.unit();
    // What a standby that had not received the last batch would hold.
    await admin(`DELETE FROM "ChangeLog" WHERE "seq" = (SELECT max("seq") FROM "ChangeLog");
      DELETE FROM "Event" WHERE "kind" = 'unit' AND "objectId" = ${lost.id}; DELETE FROM "Unit" WHERE "id" = ${lost.id}`);
    const next = await a.c.unit();
    expect(next.id).toBeGreaterThan(lost.id);
    expect((await a.c.get(`/v1/units/${lost.id}`)).status).toBe(404);
    expect((await a.c.read<UnitView>(`/v1/units/${kept.id}`)).name).toBe(kept.name);
    expect((await a.c.read<UnitView>(`/v1/units/${next.id}`)).name).toBe(next.name);
  });

  it.each([
    ["its write connection", "iommu-arbiter writer"],
    ["its notification connection", "iommu-arbiter listener"],
    ["its read connections", "iommu-arbiter reader"],
  ])("a replica whose %s the server closed (idle too long, a proxy restarted) opens another without refusing anything", async (_what, name) => {
    await a.c.unit();
    await b.c.unit();
    await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND application_name = '${name}'`, POSTGRES_SERVER_URL);
    for (let i = 0; i < 3; i++) {
      const made = await a.c.unit();
      expect((await b.c.read<UnitView>(`/v1/units/${made.id}`)).id).toBe(made.id);
      expect(a.store.health().ready && b.store.health().ready).toBe(true);
    }
  });

  it("while a write waits for the lock another replica holds, reads on the waiting replica are still answered", async () => {
    const unit = await a.c.unit();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK_KEY})`);
      const write = b.c.post("/v1/units", { name: uniqueName("waiting"), driver: "intel-vtd" });
      let written = false;
      void write.then(() => { written = true; });
      // Give the write time to reach the lock; it cannot get it.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await b.c.read<UnitView>(`/v1/units/${unit.id}`)).name).toBe(unit.name);
      expect(written).toBe(false);
      await holder.query("COMMIT");
      expect((await write).status).toBe(201);
    } finally {
      await holder.end();
    }
  });
});
