// The PostgreSQL store across restarts: a replica opened later rebuilds the
// same model from the database; event retention and idempotent answers
// behave as on SQLite (test/store/retention.test.ts,
// test/store/idempotency-restart.test.ts), with every replica pruning.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANONYMOUS } from "../../src/core/caller.js";
import { KINDS } from "../../src/core/model.js";
import { createDomain, createGroup, createUnit } from "../../src/core/objects.js";
import { attachGroup, detachGroup } from "../../src/core/group-moves.js";
import { ok } from "../../src/core/result.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { PostgresStore, type PostgresStoreOptions } from "../../src/store/postgres.js";
import { POSTGRES_MIGRATIONS } from "../helpers/app.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("restart");
});
afterAll(async () => {
  await db?.drop();
});

function open(options: Partial<PostgresStoreOptions> = {}): Promise<PostgresStore> {
  return PostgresStore.open({ drivers: DRIVERS, url: db.url, migrationsDir: POSTGRES_MIGRATIONS, ...options });
}

async function cycles(store: PostgresStore, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await store.execute((m) => attachGroup(m, ANONYMOUS, 1, 2));
    await store.execute((m) => detachGroup(m, ANONYMOUS, 1, 2));
  }
}

/** Every row of the model, kind by kind, as plain data. */
function image(store: PostgresStore): Promise<string> {
  return store.read((m) => JSON.stringify(KINDS.map((kind) => [kind, [...m.all(kind)]])));
}

describe("the PostgreSQL store across restarts", () => {
  it("keeps the newest N events on whichever replica writes, and a replica opened later rebuilds the same model", async () => {
    const first = await open({ eventRetention: 10 });
    const second = await open({ eventRetention: 10 });
    try {
      await first.execute((m) => createUnit(m, { name: "u", driver: "mock" }));
      await second.execute((m) => createGroup(m, { name: "g", unitId: 1 })); // default domain 1
      await first.execute((m) => createDomain(m, { type: "paging", unitId: 1 })); // domain 2
      await cycles(first, 5);
      await cycles(second, 5);
      await cycles(first, 5); // 33 events in all
      expect((await second.events(0, 1000)).map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 24 + i));
      // A read catches the replica up with what the other wrote.
      await second.read(() => null);
      expect(second.eventBounds()).toEqual({ durable: 33, prunedUpTo: 23 });
      const later = await open({ eventRetention: 10 });
      try {
        expect(await image(later)).toBe(await image(first));
        expect(await image(later)).toBe(await image(second));
        expect(later.eventBounds()).toEqual({ durable: 33, prunedUpTo: 23 });
        await cycles(later, 3);
        expect((await first.events(0, 1000)).map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 30 + i));
      } finally {
        await later.close();
      }
    } finally {
      await first.close();
      await second.close();
    }
  });

  it("a remembered answer survives a restart and is found by any replica until it expires", async () => {
    let now = 1_000_000;
    const ttl = 60_000;
    const first = await open({ idempotencyTtlMs: ttl, now: () => now });
    const answer = { status: 201, contentType: "application/json", body: '{"id":1}' };
    const r = await first.execute(() => ok(1), { remember: { client: "vmm-a", key: "k1", fingerprint: "fp", answer: () => answer } });
    expect(r.ok).toBe(true);
    await first.close();
    const again = await open({ idempotencyTtlMs: ttl, now: () => now });
    try {
      expect(await again.remembered("vmm-a", "k1")).toMatchObject({ fingerprint: "fp", status: 201, body: '{"id":1}' });
      expect(await again.remembered("vmm-b", "k1")).toBeUndefined();
      now += ttl;
      expect(await again.remembered("vmm-a", "k1")).toBeUndefined();
    } finally {
      await again.close();
    }
  });

  it("an operation that throws fails alone and leaves no trace; the lock is free for the next batch", async () => {
    const store = await open();
    try {
      const before = await image(store);
      const [thrown, fine] = await Promise.allSettled([
        store.execute((m) => {
          createUnit(m, { name: "half-made", driver: "mock" });
          throw new Error("a bug in an operation");
        }),
        store.execute((m) => createUnit(m, { name: "made", driver: "mock" })),
      ]);
      expect(thrown.status).toBe("rejected");
      expect(fine.status).toBe("fulfilled");
      const names = await store.read((m) => [...m.all("unit")].map((u) => u.name));
      expect(names).toContain("made");
      expect(names).not.toContain("half-made");
      expect(before).not.toBe(await image(store));
      const other = await open();
      try {
        expect(await other.read((m) => [...m.all("unit")].map((u) => u.name))).toEqual(names);
        // The lock was released: another replica's write goes through, and the event seqs have no hole.
        expect((await other.execute((m) => createUnit(m, { name: "after", driver: "mock" }))).ok).toBe(true);
        const seqs = (await other.events(0, 10_000)).map((e) => e.seq);
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
      } finally {
        await other.close();
      }
    } finally {
      await store.close();
    }
  });

  it("event seqs go past 2^31 (BIGINT on PostgreSQL, as SQLite's INTEGER holds 64 bits)", async () => {
    const first = await open();
    await first.execute((m) => createUnit(m, { name: "before-the-jump", driver: "mock" }));
    await first.close();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`UPDATE "IdWatermark" SET "last" = 3000000000 WHERE "kind" = 'event'`);
    await client.end();
    const again = await open();
    try {
      await again.execute((m) => createUnit(m, { name: "after-the-jump", driver: "mock" }));
      const events = await again.events(2_999_999_999, 10);
      expect(events.map((e) => e.seq)).toEqual([3_000_000_001]);
      expect(again.eventBounds().durable).toBe(3_000_000_001);
    } finally {
      await again.close();
    }
  });

  it.each([
    ["a lone UTF-16 surrogate", "bad-\ud800"],
    ["a NUL character", "bad-\0"],
  ])("a row with %s fails its operation alone (400 invalid-request), and the batch's others commit", async (_what, name) => {
    const store = await open();
    try {
      const [bad, fine] = await Promise.all([
        store.execute((m) => createUnit(m, { name, driver: "mock" })),
        store.execute((m) => createUnit(m, { name: `fine-${name.length}-${Math.random()}`, driver: "mock" })),
      ]);
      expect(bad.ok ? null : bad.error.reason).toBe("invalid-request");
      expect(fine.ok).toBe(true);
      expect(await store.read((m) => [...m.all("unit")].some((u) => u.name === name))).toBe(false);
      expect(store.health().ready).toBe(true);
    } finally {
      await store.close();
    }
  });
});
