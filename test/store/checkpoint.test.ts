// The writer lock (lock.ts) and the background WAL checkpointer
// (checkpointer.ts): one store per file, the store's own connection never
// checkpoints, the worker copies the WAL back after commits, and if the
// worker dies the store checkpoints inline again rather than letting the WAL
// grow without bound.
import { existsSync, rmSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { createUnit } from "../../src/core/objects.js";
import { lockFileOf, StoreLockedError } from "../../src/store/lock.js";
import { SqliteStore, StoreUnavailableError } from "../../src/store/store.js";
import { WalSync } from "../../src/store/wal-sync.js";
import type { Logger } from "pino";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { captureLog, LEVEL } from "../helpers/log.js";
import { DRIVERS } from "../../src/drivers/index.js";

const dirs: string[] = [];
const open: SqliteStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function newFile(): string {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  return file;
}

async function openStore(file: string, logger?: Logger): Promise<SqliteStore> {
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS, ...(logger ? { logger } : {}) });
  open.push(store);
  return store;
}

/** The store's writer connection; only touched while the store is idle. */
const writerOf = (store: SqliteStore) => (store as unknown as { db: Database.Database }).db;

async function autocheckpoint(store: SqliteStore): Promise<number> {
  return Number(writerOf(store).pragma("wal_autocheckpoint", { simple: true }));
}

async function writeUnits(store: SqliteStore, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await store.execute((m) => createUnit(m, { name: `${prefix}${i}`, driver: "mock" }));
    expect(r.ok).toBe(true);
  }
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("writer lock", () => {
  it("refuses a second store on the same file until the first is closed", async () => {
    const file = newFile();
    const first = await openStore(file);
    expect(existsSync(lockFileOf(file))).toBe(true);
    await expect(SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS })).rejects.toBeInstanceOf(StoreLockedError);
    await first.close();
    open.splice(open.indexOf(first), 1);
    const second = await openStore(file);
    expect(second.stats().objects.unit).toBe(0);
  });

  it("leaves the database itself readable by other connections while the store runs", async () => {
    const file = newFile();
    const store = await openStore(file);
    await writeUnits(store, "u", 3);
    const reader = new Database(file, { readonly: true, timeout: 0 });
    try {
      expect(reader.prepare(`SELECT count(*) AS n FROM "Unit"`).get()).toEqual({ n: 3 });
    } finally {
      reader.close();
    }
  });
});

describe("durability setting", () => {
  /** The store's WAL sync, replaced by one the test finishes by hand (null: the store has none). */
  function holdSyncs(store: SqliteStore) {
    const walSync = (store as unknown as { walSync: { sync(): Promise<void> } | null }).walSync;
    if (walSync === null) return null;
    const held: { finish(): void; fail(e: Error): void }[] = [];
    walSync.sync = () => new Promise<void>((resolve, reject) => held.push({ finish: resolve, fail: reject }));
    return held;
  }

  async function pending(p: Promise<unknown>): Promise<boolean> {
    let settled = false;
    p.then(() => { settled = true; }, () => { settled = true; });
    await new Promise((r) => setTimeout(r, 20));
    return !settled;
  }

  it.each([undefined, "full", "normal"] as const)("synchronous %s: the writer connection commits without syncing (PRAGMA synchronous = NORMAL)", async (synchronous) => {
    const store = await SqliteStore.open({ drivers: DRIVERS, file: newFile(), migrationsDir: MIGRATIONS, ...(synchronous ? { synchronous } : {}) });
    open.push(store);
    expect(writerOf(store).pragma("synchronous", { simple: true })).toBe(1);
  });

  it.each([undefined, "full"] as const)("synchronous %s: a change, a read after it and the event log are answered only once the WAL is synced", async (synchronous) => {
    const store = await SqliteStore.open({ drivers: DRIVERS, file: newFile(), migrationsDir: MIGRATIONS, ...(synchronous ? { synchronous } : {}) });
    open.push(store);
    const held = holdSyncs(store)!;
    const change = store.execute((m) => createUnit(m, { name: "u0", driver: "mock" }));
    await until(() => held.length === 1);
    // Committed (another connection sees it) but not yet synced: nobody is told about it.
    expect(await pending(change)).toBe(true);
    const read = store.read((m) => m.count("unit"));
    const events = store.events(0, 10);
    expect([await pending(read), await pending(events)]).toEqual([true, true]);
    held[0]!.finish();
    const made = await change;
    expect(made.ok).toBe(true);
    expect(await read).toBe(1);
    // The unit's creation is the log's first event, answered with the change.
    expect((await events).map((e) => [e.seq, e.op, e.kind, e.objectId])).toEqual([[1, "create", "unit", made.ok ? made.value.id : null]]);
  });

  it("synchronous normal: a change is answered once committed, with no WAL sync", async () => {
    const store = await SqliteStore.open({ drivers: DRIVERS, file: newFile(), migrationsDir: MIGRATIONS, synchronous: "normal" });
    open.push(store);
    expect(holdSyncs(store)).toBeNull();
    expect((await store.execute((m) => createUnit(m, { name: "u0", driver: "mock" }))).ok).toBe(true);
  });

  it("a failed WAL sync refuses the changes it covered (503), and the store recovers by itself", async () => {
    const log = captureLog();
    const store = await SqliteStore.open({ drivers: DRIVERS, file: newFile(), migrationsDir: MIGRATIONS, recoveryIntervalMs: 10, logger: log.logger });
    open.push(store);
    const held = holdSyncs(store)!;
    const change = store.execute((m) => createUnit(m, { name: "u0", driver: "mock" }));
    await until(() => held.length === 1);
    held[0]!.fail(new Error("EIO: i/o error, fdatasync"));
    await expect(change).rejects.toBeInstanceOf(StoreUnavailableError);
    const failed = log.lines.filter((l) => l.level === LEVEL.error);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.err?.message).toMatch(/fdatasync/);
    expect(store.health().ready).toBe(false);
    // The recovery probe syncs for real (the held sync is only the runner's).
    await until(() => store.health().ready);
    const next = store.execute((m) => createUnit(m, { name: "u1", driver: "mock" }));
    await until(() => held.length === 2);
    held[1]!.finish();
    expect((await next).ok).toBe(true);
  });
});

