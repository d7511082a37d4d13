// Case 7, reader flood: how much a crowd of readers paging the event log
// slows the writers. Writer attach/detach latency alone, then the same
// writers while READERS connections fetch `/v1/events?limit=1000` as fast as
// they are answered, on one server in the same run, reported as a ratio.
import { JsonClient } from "../http.js";
import { runLoad, type LoadResult } from "../load.js";
import type { Memory } from "../procs.js";
import { withWriterPhases } from "./writer-phases.js";

export { WRITERS } from "./writer-phases.js";
/** Reader connections, and the page the readers fetch. */
export const READERS = 8;
export const PAGE = "/v1/events?limit=1000";

export interface ReaderFloodOptions {
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface ReaderFloodRun {
  /** Writers with nobody else on the server. */
  readonly alone: LoadResult;
  /** The same writers while the readers page the event log. */
  readonly flooded: LoadResult;
  readonly readers: LoadResult;
  /** Events in the log when the flood started (each page holds min(1000, this)). */
  readonly eventsAtFlood: number;
  readonly memory: Memory;
}

export async function readerFloodRun(options: ReaderFloodOptions): Promise<ReaderFloodRun> {
  return withWriterPhases("readers", async ({ server, writers }) => {
    // The warm-up also fills the event log the readers will page.
    await writers("warmup", 0, options.warmupSeconds);
    const alone = await writers("alone", 1, options.seconds);
    const client = new JsonClient(server.url);
    let eventsAtFlood: number;
    try {
      eventsAtFlood = (await client.get<{ items: unknown[] }>(PAGE)).body.items.length;
    } finally {
      client.close();
    }
    const [flooded, readers] = await Promise.all([
      writers("flooded", 2, options.seconds),
      runLoad({ url: server.url, connections: READERS, seconds: options.seconds, workload: { kind: "get", path: PAGE } }),
    ]);
    return { alone, flooded, readers, eventsAtFlood, memory: server.memory() };
  });
}
