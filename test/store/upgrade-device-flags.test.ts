// A database written before PASID attachments existed holds devices whose
// flags carry the retired "pasid" flag ("PASIDs in use"). The migration that
// adds PasidAttachment drops the flag (it names no PASID and no domain to
// carry over), so those devices load, answer with the flags the service
// knows, and take the new columns' defaults; the rows that point at them
// (their faults) survive the migration's rebuild of the Device table.
import Database from "better-sqlite3";
import { rmSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, expect, it } from "vitest";
import { applyMigrations } from "../../src/store/migrate.js";
import { migrationsBefore, openApp, tempDbFile } from "../helpers/app.js";
import { Client, type DeviceView, type MovedView } from "../helpers/http.js";

const PASID_MIGRATION = "20261128000004_host_drivers_pasids";

const dirs: string[] = [];
let open: FastifyInstance | null = null;
afterEach(async () => {
  await open?.close();
  open = null;
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const earlierMigrations = (dir: string) => migrationsBefore(dir, PASID_MIGRATION);

const CAPABILITIES = JSON.stringify({
  addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
  dirtyTracking: false, nesting: true, domainIds: 65536, cpuPageSize: 4096,
});
const DOMAIN_CONFIG = JSON.stringify({ addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], enforceCacheCoherency: false, dirtyTracking: false, nestParent: false });

it("devices stored with the pasid flag load without it, with maxPasids 0 and no host driver, and work as any device", async () => {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  expect(applyMigrations(file, earlierMigrations(dir)).applied.at(-1)! < PASID_MIGRATION).toBe(true);
  const db = new Database(file);
  try {
    db.transaction(() => {
      db.prepare(`INSERT INTO "Unit" ("id", "name", "driver", "capabilities", "online") VALUES (1, 'smmu0', 'arm-smmu-v3', ?, 1)`).run(CAPABILITIES);
      db.prepare(`INSERT INTO "Domain" ("id", "name", "type", "driver", "unitId", "config", "auto", "containerId", "owner") VALUES (1, NULL, 'dma', 'arm-smmu-v3', 1, ?, 0, NULL, NULL)`).run(DOMAIN_CONFIG);
      db.prepare(`INSERT INTO "Group" ("id", "name", "unitId", "domainId", "defaultDomainId", "blockingDomainId", "owner") VALUES (1, 'g', 1, 1, 1, NULL, NULL)`).run();
      const device = db.prepare(`INSERT INTO "Device" ("id", "name", "groupId", "flags", "faulty") VALUES (?, ?, 1, ?, 0)`);
      device.run(1, "0004:01:00.0", JSON.stringify({ noDirty: false, canwbs: true, requiresIdentity: false, pasid: true }));
      device.run(2, "0004:01:00.1", JSON.stringify({ noDirty: false, canwbs: false, requiresIdentity: false, pasid: false }));
      // The migration redefines the Device table: the fault that points at a
      // device must survive it (its ON DELETE CASCADE must not run).
      db.prepare(`INSERT INTO "Fault" ("id", "unitId", "deviceId", "errno", "remaining") VALUES (1, NULL, 1, 'EIO', 2)`).run();
      db.prepare(`INSERT INTO "IdWatermark" ("kind", "last") VALUES ('unit', 1), ('domain', 1), ('group', 1), ('device', 2), ('fault', 1)`).run();
    })();
  } finally {
    db.close();
  }

  open = (await openApp(file)).app;
  const c = new Client(open);
  const flags = { noDirty: false, canwbs: true, requiresIdentity: false };
  const device = await c.read<DeviceView>("/v1/devices/1");
  // A flag grown since (untrusted) loads with its default (src/core/stored-rows.ts).
  expect(device).toEqual({ id: 1, name: "0004:01:00.0", groupId: 1, flags: { ...flags, untrusted: false }, faulty: false, maxPasids: 0, hostDriver: null, strandedOnDomainId: null, version: expect.any(String) });
  expect((await c.read<DeviceView>("/v1/devices/2")).flags).toEqual({ noDirty: false, canwbs: false, requiresIdentity: false, untrusted: false });
  expect(await c.faults()).toEqual([{ id: 1, unitId: null, deviceId: 1, errno: "EIO", remaining: 2, version: expect.any(String) }]);
  await c.expect(204, "DELETE", "/v1/faults/1");
  // The flag no longer refuses a stage-2 domain: no PASID is attached.
  await c.expect(204, "DELETE", "/v1/devices/2");
  const s2 = await c.domain({ unitId: 1, config: { nestParent: true } });
  expect((await c.ok<MovedView>("POST", "/v1/groups/1/attach", { domainId: s2.id })).group.domainId).toBe(s2.id);
  // The rows on disk hold the flags without the retired one.
  const check = new Database(file, { readonly: true });
  try {
    expect(check.prepare(`SELECT "flags" FROM "Device" WHERE "id" = 1`).get()).toEqual({ flags: JSON.stringify(flags) });
  } finally {
    check.close();
  }
});
