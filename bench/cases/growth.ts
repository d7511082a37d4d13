// Case 5: attach/detach latency as the database grows. A size N means N
// domains and groups: N/2 groups, each with one device and its default
// domain, spread over 4 intel-vtd units with one shared paging domain each
// (4 more domains). The database is seeded directly, the service is started
// on it with no topology file, and random groups are attached to their unit's
// paging domain and detached again at a fixed, moderate concurrency.
import { copyFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { removeTempDir, tempDir } from "../tmp.js";
import { attachDetachWorkload, runLoad, type LoadResult } from "../load.js";
import { startService, withServer, type Memory } from "../procs.js";
import { seedDatabase, type Seeded } from "../seed.js";

/** Groups kept for the warm-up run, so the measured run starts with every group detached. */
const WARMUP_GROUPS = 32;

export interface GrowthTemplate {
  readonly size: number;
  readonly dir: string;
  readonly file: string;
  readonly seeded: Seeded;
  readonly seedMs: number;
}

/** Groups in a database of `size` domains and groups (each group brings its default domain). */
export function groupsFor(size: number): number {
  return Math.floor(size / 2);
}

/** Seeds one database per size once; each run works on a copy. */
export function seedTemplate(size: number): GrowthTemplate {
  const dir = tempDir(`growth-${size}`);
  const file = path.join(dir, "template.db");
  const started = performance.now();
  const seeded = seedDatabase(file, { units: 4, groups: groupsFor(size), paging: "per-unit" });
  return { size, dir, file, seeded, seedMs: performance.now() - started };
}

export function dropTemplate(t: GrowthTemplate): void {
  removeTempDir(t.dir);
}

export interface GrowthOptions {
  readonly connections: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface GrowthRun {
  readonly size: number;
  readonly load: LoadResult;
  readonly startupMs: number;
  readonly memory: Memory;
}

export async function growthRun(t: GrowthTemplate, options: GrowthOptions): Promise<GrowthRun> {
  if (groupsFor(t.size) < WARMUP_GROUPS + options.connections) throw new Error(`growth: ${groupsFor(t.size)} groups is too few for ${options.connections} connections`);
  const dir = tempDir("growth-run");
  try {
    const file = path.join(dir, "bench.db");
    copyFileSync(t.file, file);
    return await withServer(() => startService(file), async (server) => {
      const load = (name: string, groups: Int32Array, seconds: number) => runLoad({
        url: server.url, connections: options.connections, seconds,
        workload: attachDetachWorkload(dir, name, groups, t.seeded.targetDomain),
      });
      await load("warmup", t.seeded.groupIds.subarray(0, WARMUP_GROUPS), options.warmupSeconds);
      const result = await load("measured", t.seeded.groupIds.subarray(WARMUP_GROUPS), options.seconds);
      return { size: t.size, load: result, startupMs: server.startupMs, memory: server.memory() };
    });
  } finally {
    removeTempDir(dir);
  }
}
