// The scaffold cases 7 and 8 share: a seeded file with three pools of
// groups (warm-up, alone, disturbed), one service on it, and 4 writer
// connections doing attach/detach, so that each phase starts from groups on
// their default domain and the phases compare on one server in one run.
import path from "node:path";
import { attachDetachWorkload, runLoad, type LoadResult } from "../load.js";
import { startService, withServer, type Server } from "../procs.js";
import { seedDatabase, type SeedSpec } from "../seed.js";
import { removeTempDir, tempDir } from "../tmp.js";

export const WRITERS = 4;
const POOL = 64;
const TOPOLOGY: SeedSpec = { units: 4, groups: 3 * POOL, paging: "per-unit" };

export interface WriterPhases {
  readonly server: Server;
  /** The writers on pool `pool` (0 warm-up, 1 alone, 2 disturbed) for `seconds`. */
  writers(name: string, pool: 0 | 1 | 2, seconds: number): Promise<LoadResult>;
}

export async function withWriterPhases<T>(name: string, run: (phases: WriterPhases) => Promise<T>): Promise<T> {
  const dir = tempDir(name);
  const file = path.join(dir, "bench.db");
  try {
    const seeded = seedDatabase(file, TOPOLOGY);
    return await withServer(() => startService(file), (server) => run({
      server,
      writers: (phase, pool, seconds) => runLoad({
        url: server.url, connections: WRITERS, seconds,
        workload: attachDetachWorkload(dir, phase, seeded.groupIds.subarray(pool * POOL, (pool + 1) * POOL), seeded.targetDomain),
      }),
    }));
  } finally {
    removeTempDir(dir);
  }
}
