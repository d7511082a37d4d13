// Makes the writer's commits durable without blocking the event loop.
//
// The writer connection commits with synchronous = NORMAL: in WAL mode a
// commit then appends its frames to the -wal file and returns without
// syncing it. Syncing that file afterwards, here, makes every commit that
// finished before the sync started as durable as synchronous = FULL would
// have (FULL is that same sync, done inside the commit). The sync runs on
// libuv's thread pool, so the event loop keeps serving requests while the
// disk works; the group-commit runner answers a batch's callers only once a
// sync that started after its commit has finished.
//
// Frames a checkpoint later copies into the database file stay safe when the
// WAL is reused from its start: SQLite's checkpoint syncs the WAL before
// copying and the database file before the WAL may be reused, at NORMAL too.
// The file stays the same one for the store's lifetime: SQLite deletes the
// WAL only when the last connection to the database closes, and the writer
// stays open until the store is closed (truncating it keeps the file).
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync } from "node:fs";
import path from "node:path";

export class WalSync {
  private fd: number | null = null;

  constructor(private readonly dbFile: string) {}

  /** The WAL's data on disk, off the event loop: every commit made before the call is covered. */
  sync(): Promise<void> {
    let fd: number;
    try {
      fd = this.open();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }

  /** The same, blocking: for the rare writes that must be known durable before anything else runs (recovery probes). */
  syncNow(): void {
    fdatasyncSync(this.open());
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  private open(): number {
    if (this.fd !== null) return this.fd;
    // Opened for writing: some systems refuse to sync a read-only descriptor.
    this.fd = openSync(`${this.dbFile}-wal`, "r+");
    syncDirectory(path.dirname(path.resolve(this.dbFile)));
    return this.fd;
  }
}

/**
 * The directory entry of a newly created WAL reaches the disk only when the
 * directory is synced. SQLite syncs it once, through the connection that
 * created the file, which need not be the writer; do it once here too.
 * Systems that cannot sync a directory are not an error (SQLite ignores
 * that failure as well).
 */
function syncDirectory(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Not supported here (for instance, directories cannot be opened on Windows).
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
