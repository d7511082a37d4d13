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
import Database from "better-sqlite3";

/** Another process holds the database file (the single-writer lock). */
export class StoreLockedError extends Error {
  constructor(file: string) {
    super(`database file ${file} is in use by another process; one iommu-arbiter owns a SQLite file at a time`);
  }
}

export function lockFileOf(dbFile: string): string {
  return `${dbFile}-lock`;
}

export function isBusy(error: unknown): boolean {
  const e = error as { code?: unknown; cause?: { originalCode?: unknown }; message?: unknown };
  return e?.code === "SQLITE_BUSY" || e?.cause?.originalCode === "SQLITE_BUSY" || /database is locked|SQLITE_BUSY/.test(String(e?.message));
}

export class WriterLock {
  private constructor(private readonly db: Database.Database) {}

  /** Takes the lock at once or throws StoreLockedError; never waits. */
  static acquire(dbFile: string): WriterLock {
    const db = new Database(lockFileOf(dbFile), { timeout: 0 });
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
      return new WriterLock(db);
    } catch (error) {
      db.close();
      throw isBusy(error) ? new StoreLockedError(dbFile) : error;
    }
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
