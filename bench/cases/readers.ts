// Case 7, reader flood: how much a crowd of readers paging the event log
// slows the writers. Writer attach/detach latency alone, then the same
// writers while READERS connections fetch `/v1/events?limit=1000` as fast as
// they are answered, on one server in the same run, reported as a ratio.
import path from "node:path";
import { JsonClient } from "../http.js";
import { attachDetachWorkload, runLoad, type LoadResult } from "../load.js";
import { startService, withServer, type Memory } from "../procs.js";
import { seedDatabase, type SeedSpec } from "../seed.js";
import { removeTempDir, tempDir } from "../tmp.js";

/** Writer connections, reader connections, and the page the readers fetch. */
export const WRITERS = 4;
export const READERS = 8;
export const PAGE = "/v1/events?limit=1000";

/** Three pools of groups (warm-up, alone, flooded), so each phase starts from groups on their default domain. */
const POOL = 64;
const TOPOLOGY: SeedSpec = { units: 4, groups: 3 * POOL, paging: "per-unit" };

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
  const dir = tempDir("readers");
  const file = path.join(dir, "bench.db");
  try {
    const seeded = seedDatabase(file, TOPOLOGY);
    const pool = (i: number) => seeded.groupIds.subarray(i * POOL, (i + 1) * POOL);
    return await withServer(() => startService(file), async (server) => {
      const writers = (name: string, groups: Int32Array, seconds: number) => runLoad({
        url: server.url, connections: WRITERS, seconds,
        workload: attachDetachWorkload(dir, name, groups, seeded.targetDomain),
      });
      // The warm-up also fills the event log the readers will page.
      await writers("warmup", pool(0), options.warmupSeconds);
      const alone = await writers("alone", pool(1), options.seconds);
      const client = new JsonClient(server.url);
      let eventsAtFlood: number;
      try {
        eventsAtFlood = (await client.get<{ items: unknown[] }>(PAGE)).body.items.length;
      } finally {
        client.close();
      }
      const [flooded, readers] = await Promise.all([
        writers("flooded", pool(2), options.seconds),
        runLoad({ url: server.url, connections: READERS, seconds: options.seconds, workload: { kind: "get", path: PAGE } }),
      ]);
      return { alone, flooded, readers, eventsAtFlood, memory: server.memory() };
    });
  } finally {
    removeTempDir(dir);
  }
}
