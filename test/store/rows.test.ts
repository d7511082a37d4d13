// The row mapping derived from the entity declarations: the migrated tables
// hold exactly the declared fields, and a model written through
// encodeChanges and read back by loadTopology gives every record back with
// its fields in declared order and equal shared objects interned.
import { rmSync } from "node:fs";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { FieldSpec } from "../../src/core/declare.js";
import { ENTITIES, KINDS } from "../../src/core/entities.js";
import { containerAttach } from "../../src/core/container-attach.js";
import { ANONYMOUS } from "../../src/core/caller.js";
import { claimOwnership } from "../../src/core/group-moves.js";
import { bindHostDriver } from "../../src/core/host-driver.js";
import { attachIommufd, bindIommufd } from "../../src/core/iommufd-device.js";
import { attachPasid } from "../../src/core/pasid.js";
import { addReservedRegion, mapIova } from "../../src/core/iova.js";
import { Model } from "../../src/core/model.js";
import { DRIVERS } from "../../src/drivers/index.js";
import {
  createContainer, createDevice, createDomain, createGroup, createUnit, injectFault, updateDevice, updateHost,
} from "../../src/core/objects.js";
import type { Result } from "../../src/core/result.js";
import { openDatabase } from "../../src/store/database.js";
import { encodeChanges } from "../../src/store/encode.js";
import { loadTopology } from "../../src/store/load.js";
import { applyMigrations } from "../../src/store/migrate.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";

function unwrap<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(r.error.detail);
  return r.value;
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function migrated(): string {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  applyMigrations(file, MIGRATIONS);
  return file;
}

/** The SQLite column type Prisma's migration gives each storage kind. */
const SQL_TYPE: Record<FieldSpec["storage"], string> = { int32: "INTEGER", int64: "BIGINT", bool: "BOOLEAN", enum: "TEXT", text: "TEXT", shared: "JSONB" };

describe("tables and declarations", () => {
  const file = migrated();
  const db = new Database(file, { readonly: true });
  afterAll(() => db.close());

  it.each(KINDS)("%s: the migrated table has exactly the declared fields, with their type and nullability", (kind) => {
    const { table, fields } = ENTITIES[kind];
    const columns = db.pragma(`table_info("${table}")`) as { name: string; type: string; notnull: number; pk: number }[];
    const want = fields.map((f) => ({ name: f.name, type: SQL_TYPE[f.storage], notnull: f.nullable || f.name === "id" ? 0 : 1 }));
    // A primary key column is NOT NULL by being the key (SQLite reports notnull 1 when declared so).
    const got = columns.map((c) => ({ name: c.name, type: c.type, notnull: c.pk === 1 ? 0 : c.notnull }));
    expect([...got].sort((a, b) => a.name.localeCompare(b.name))).toEqual([...want].sort((a, b) => a.name.localeCompare(b.name)));
  });
});

