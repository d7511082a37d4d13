// The checkpointer's worker thread (checkpointer.ts): its own connection to
// the database, running a PASSIVE WAL checkpoint each time it is asked, so
// that copying the WAL back into the database file never runs on the event
// loop that answers requests.
import Database from "better-sqlite3";
import { parentPort, workerData } from "node:worker_threads";

/** What one PASSIVE checkpoint reported: frames in the WAL and frames copied. */
export interface CheckpointResult {
  readonly busy: number;
  readonly log: number;
  readonly checkpointed: number;
}

export type CheckpointRequest = "checkpoint" | "close";

export type CheckpointReply = { readonly ok: true; readonly result: CheckpointResult } | { readonly ok: false; readonly message: string };

const port = parentPort!;
const db = new Database((workerData as { file: string }).file, { timeout: 5000 });
db.pragma("synchronous = NORMAL");
// A checkpoint copies WAL frames straight to the file; it needs no cache.
db.pragma("cache_size = -64");

port.on("message", (message: CheckpointRequest) => {
  if (message === "close") {
    db.close();
    port.close();
    return;
  }
  let reply: CheckpointReply;
  try {
    const [result] = db.pragma("wal_checkpoint(PASSIVE)") as CheckpointResult[];
    reply = { ok: true, result: result! };
  } catch (error) {
    reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
