// Case 9: attach/detach on PostgreSQL at 32 connections, through one
// replica, through three replicas on one database (the load spread over
// them), and on a raw `pg` baseline doing one transaction per request under
// the same lock (bench/pg-baseline-server.ts). Each on a fresh database of
// the server BENCH_POSTGRES_URL (else TEST_POSTGRES_URL, else the local
// PostgreSQL) names, seeded with the topology of cases 2-3.
import pg from "pg";
import { randomBytes } from "node:crypto";
import { removeTempDir, tempDir } from "../tmp.js";
import { attachDetachWorkload, runLoads, type LoadResult, type LoadOptions } from "../load.js";
import { startPostgresBaseline, startPostgresService, type Server } from "../procs.js";
import { seedPostgres, type Seeded } from "../seed.js";
import { THROUGHPUT_TOPOLOGY, type BatchStats, type ThroughputOptions } from "./throughput.js";
import { JsonClient } from "../http.js";

export const REPLICAS = 3;
const WARMUP_GROUPS = 64;

const SERVER_URL = process.env.BENCH_POSTGRES_URL ?? process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export interface PostgresRun {
  readonly baseline: LoadResult;
  readonly one: LoadResult;
  readonly three: LoadResult;
  /** Operations per write batch through one replica. */
  readonly oneBatches: BatchStats;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh seeded database for `fn`, dropped afterwards. */
async function withDatabase<T>(fn: (url: string, seeded: Seeded, dir: string) => Promise<T>): Promise<T> {
  const name = `arbiter_bench_${process.pid}_${randomBytes(3).toString("hex")}`;
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const dir = tempDir("postgres");
  try {
    const seeded = await seedPostgres(url.toString(), THROUGHPUT_TOPOLOGY);
    return await fn(url.toString(), seeded, dir);
  } finally {
    removeTempDir(dir);
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
}

/** `servers` share `connections` and the groups, each a disjoint part of both. */
function spread(servers: readonly Server[], seeded: Seeded, dir: string, name: string, groups: Int32Array, connections: number, seconds: number): LoadOptions[] {
  return servers.map((server, i) => {
    const own = groups.filter((_, g) => g % servers.length === i);
    const conns = Math.floor(connections / servers.length) + (i < connections % servers.length ? 1 : 0);
    return { url: server.url, connections: conns, seconds, workload: attachDetachWorkload(dir, `${name}-${i}`, own, seeded.targetDomain) };
  });
}

async function measure(servers: readonly Server[], seeded: Seeded, dir: string, options: ThroughputOptions): Promise<LoadResult> {
  const warmup = seeded.groupIds.subarray(0, WARMUP_GROUPS);
  const measured = seeded.groupIds.subarray(WARMUP_GROUPS);
  await runLoads(spread(servers, seeded, dir, "warmup", warmup, options.connections, options.warmupSeconds));
  return runLoads(spread(servers, seeded, dir, "measured", measured, options.connections, options.seconds));
}

async function stopAll(servers: readonly Server[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
}

export async function postgresRun(options: ThroughputOptions): Promise<PostgresRun> {
  const baseline = await withDatabase(async (url, seeded, dir) => {
    const server = await startPostgresBaseline(url);
    try {
      return await measure([server], seeded, dir, options);
    } finally {
      await server.stop();
    }
  });
  const { one, oneBatches } = await withDatabase(async (url, seeded, dir) => {
    const server = await startPostgresService(url);
    const client = new JsonClient(server.url);
    try {
      const before = (await client.get<BatchStats>("/v1/stats")).body;
      const result = await measure([server], seeded, dir, options);
      const after = (await client.get<BatchStats>("/v1/stats")).body;
      return { one: result, oneBatches: { batches: after.batches - before.batches, items: after.items - before.items, largestBatch: after.largestBatch } };
    } finally {
      client.close();
      await server.stop();
    }
  });
  const three = await withDatabase(async (url, seeded, dir) => {
    const servers: Server[] = [];
    try {
      for (let i = 0; i < REPLICAS; i++) servers.push(await startPostgresService(url, `replica-${i + 1}`));
      return await measure(servers, seeded, dir, options);
    } finally {
      await stopAll(servers);
    }
  });
  return { baseline, one, three, oneBatches };
}
