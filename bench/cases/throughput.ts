// Cases 1-3: the no-op ceiling and attach/detach throughput at 32
// connections, on the service and on the raw better-sqlite3 baseline, both
// seeded with the same topology.
import path from "node:path";
import { removeTempDir, tempDir } from "../tmp.js";
import { JsonClient } from "../http.js";
import { attachDetachWorkload, runLoad, type LoadResult } from "../load.js";
import { startBaseline, startService, withServer, type Memory } from "../procs.js";
import { seedDatabase, type SeedSpec, type Seeded } from "../seed.js";

/** 4 intel-vtd units, one shared paging domain each; 64 groups for warm-up, 256 measured. */
const WARMUP_GROUPS = 64;
const MEASURED_GROUPS = 256;
export const THROUGHPUT_TOPOLOGY: SeedSpec = { units: 4, groups: WARMUP_GROUPS + MEASURED_GROUPS, paging: "per-unit" };

export interface ThroughputOptions {
  readonly connections: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface BatchStats {
  readonly batches: number;
  readonly items: number;
  readonly largestBatch: number;
}

export interface ServiceRun {
  readonly ceiling: LoadResult;
  readonly attach: LoadResult;
  /** GET /v1/stats over the measured attach run (differences), plus largestBatch since start. */
  readonly batches: BatchStats;
  readonly memory: Memory;
  readonly startupMs: number;
}

export interface BaselineRun {
  readonly attach: LoadResult;
  readonly memory: Memory;
  readonly startupMs: number;
}

function pools(seeded: Seeded): { warmup: Int32Array; measured: Int32Array } {
  return { warmup: seeded.groupIds.subarray(0, WARMUP_GROUPS), measured: seeded.groupIds.subarray(WARMUP_GROUPS) };
}

function seeded(tag: string): { dir: string; file: string; seeded: Seeded } {
  const dir = tempDir(tag);
  const file = path.join(dir, "bench.db");
  return { dir, file, seeded: seedDatabase(file, THROUGHPUT_TOPOLOGY) };
}

/** `extraArgs`: baseline settings for this run, e.g. ["--synchronous", "normal"]. */
export async function baselineRun(options: ThroughputOptions, extraArgs: readonly string[] = []): Promise<BaselineRun> {
  const db = seeded("baseline");
  try {
    return await withServer(() => startBaseline(db.file, extraArgs), async (server) => {
      const { warmup, measured } = pools(db.seeded);
      const load = (name: string, groups: Int32Array, seconds: number) => runLoad({
        url: server.url, connections: options.connections, seconds,
        workload: attachDetachWorkload(db.dir, name, groups, db.seeded.targetDomain),
      });
      await load("warmup", warmup, options.warmupSeconds);
      const attach = await load("measured", measured, options.seconds);
      return { attach, memory: server.memory(), startupMs: server.startupMs };
    });
  } finally {
    removeTempDir(db.dir);
  }
}

/** `extraArgs`: service settings for this run, e.g. ["--synchronous", "normal"]. */
export async function serviceRun(options: ThroughputOptions, extraArgs: readonly string[] = []): Promise<ServiceRun> {
  const db = seeded("service");
  try {
    return await withServer(() => startService(db.file, "none", extraArgs), async (server) => {
      const client = new JsonClient(server.url);
      try {
        const { warmup, measured } = pools(db.seeded);
        // The service must see the seeded topology, not an empty database.
        const probe = await client.get<{ domainId: number; defaultDomainId: number }>(`/v1/groups/${measured[0]}`);
        if (probe.status !== 200 || probe.body.domainId !== probe.body.defaultDomainId) {
          throw new Error(`service does not show seeded group ${measured[0]}: ${probe.status} ${JSON.stringify(probe.body)}`);
        }
        const healthz = (seconds: number) => runLoad({
          url: server.url, connections: options.connections, seconds, workload: { kind: "get", path: "/healthz" },
        });
        const attachLoad = (name: string, groups: Int32Array, seconds: number) => runLoad({
          url: server.url, connections: options.connections, seconds,
          workload: attachDetachWorkload(db.dir, name, groups, db.seeded.targetDomain),
        });
        await healthz(options.warmupSeconds);
        const ceiling = await healthz(options.seconds);
        await attachLoad("warmup", warmup, options.warmupSeconds);
        const before = (await client.get<BatchStats>("/v1/stats")).body;
        const attach = await attachLoad("measured", measured, options.seconds);
        const after = (await client.get<BatchStats>("/v1/stats")).body;
        return {
          ceiling, attach,
          batches: { batches: after.batches - before.batches, items: after.items - before.items, largestBatch: after.largestBatch },
          memory: server.memory(),
          startupMs: server.startupMs,
        };
      } finally {
        client.close();
      }
    });
  } finally {
    removeTempDir(db.dir);
  }
}