describe("WalSync", () => {
  it("syncs the WAL of a database in WAL mode, and refuses when there is none", async () => {
    const file = newFile();
    const store = await openStore(file);
    await writeUnits(store, "u", 1);
    const sync = new WalSync(file);
    try {
      await expect(sync.sync()).resolves.toBeUndefined();
      expect(() => sync.syncNow()).not.toThrow();
    } finally {
      sync.close();
    }
    const missing = new WalSync(`${file}.absent`);
    await expect(missing.sync()).rejects.toThrow(/ENOENT/);
  });
});

describe("background checkpointer", () => {
  it("keeps the store's own connection from checkpointing", async () => {
    const store = await openStore(newFile());
    expect(await autocheckpoint(store)).toBe(0);
  });

  it("copies the WAL back after commits without being asked", async () => {
    const file = newFile();
    const store = await openStore(file);
    await writeUnits(store, "u", 20);
    await until(() => store.stats().checkpoints > 0);
    await until(() => store.stats().framesCheckpointed > 0);
    // An explicit one afterwards finds everything already copied or copies the rest.
    const r = await store.checkpoint();
    expect(r.busy).toBe(0);
    expect(r.checkpointed).toBe(r.log);
    // Another connection sees every row from the database file plus WAL.
    const reader = new Database(file, { readonly: true });
    try {
      expect(reader.prepare(`SELECT count(*) AS n FROM "Unit"`).get()).toEqual({ n: 20 });
    } finally {
      reader.close();
    }
  });

  it("runs an explicit checkpoint after the one in flight, so it covers every commit before the call", async () => {
    const store = await openStore(newFile());
    await writeUnits(store, "u", 30);
    const before = store.stats().checkpoints;
    const [first, second] = await Promise.all([store.checkpoint(), store.checkpoint()]);
    expect(store.stats().checkpoints - before).toBeGreaterThanOrEqual(2);
    expect(first.checkpointed).toBe(first.log);
    expect(second.checkpointed).toBe(second.log);
  });

  it("keeps the WAL bounded under a stream of commits", async () => {
    const file = newFile();
    const store = await openStore(file);
    const walSize = () => statSync(`${file}-wal`).size;
    await writeUnits(store, "r0-", 200);
    await store.checkpoint();
    const first = walSize();
    for (let round = 1; round <= 4; round++) {
      await writeUnits(store, `r${round}-`, 200);
      await store.checkpoint();
    }
    // Without checkpoints the WAL would hold all five rounds (about 5x the
    // first); SQLite reuses it from the start once it has been copied back,
    // so it stays near one round's size (a checkpoint running while commits
    // continue can let it run a little past).
    expect(walSize()).toBeLessThan(first * 2.5);
    expect(store.stats().checkpoints).toBeGreaterThan(4);
  });

  it("falls back to SQLite's inline checkpoints if the worker dies", async () => {
    const log = captureLog();
    const store = await openStore(newFile(), log.logger);
    const worker = (store as unknown as { checkpointer: { worker: { terminate(): Promise<number> } } }).checkpointer.worker;
    await worker.terminate();
    const failures = () => log.matching(/checkpointer failed; SQLite checkpoints inline/);
    await until(() => failures().length === 1);
    expect(failures()[0]).toMatchObject({ level: LEVEL.warn, err: { message: expect.stringMatching(/checkpointer exited/) } });
    // The fallback turns inline checkpoints back on for the writer connection.
    await writeUnits(store, "after", 1);
    expect(await autocheckpoint(store)).toBe(1000);
    await expect(store.checkpoint()).rejects.toThrow(/stopped/);
  });

  it("survives a restart: everything written is there, the WAL gone after a clean close", async () => {
    const file = newFile();
    const first = await openStore(file);
    await writeUnits(first, "r", 25);
    await first.close();
    open.splice(open.indexOf(first), 1);
    // The last connection to close copied the rest back and removed the WAL.
    expect(existsSync(`${file}-wal`)).toBe(false);
    const second = await openStore(file);
    expect(second.stats().objects.unit).toBe(25);
  });
});
