// The store's own SQLite connections, opened with better-sqlite3: one writer
// (every change goes through it, one transaction per group-commit batch) and
// one read-only reader (the event log and remembered answers), so that reads
// of the log never queue behind writes. The single-writer lock is lock.ts's;
// checkpoints are checkpointer.ts's.
import Database from "better-sqlite3";

export type Connection = Database.Database;

/**
 * How long the store waits for the disk before answering. "full": until the
 * WAL holding the change is synced, so an answered operation survives a
 * power loss. "normal": the WAL is synced only at checkpoints; an answered
 * operation survives the process being killed, but the last commits may be
 * lost if the machine loses power.
 *
 * Either way the connection itself commits at SQLite's synchronous = NORMAL:
 * for "full" the store syncs the WAL after the commit, off the event loop
 * (wal-sync.ts), instead of SQLite doing the same sync inside the commit,
 * where the whole event loop would wait for the disk.
 */
export const SYNCHRONOUS_MODES = ["full", "normal"] as const;
export type Synchronous = (typeof SYNCHRONOUS_MODES)[number];

export function openWriter(file: string): Connection {
  const db = new Database(file, { timeout: 5000 });
  try {
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    // better-sqlite3 is built with a 16 MB page cache. Reads are answered
    // from the in-memory model, so the cache only serves the pages a batch
    // writes: SQLite's own default of 2 MB is plenty.
    db.pragma("cache_size = -2000");
    // This connection never checkpoints: the background checkpointer does,
    // off the event loop (the store turns this back on if that one fails).
    db.pragma("wal_autocheckpoint = 0");
    // SQLite reuses the WAL from the start once it has been copied back but
    // never shrinks it: after a burst, cut it back to 64 MB on disk.
    db.pragma("journal_size_limit = 67108864");
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

export function openReader(file: string): Connection {
  const db = new Database(file, { readonly: true, timeout: 5000 });
  db.pragma("cache_size = -1000");
  return db;
}
