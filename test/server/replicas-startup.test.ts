// Start-up of several replicas at once: three service processes started at
// the same moment on a new, empty PostgreSQL database with the default
// preset topology. Each migration is applied and recorded once, the preset
// once (the objects and their creation events are one preset's), and all
// three become ready and serve the same state. Started again, all three at
// once, on the database they made: nothing is applied a second time.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { checkInvariants, readPostgresSnapshot } from "../helpers/invariants.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { countKeys } from "../helpers/race-load.js";
import { queryRows, ReplicaClient, replicaEnv, servedState, startReplicas, untilReady } from "../helpers/replicas.js";
import type { ServerProcess } from "../helpers/server.js";

const REPLICAS = 3;
const PRESET = path.join(PROJECT_ROOT, "examples", "intel-2s-server.json");
const MIGRATIONS = path.join(PROJECT_ROOT, "prisma", "postgresql", "migrations");

interface PresetFile {
  units: unknown[];
  groups: { devices?: unknown[] }[];
  containers: unknown[];
  domains: unknown[];
}

/** What one application of the preset creates, by kind (a group brings its default domain, not a create of its own). */
function oneApplication(): { creates: Record<string, number>; served: Record<string, number> } {
  const p = JSON.parse(readFileSync(PRESET, "utf8")) as PresetFile;
  const devices = p.groups.reduce((n, g) => n + (g.devices?.length ?? 0), 0);
  return {
    creates: { unit: p.units.length, group: p.groups.length, device: devices, container: p.containers.length, domain: p.domains.length },
    served: { units: p.units.length, containers: p.containers.length, domains: p.domains.length + p.groups.length, groups: p.groups.length, devices },
  };
}

describe("three replicas starting together on a new database", () => {
  let db: TestDatabase | null = null;
  let replicas: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await db?.drop();
  });

  async function expectOneApplication(url: string, bases: string[]): Promise<void> {
    const migrations = readdirSync(MIGRATIONS, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    expect(migrations.length).toBeGreaterThan(0);
    const recorded = await queryRows<{ migration_name: string; finished: boolean; rolled_back: boolean }>(url,
      `SELECT migration_name, finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled_back FROM "_prisma_migrations" ORDER BY migration_name`);
    expect(recorded).toEqual(migrations.map((m) => ({ migration_name: m, finished: true, rolled_back: false })));

    const want = oneApplication();
    const snapshot = await readPostgresSnapshot(url);
    expect(checkInvariants(snapshot)).toEqual([]);
    expect(snapshot.events.every((e) => e.op === "create"), "only the preset's creates in the log").toBe(true);
    expect(Object.fromEntries(countKeys(snapshot.events.map((e) => e.kind!)))).toEqual(want.creates);
    const views = await Promise.all(bases.map((b) => servedState(b)));
    for (const [i, view] of views.entries()) {
      expect(Object.fromEntries(Object.entries(view).map(([k, v]) => [k, (v as unknown[]).length])), `replica ${i}`).toEqual(want.served);
      expect(view, `replica ${i}'s view against replica 0's`).toEqual(views[0]);
    }
  }

  it("applies the migrations once and the preset once, and all become ready; a second start applies nothing", async () => {
    db = await createTestDatabase("replicas_start");
    const env = replicaEnv(db.url, { TOPOLOGY_FILE: PRESET });
    replicas = await startReplicas(REPLICAS, env);
    await Promise.all(replicas.map((r) => untilReady(r.base)));
    await expectOneApplication(db.url, replicas.map((r) => r.base));
    // Each replica takes a write, and the others see it.
    const c = new ReplicaClient(replicas.map((r) => r.base));
    const made = await c.container();
    for (let i = 0; i < REPLICAS; i++) expect((await c.send("GET", `/v1/containers/${made.id}`)).status).toBe(200);
    const undo = await c.send("DELETE", `/v1/containers/${made.id}`);
    expect(undo.status, undo.text).toBe(204);

    const exits = await Promise.all(replicas.map((r) => r.stop()));
    replicas = [];
    expect(exits).toEqual(Array.from({ length: REPLICAS }, () => 0));

    replicas = await startReplicas(REPLICAS, env);
    await Promise.all(replicas.map((r) => untilReady(r.base)));
    // Nothing applied again: the log is the preset's creates and the container's create and delete.
    const snapshot = await readPostgresSnapshot(db.url);
    const want = oneApplication();
    expect(Object.fromEntries(countKeys(snapshot.events.map((e) => `${e.op} ${e.kind}`)))).toEqual({
      ...Object.fromEntries(Object.entries(want.creates).map(([k, n]) => [`create ${k}`, k === "container" ? n + 1 : n])),
      "delete container": 1,
    });
    const migrations = (await queryRows<{ n: string }>(db.url, `SELECT count(*)::text AS n FROM "_prisma_migrations"`))[0]!.n;
    expect(Number(migrations)).toBe(readdirSync(MIGRATIONS, { withFileTypes: true }).filter((d) => d.isDirectory()).length);
    const views = await Promise.all(replicas.map((r) => servedState(r.base)));
    for (const view of views) expect(Object.fromEntries(Object.entries(view).map(([k, v]) => [k, (v as unknown[]).length]))).toEqual(want.served);
  }, 120_000);
});
