// A database written by the previous release (migrations up to
// 20261126130000, id watermarks kept in SQLite's sqlite_sequence) upgrades
// in place at start-up: the IdWatermark migration carries the watermarks
// over, so no id a client has seen, deleted rows and rolled-back allocations
// included, and no event seq is handed out again.
import Database from "better-sqlite3";
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { compareFacts, migratedSchemaFacts, schemaFacts } from "../../scripts/migration-drift.js";
import { Writable } from "node:stream";
import { DRIVERS } from "../../src/drivers/index.js";
import { buildApp } from "../../src/http/app.js";
import { applyMigrations } from "../../src/store/migrate.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, openApp, tempDbFile, TEST_LIMITS } from "../helpers/app.js";
import {
  Client, type ContainerView, type DeviceView, type DomainView, type EventView, type FaultView, type SearchView, type UnitView,
} from "../helpers/http.js";

const LAST_OLD_MIGRATION = "20261126130000_idempotency_heartbeat";

const dirs: string[] = [];
let open: FastifyInstance | null = null;
afterEach(async () => {
  await open?.close();
  open = null;
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function boot(file: string): Promise<Client> {
  await open?.close();
  open = (await openApp(file)).app;
  return new Client(open);
}

/** The migrations an earlier release shipped: those up to `last`. */
function oldMigrations(dir: string, last = LAST_OLD_MIGRATION): string {
  const out = path.join(dir, "old-migrations");
  mkdirSync(out);
  for (const name of readdirSync(MIGRATIONS).filter((n) => n <= last)) {
    cpSync(path.join(MIGRATIONS, name), path.join(out, name), { recursive: true });
  }
  return out;
}

const CAPABILITIES = JSON.stringify({
  addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
  dirtyTracking: false, nesting: false, domainIds: 65535, cpuPageSize: 4096,
});
const DOMAIN_CONFIG = JSON.stringify({ addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], enforceCacheCoherency: false, dirtyTracking: false, nestParent: false });
const FLAGS = JSON.stringify({ noDirty: false, canwbs: false, requiresIdentity: false, pasid: false });
const AT = "2026-11-26T12:00:00.000+00:00";

/**
 * What the previous release left on disk after: units 1-2 made and 2
 * deleted; domains 1-3 made, 2-3 deleted, and ids 4-5 shown to a client by
 * automatic allocations that were rolled back (the old store raised
 * sqlite_sequence for those); container 1, device 2 and fault 1 deleted;
 * events 1-3 written and 1-2 pruned.
 */
function writeOldDatabase(file: string, migrations: string): void {
  expect(applyMigrations(file, migrations).applied.at(-1)).toBe(LAST_OLD_MIGRATION);
  const db = new Database(file);
  try {
    db.pragma("foreign_keys = ON");
    db.transaction(() => {
      const unit = db.prepare(`INSERT INTO "Unit" ("id", "name", "driver", "capabilities", "online") VALUES (?, ?, 'intel-vtd', ?, 1)`);
      unit.run(1, "old-dmar0", CAPABILITIES);
      unit.run(2, "old-dmar1", CAPABILITIES);
      db.prepare(`INSERT INTO "Container" ("id", "name", "config", "owner") VALUES (1, 'old-ioas', '{}', NULL)`).run();
      const domain = db.prepare(`INSERT INTO "Domain" ("id", "name", "type", "driver", "unitId", "config", "auto", "containerId", "owner") VALUES (?, NULL, ?, 'intel-vtd', 1, ?, 0, NULL, NULL)`);
      domain.run(1, "dma", DOMAIN_CONFIG);
      domain.run(2, "paging", DOMAIN_CONFIG);
      domain.run(3, "paging", DOMAIN_CONFIG);
      db.prepare(`INSERT INTO "Group" ("id", "name", "unitId", "domainId", "defaultDomainId", "blockingDomainId", "owner") VALUES (1, 'old-group', 1, 1, 1, NULL, NULL)`).run();
      const device = db.prepare(`INSERT INTO "Device" ("id", "name", "groupId", "flags", "faulty") VALUES (?, ?, 1, ?, 0)`);
      device.run(1, "0000:00:01.0", FLAGS);
      device.run(2, "0000:00:02.0", FLAGS);
      db.prepare(`INSERT INTO "Fault" ("id", "unitId", "deviceId", "errno", "remaining") VALUES (1, 1, NULL, 'EIO', 1)`).run();
      const event = db.prepare(`INSERT INTO "Event" ("seq", "at", "op", "groupId", "code") VALUES (?, ?, 'attach-group', 1, 0)`);
      for (const seq of [1, 2, 3]) event.run(seq, AT);
      for (const [table, id] of [["Fault", 1], ["Device", 2], ["Domain", 3], ["Domain", 2], ["Container", 1], ["Unit", 2]] as const) {
        db.prepare(`DELETE FROM "${table}" WHERE "id" = ?`).run(id);
      }
      db.prepare(`DELETE FROM "Event" WHERE "seq" <= ?`).run(2);
      db.prepare(`UPDATE sqlite_sequence SET seq = ? WHERE name = 'Domain'`).run(5);
    })();
  } finally {
    db.close();
  }
}

describe("upgrading a database of the previous release", () => {
  it("carries the id watermarks over: no id or event seq is handed out again, across later restarts too", async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    writeOldDatabase(file, oldMigrations(dir));

    let c = await boot(file);
    // What was there is still there.
    expect((await c.read<{ items: UnitView[] }>("/v1/units")).items.map((u) => u.id)).toEqual([1]);
    expect((await c.read<{ items: DomainView[] }>("/v1/domains")).items.map((d) => d.id)).toEqual([1]);
    expect((await c.events()).map((e) => e.seq)).toEqual([3]);
    // New objects continue after the highest id ever handed out.
    const unit = await c.unit();
    const container = await c.container();
    const domain = await c.domain({ unitId: 1 });
    const group = await c.group(1);
    const device = await c.device(group.id);
    await c.ok("POST", "/v1/groups/1/attach", { domainId: domain.id });
    await c.ok("POST", "/v1/groups/1/detach", { domainId: domain.id });
    const fault = await c.fault({ unitId: 1, errno: "EIO" });
    expect([unit.id, container.id, domain.id, group.id, device.id, fault.id]).toEqual([3, 2, 6, 2, 3, 2]);
    const logged = (after: number) => c.events(after).then((es: EventView[]) => es.map((e) => [e.seq, e.op, e.kind, e.objectId]));
    expect(await logged(3)).toEqual([
      [4, "create", "unit", unit.id], [5, "create", "container", container.id], [6, "create", "domain", domain.id],
      [7, "create", "group", group.id], [8, "create", "device", device.id], [9, "attach-group", null, null], [10, "detach-group", null, null],
      [11, "create", "fault", fault.id],
    ]);

    // Delete the newest of each and restart: still not reused.
    await c.del(`/v1/faults/${fault.id}`);
    await c.del(`/v1/devices/${device.id}`);
    await c.del(`/v1/groups/${group.id}`);
    await c.del(`/v1/domains/${domain.id}`);
    await c.del(`/v1/containers/${container.id}`);
    await c.del(`/v1/units/${unit.id}`);
    c = await boot(file);
    const again = {
      unit: await c.unit(), container: await c.container(), domain: await c.domain({ unitId: 1 }), group: await c.group(1),
    };
    const device2: DeviceView = await c.device(again.group.id);
    await c.ok("POST", "/v1/groups/1/attach", { domainId: again.domain.id });
    // The six deletes were 12 to 17; the log goes on at 18.
    expect(await logged(17)).toEqual([
      [18, "create", "unit", again.unit.id], [19, "create", "container", again.container.id], [20, "create", "domain", again.domain.id],
      [21, "create", "group", again.group.id], [22, "create", "device", device2.id], [23, "attach-group", null, null],
    ]);
    const fault2: FaultView = await c.fault({ unitId: 1, errno: "EIO" });
    // Domain 7 was group 2's own default domain, deleted with it.
    expect([again.unit.id, again.container.id, again.domain.id, again.group.id, device2.id, fault2.id]).toEqual([4, 3, 8, 3, 4, 3]);
  });

  it("ends with exactly the schema a new database gets", () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    writeOldDatabase(file, oldMigrations(dir));
    expect(applyMigrations(file, MIGRATIONS).applied).toEqual(readdirSync(MIGRATIONS).filter((n) => /^\d/.test(n) && n > LAST_OLD_MIGRATION));
    const db = new Database(file, { readonly: true });
    try {
      expect(compareFacts(schemaFacts(db), migratedSchemaFacts())).toEqual([]);
      expect(db.prepare(`SELECT "kind", "last" FROM "IdWatermark" ORDER BY "kind"`).all()).toEqual([
        { kind: "container", last: 1 }, { kind: "device", last: 2 }, { kind: "domain", last: 5 }, { kind: "event", last: 3 },
        { kind: "fault", last: 1 }, { kind: "group", last: 1 }, { kind: "unit", last: 2 },
      ]);
    } finally {
      db.close();
    }
  });
});

