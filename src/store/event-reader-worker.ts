// The event reader's worker thread: its own read-only connection, and the
// page serialized here, so that paging the log (a thousand rows a request)
// costs the event loop that serves writes only the hand-over of a string.
import Database from "better-sqlite3";
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { eventQueries, pageBody, type PageQuery } from "./event-page.js";

export interface PageRequest extends PageQuery {
  readonly id: number;
}

export type PageReply =
  | { readonly id: number; readonly ok: true; readonly body: string }
  | { readonly id: number; readonly ok: false; readonly message: string };

// Readers yield the CPU to writers: on Linux a nice value belongs to the
// thread that sets it (setpriority on "this process" changes the calling
// thread only), so this thread runs at the lowest priority and the event loop
// thread keeps its own. When the machine is idle, pages are as fast as ever.
try {
  setPriority(19);
} catch {
  // Not permitted here: pages are served at normal priority.
}

const port = parentPort!;
const db = new Database((workerData as { file: string }).file, { readonly: true, timeout: 5000 });
db.pragma("cache_size = -2000");
const read = eventQueries(db);

port.on("message", (message: PageRequest | "close") => {
  if (message === "close") {
    db.close();
    port.close();
    return;
  }
  let reply: PageReply;
  try {
    reply = { id: message.id, ok: true, body: pageBody(read(message), message.after, message.limit) };
  } catch (error) {
    reply = { id: message.id, ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
