// The writer lock belongs to the database file, not to the spelling of its
// path: a symbolic link to the file or to its directory, a path through `..`
// and a hard link must not open a second writer while the first holds it.
// Two stores in one process, as in checkpoint.test.ts: SQLite's file locks
// are shared by a process's connections, so these conflict as two
// processes would (test/server/process.test.ts does it with processes).
import { existsSync, linkSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canonicalPath, HardLinkedDatabaseError, lockFileOf, StoreLockedError } from "../../src/store/lock.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { DRIVERS } from "../../src/drivers/index.js";

const dirs: string[] = [];
const open: SqliteStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function openStore(file: string): Promise<SqliteStore> {
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
  open.push(store);
  return store;
}

/** A database in <dir>/real/, and other names for it. */
function layout() {
  const { dir } = tempDbFile();
  dirs.push(dir);
  const real = path.join(dir, "real");
  mkdirSync(real);
  mkdirSync(path.join(dir, "sub"));
  const file = path.join(real, "a.db");
  symlinkSync(file, path.join(dir, "link.db"));
  symlinkSync(real, path.join(dir, "linked-dir"));
  return { dir, file };
}

describe("writer lock keyed on the file", () => {
  it.each([
    ["a symbolic link to the file", (dir: string) => path.join(dir, "link.db")],
    ["a path through a linked directory", (dir: string) => path.join(dir, "linked-dir", "a.db")],
    ["a path through ..", (dir: string) => `${dir}/sub/../real/a.db`],
    ["a path through a linked directory and ..", (dir: string) => `${dir}/linked-dir/../real/a.db`],
  ])("refuses %s while a store holds the database", async (_name, alias) => {
    const { dir, file } = layout();
    const first = await openStore(file);
    expect(canonicalPath(alias(dir))).toBe(canonicalPath(file));
    await expect(SqliteStore.open({ drivers: DRIVERS, file: alias(dir), migrationsDir: MIGRATIONS })).rejects.toBeInstanceOf(StoreLockedError);
    // Through the other name once the first is closed: the same database.
    await first.close();
    open.splice(open.indexOf(first), 1);
    const second = await openStore(alias(dir));
    expect(second.stats().objects.unit).toBe(0);
  });

  it("refuses the real path while a store created the database through a symbolic link", async () => {
    const { dir, file } = layout();
    await openStore(path.join(dir, "link.db"));
    await expect(SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS })).rejects.toBeInstanceOf(StoreLockedError);
    expect(existsSync(`${file}-lock`)).toBe(true);
    expect(lockFileOf(path.join(dir, "link.db"))).toBe(`${canonicalPath(file)}-lock`);
  });

  it("refuses a hard link to a database a store holds, and a hard-linked database at all", async () => {
    const { dir, file } = layout();
    const first = await openStore(file);
    const hard = path.join(dir, "hard.db");
    linkSync(file, hard);
    await expect(SqliteStore.open({ drivers: DRIVERS, file: hard, migrationsDir: MIGRATIONS })).rejects.toBeInstanceOf(HardLinkedDatabaseError);
    await first.close();
    open.splice(open.indexOf(first), 1);
    // Even alone: its names cannot share one lock, nor SQLite's WAL.
    const error = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HardLinkedDatabaseError);
    expect((error as Error).message).toMatch(/has 2 hard links/);
    // With the extra name gone it opens again.
    rmSync(hard);
    await openStore(file);
  });
});