describe("upgrading a database of the release before container kinds", () => {
  it("a container becomes an iommufd IOAS without settings; its automatic domains stay the kernel search's", async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    expect(applyMigrations(file, oldMigrations(dir, "20261127000000_id_watermarks")).applied.at(-1)).toBe("20261127000000_id_watermarks");
    const db = new Database(file);
    try {
      db.pragma("foreign_keys = ON");
      db.transaction(() => {
        db.prepare(`INSERT INTO "Unit" ("id", "name", "driver", "capabilities", "online") VALUES (1, 'dmar0', 'intel-vtd', ?, 1)`).run(CAPABILITIES);
        db.prepare(`INSERT INTO "Container" ("id", "name", "config", "owner") VALUES (1, 'vm', '{"enforceCacheCoherency":true,"dirtyTracking":false}', NULL)`).run();
        const domain = db.prepare(`INSERT INTO "Domain" ("id", "name", "type", "driver", "unitId", "config", "auto", "containerId", "owner") VALUES (?, NULL, ?, 'intel-vtd', 1, ?, ?, ?, NULL)`);
        domain.run(1, "dma", DOMAIN_CONFIG, 0, null);
        domain.run(2, "paging", DOMAIN_CONFIG, 1, 1);
        db.prepare(`INSERT INTO "Group" ("id", "name", "unitId", "domainId", "defaultDomainId", "blockingDomainId", "owner") VALUES (1, 'g', 1, 2, 1, NULL, NULL)`).run();
        db.prepare(`INSERT INTO "Device" ("id", "name", "groupId", "flags", "faulty") VALUES (1, '0000:00:01.0', 1, ?, 0)`).run(FLAGS);
        db.prepare(`INSERT INTO "IdWatermark" ("kind", "last") VALUES ('unit', 1), ('container', 1), ('domain', 2), ('group', 1), ('device', 1)`).run();
      })();
    } finally {
      db.close();
    }

    const c = await boot(file);
    const container = await c.read<ContainerView>("/v1/containers/1");
    expect(container).toMatchObject({ id: 1, name: "vm", kind: "iommufd", domainIds: [2] });
    expect(container).not.toHaveProperty("config");
    expect(await c.read<DomainView>("/v1/domains/2")).toMatchObject({ auto: true, search: "kernel", containerId: 1 });
    const group = await c.group(1);
    await c.device(group.id);
    const r = await c.ok<SearchView>("POST", "/v1/containers/1/attach", { groupId: group.id });
    expect(r).toMatchObject({ allocated: false, domain: { id: 2, attachedGroupCount: 2 } });
  });
});


