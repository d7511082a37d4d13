// The single-writer lock. One iommu-arbiter process owns a database file at a
// time: its in-memory model is the only copy that changes, so a second writer
// would silently diverge from it.
//
// The lock is a companion SQLite file, `<database>-lock`, written once in
// EXCLUSIVE locking mode and held open for the life of the store: SQLite's
// own file locks, released by the operating system if the process dies. The
// database file itself stays in normal locking mode, because the background
// checkpointer (checkpointer.ts) needs a second connection to it, which an
// EXCLUSIVE database connection would refuse.
//
// The lock belongs to the file, not to the way its path is spelled:
// - `<database>` is the canonical path (realpath: symbolic links and `..`
//   resolved by the kernel), so `link.db`, `./x/../db` and the real path all
//   name one lock file. SQLite resolves symbolic links the same way when it
//   names the database's -wal and -shm files.
// - A database with more than one hard link is refused outright. Its names
//   have no common canonical form, and SQLite itself keeps the -wal, -shm and
//   journal files per name, so two processes on two names would corrupt the
//   file whatever lock we took (sqlite.org/howtocorrupt.html, "multiple links
//   to a database file"). A lock row kept inside the database cannot fix that
//   either: in WAL mode even BEGIN IMMEDIATE locks the per-name -shm file.
// Two processes starting at once: both compute the same canonical path, so
// both try the same lock file, and SQLite's exclusive lock admits only one
// (timeout 0: the other fails at once). The link count is checked after the
// lock is taken, on the file as it is then: a name added earlier or later
// makes the count 2 for whoever opens it through any name afterwards.
// Renaming or moving a database while a server uses it stays unsupported
// (SQLite's WAL file keeps the old name).
import { readlinkSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

/** Another process holds the database file (the single-writer lock). */
export class StoreLockedError extends Error {
  constructor(file: string) {
    super(`database file ${file} is in use by another process; one iommu-arbiter owns a SQLite file at a time`);
  }
}

/** The database file has several names (hard links): no lock could cover them all. */
export class HardLinkedDatabaseError extends Error {
  constructor(file: string, links: number) {
    super(`database file ${file} has ${links} hard links; SQLite keeps its WAL and journal per name, so one writer cannot be guaranteed: remove the other links`);
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/**
 * The file's one true name: its realpath. A database about to be created has
 * none yet: then the realpath of its directory plus its name, following a
 * dangling symbolic link to where SQLite will create the file.
 */
export function canonicalPath(dbFile: string, hops = 0): string {
  try {
    return realpathSync(dbFile);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  let dir: string;
  try {
    dir = realpathSync(path.dirname(dbFile));
  } catch (error) {
    if (!isMissing(error)) throw error;
    return path.resolve(dbFile); // nothing there yet: no other name for it either
  }
  const file = path.join(dir, path.basename(dbFile));
  let target: string;
  try {
    target = readlinkSync(file);
  } catch {
    return file; // not there at all
  }
  if (hops >= 40) throw Object.assign(new Error(`too many symbolic links: ${dbFile}`), { code: "ELOOP" });
  return canonicalPath(path.resolve(dir, target), hops + 1);
}

export function lockFileOf(dbFile: string): string {
  return `${canonicalPath(dbFile)}-lock`;
}

export function isBusy(error: unknown): boolean {
  const e = error as { code?: unknown; cause?: { originalCode?: unknown }; message?: unknown };
  return e?.code === "SQLITE_BUSY" || e?.cause?.originalCode === "SQLITE_BUSY" || /database is locked|SQLITE_BUSY/.test(String(e?.message));
}

function linkCount(file: string): number {
  try {
    return statSync(file).nlink;
  } catch (error) {
    if (isMissing(error)) return 0; // created by the migration, with one name
    throw error;
  }
}

export class WriterLock {
  private constructor(private readonly db: Database.Database) {}

  /** Takes the lock at once or throws StoreLockedError; never waits. */
  static acquire(dbFile: string): WriterLock {
    const canonical = canonicalPath(dbFile);
    const db = new Database(`${canonical}-lock`, { timeout: 0 });
    try {
      db.pragma("locking_mode = EXCLUSIVE");
      // What the file holds does not matter, only its lock: no journal file beside it.
      db.pragma("journal_mode = MEMORY");
      // A real write: in EXCLUSIVE mode the exclusive lock it takes is kept
      // until the connection closes. The row says who holds it, for people
      // looking at the file after a crash.
      db.exec(`CREATE TABLE IF NOT EXISTS "holder" ("pid" INTEGER NOT NULL, "since" TEXT NOT NULL)`);
      db.transaction(() => {
        db.exec(`DELETE FROM "holder"`);
        db.prepare(`INSERT INTO "holder" ("pid", "since") VALUES (?, ?)`).run(process.pid, new Date().toISOString());
      })();
    } catch (error) {
      db.close();
      throw isBusy(error) ? new StoreLockedError(dbFile) : error;
    }
    const links = linkCount(canonical);
    if (links > 1) {
      db.close();
      throw new HardLinkedDatabaseError(dbFile, links);
    }
    return new WriterLock(db);
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
