// Answers remembered under an idempotency key: written in the same
// transaction as the operation they answer, kept across a restart, gone
// after their time to live, and never written for an operation whose own
// write failed.
import { rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { createUnit } from "../../src/core/objects.js";
import type { Prisma } from "../../src/store/database.js";
import { SqliteStore, StoreUnavailableError, type SqliteStoreOptions } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { DRIVERS } from "../../src/drivers/index.js";

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(file: string, extra: Partial<SqliteStoreOptions> = {}): Promise<SqliteStore> {
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS, ...extra });
  stores.push(store);
  return store;
}

function newFile(): string {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  return file;
}

const remember = (key: string, client = "vmm-a") => ({
  client, key, fingerprint: `fp-${key}`,
  answer: (r: { ok: boolean }) => ({ status: r.ok ? 201 : 409, contentType: "application/json", body: JSON.stringify(r), headers: { etag: '"v1"' } }),
});

describe("remembered answers", () => {
  it("are stored with the operation, per client, and survive a restart", async () => {
    const file = newFile();
    const store = await open(file);
    const r = await store.execute((m) => createUnit(m, { name: "u1", driver: "mock" }), { remember: remember("k1") });
    expect(r.ok).toBe(true);
    const got = await store.remembered("vmm-a", "k1");
    expect(got).toMatchObject({ fingerprint: "fp-k1", status: 201, contentType: "application/json", headers: { etag: '"v1"' } });
    expect(JSON.parse(got!.body)).toMatchObject({ ok: true, value: { name: "u1" } });
    expect(await store.remembered("vmm-b", "k1")).toBeUndefined();
    expect(await store.remembered("vmm-a", "k2")).toBeUndefined();

    await stores.pop()!.close();
    const again = await open(file);
    expect(await again.remembered("vmm-a", "k1")).toMatchObject({ fingerprint: "fp-k1", status: 201 });
  });

  it("are kept for refusals too", async () => {
    const store = await open(newFile());
    await store.execute((m) => createUnit(m, { name: "dup", driver: "mock" }));
    const r = await store.execute((m) => createUnit(m, { name: "dup", driver: "mock" }), { remember: remember("k") });
    expect(r.ok).toBe(false);
    expect(await store.remembered("vmm-a", "k")).toMatchObject({ status: 409 });
  });

  it("expire after their time to live", async () => {
    const store = await open(newFile(), { idempotencyTtlMs: 50 });
    await store.execute((m) => createUnit(m, { name: "u", driver: "mock" }), { remember: remember("k") });
    expect(await store.remembered("vmm-a", "k")).toBeDefined();
    await new Promise((r) => setTimeout(r, 80));
    expect(await store.remembered("vmm-a", "k")).toBeUndefined();
  });

  it("are not stored when the operation's write fails: the two are one transaction", async () => {
    const store = await open(newFile());
    const prisma = (store as unknown as { prisma: Prisma }).prisma;
    await prisma.$executeRawUnsafe(`CREATE TRIGGER "refuse" BEFORE INSERT ON "Unit" BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    await expect(store.execute((m) => createUnit(m, { name: "u", driver: "mock" }), { remember: remember("k") }))
      .rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.remembered("vmm-a", "k")).toBeUndefined();
  });
});