describe("write and load", () => {
  it("every record comes back identical, fields in declared order, equal shared objects interned", async () => {
    const model = new Model(DRIVERS);
    const intel = unwrap(createUnit(model, { name: "it's intel", driver: "intel-vtd", capabilities: { domainIds: 9 } }));
    const smmu = unwrap(createUnit(model, { name: "smmu", driver: "arm-smmu-v3" }));
    unwrap(createUnit(model, { name: "off", driver: "mock", online: false }));
    const ct = unwrap(createContainer(model, { name: "ioas" }, { owner: "vmm" }));
    const type1 = unwrap(createContainer(model, { name: "vfio", kind: "type1" }));
    const groups = [intel, intel, smmu].map((u, i) => unwrap(createGroup(model, { name: `g${i}`, unitId: u.id })));
    const devices = groups.map((g, i) => unwrap(createDevice(model, { name: `d${i}`, groupId: g.id, flags: i === 2 ? { canwbs: true } : {} })));
    unwrap(updateDevice(model, devices[1]!.id, { faulty: true }));
    unwrap(createDomain(model, { type: "paging", unitId: intel.id, name: "named ✓" }, { owner: "vmm" }));
    unwrap(createDomain(model, { type: "blocked", driver: "mock" }));
    unwrap(claimOwnership(model, { owner: "vfio" }, groups[0]!.id));
    unwrap(containerAttach(model, { owner: "vmm" }, ct.id, groups[2]!.id));
    // A domain of each search: the kernel's (above), QEMU's and VFIO type1's.
    const more = [0, 1].map((i) => unwrap(createGroup(model, { name: `h${i}`, unitId: intel.id })));
    more.forEach((g, i) => unwrap(createDevice(model, { name: `e${i}`, groupId: g.id })));
    unwrap(containerAttach(model, { owner: "vmm" }, ct.id, more[0]!.id, "qemu"));
    unwrap(containerAttach(model, ANONYMOUS, type1.id, more[1]!.id));
    expect(new Set([...model.all("domain")].map((d) => d.search))).toEqual(new Set(["none", "kernel", "qemu"]));
    // Two devices of a group bound to iommufd, one of them attached.
    const vfioGroup = unwrap(createGroup(model, { name: "g-vfio", unitId: smmu.id }));
    const [nic, gpu] = ["vf0", "vf1"].map((name) => unwrap(createDevice(model, { name, groupId: vfioGroup.id })));
    for (const d of [nic!, gpu!]) unwrap(bindIommufd(model, { owner: "vmm" }, d.id));
    const hwpt = unwrap(createDomain(model, { type: "paging", unitId: smmu.id }, { owner: "vmm" }));
    unwrap(attachIommufd(model, { owner: "vmm" }, nic!.id, { domainId: hwpt.id }));
    unwrap(injectFault(model, { deviceId: devices[0]!.id, errno: "EIO", count: 3 }));
    unwrap(injectFault(model, { unitId: smmu.id, errno: "ENOMEM", count: 1 }));
    // A device that takes PASIDs, bound to a host driver, with a PASID attached.
    const pasidDevice = unwrap(createDevice(model, { name: "idxd0", groupId: groups[1]!.id, maxPasids: 1 << 20 }));
    unwrap(bindHostDriver(model, { owner: null }, pasidDevice.id, "idxd"));
    unwrap(attachPasid(model, { owner: null }, pasidDevice.id, 1048575, groups[1]!.defaultDomainId));
    // int64 columns (BIGINT): the top of the exact range comes back exact.
    const empty = unwrap(createContainer(model, { name: "no domains" }));
    unwrap(mapIova(model, { owner: "vmm" }, empty.id, { iova: 2 ** 53 - 2 ** 21, length: 2 ** 21 }));
    unwrap(mapIova(model, { owner: null, admin: true }, ct.id, { length: 4096 }));
    unwrap(addReservedRegion(model, { owner: null }, devices[1]!.id, { start: 0x8000000, length: 0x100000, type: "sw-msi" }));
    unwrap(addReservedRegion(model, { owner: null }, devices[0]!.id, { start: 2 ** 53 - 4096, length: 4095, type: "direct-relaxable" }));
    unwrap(updateHost(model, { kernelProfile: "6.1" }));
    // A device a partial group attach left on another domain (the column's non-null case).
    const named = [...model.all("domain")].find((d) => d.name === "named ✓")!;
    model.put("device", { ...model.get("device", devices[1]!.id)!, strandedOnDomainId: named.id });

    const file = migrated();
    const db = new Database(file);
    db.transaction(() => {
      db.pragma("defer_foreign_keys = ON");
      for (const s of encodeChanges(model.takeChanges(), [])) db.prepare(s.sql).run(...s.params);
    })();
    db.close();
    const prisma = await openDatabase(file);
    const loaded = await loadTopology(prisma, DRIVERS).finally(() => prisma.$disconnect());

    for (const kind of KINDS) {
      const want = [...model.all(kind)];
      const got = [...loaded.model.all(kind)];
      expect(want.length, kind).toBeGreaterThan(0);
      expect(got, kind).toStrictEqual(want);
      for (const row of got) expect(Object.keys(row), kind).toEqual(ENTITIES[kind].fields.map((f) => f.name));
    }
    const flags = [...loaded.model.all("device")].map((d) => d.flags);
    expect(flags[0]).toBe(flags[1]);
    expect(flags[2]).not.toBe(flags[0]);
    const configs = [...loaded.model.all("domain")].filter((d) => d.unitId === intel.id && d.type === "dma").map((d) => d.config);
    expect(configs).toHaveLength(4);
    for (const config of configs) expect(config).toBe(configs[0]);
    expect(Object.isFrozen(configs[0])).toBe(true);
  });
});