// UnitCapabilities, DomainConfig and DeviceFlags are JSON value objects: a
// field they grow needs no migration, and rows stored without it load with
// what a row made now gets (src/core/stored-rows.ts). The rows below are the
// previous shapes; the group is one the previous release could leave: owned,
// on its owner's paging domain, with a device flagged requiresIdentity after
// the claim (a flag change those rules allowed and today's refuse), so its
// detach meets the refusal the kernel WARNs about and overrides.
describe("rows stored before the value objects grew fields", () => {
  it("load with today's defaults, and a detach of the owned group holding a requires-identity device succeeds with a warning (answered, logged, recorded)", async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    applyMigrations(file, MIGRATIONS);
    const db = new Database(file);
    try {
      db.pragma("foreign_keys = ON");
      db.transaction(() => {
        db.prepare(`INSERT INTO "Unit" ("id", "name", "driver", "capabilities", "online") VALUES (1, 'old-dmar0', 'intel-vtd', ?, 1)`).run(CAPABILITIES);
        const domain = db.prepare(`INSERT INTO "Domain" ("id", "name", "type", "driver", "unitId", "config", "auto", "containerId", "owner") VALUES (?, ?, ?, 'intel-vtd', ?, ?, 0, NULL, NULL)`);
        domain.run(1, null, "dma", 1, DOMAIN_CONFIG);
        domain.run(2, "vm0", "paging", null, DOMAIN_CONFIG);
        domain.run(3, "g0-blocking", "blocked", 1, DOMAIN_CONFIG);
        db.prepare(`INSERT INTO "Group" ("id", "name", "unitId", "domainId", "defaultDomainId", "blockingDomainId", "owner") VALUES (1, 'g0', 1, 2, 1, 3, 'vfio')`).run();
        db.prepare(`INSERT INTO "Device" ("id", "name", "groupId", "flags", "faulty") VALUES (1, '0000:00:14.0', 1, ?, 0)`)
          .run(JSON.stringify({ noDirty: false, canwbs: false, requiresIdentity: true, pasid: false }));
      })();
    } finally {
      db.close();
    }
    const lines: { level: number; reqId?: string; reason?: string; deviceId?: number }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const text of chunk.toString().split("\n")) if (text.trim()) lines.push(JSON.parse(text) as (typeof lines)[number]);
        done();
      },
    });
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
    open = await buildApp({ store, logger: { level: "warn", stream: sink }, limits: TEST_LIMITS });
    open.addHook("onClose", () => store.close());
    await open.ready();
    const c = new Client(open);

    expect((await c.read<UnitView>("/v1/units/1")).capabilities).toEqual({ ...JSON.parse(CAPABILITIES), isolatedMsi: true, coherentWalk: true, firstStage: true, bypass: true });
    expect((await c.read<DomainView>("/v1/domains/2")).config).toEqual({ ...JSON.parse(DOMAIN_CONFIG), coherentWalk: true, firstStage: true });
    expect((await c.read<DeviceView>("/v1/devices/1")).flags).toEqual({ noDirty: false, canwbs: false, requiresIdentity: true, untrusted: false });

    const detail = "0000:00:14.0 has firmware-reserved regions and needs a 1:1 mapping; it cannot be blocked";
    const res = await c.post<{ changed: boolean; domain: DomainView; warning: unknown }>("/v1/groups/1/detach", { domainId: 2, owner: "vfio" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ changed: true, domain: { id: 3, type: "blocked" } });
    expect(res.body.warning).toEqual({ errno: "EINVAL", code: -22, reason: "requires-identity", detail, deviceId: 1 });
    expect((await c.events()).at(-1)).toMatchObject({ op: "detach-group", groupId: 1, errno: null, code: 0, soft: false, reason: "requires-identity", detail });
    expect(lines.filter((l) => l.reason === "requires-identity")).toEqual([
      expect.objectContaining({ level: 40, reqId: expect.any(String), deviceId: 1 }),
    ]);
    // Release from there meets nothing.
    expect((await c.ok<{ warning?: unknown }>("POST", "/v1/groups/1/release", { owner: "vfio" })).warning).toBeUndefined();
  });
});
