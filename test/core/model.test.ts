// The in-memory Model: savepoint / rollback (rows and every index), the
// drained change set, durable writes, loading.
import { describe, expect, it } from "vitest";
import { Device, Domain, Group, Unit } from "../../src/core/entities.js";
import { Model } from "../../src/core/model.js";
import { outcomeOf } from "../../src/core/outcome.js";
import { createDomain, deleteDomain, updateUnit } from "../../src/core/objects.js";
import { attachGroup, replaceDomain } from "../../src/core/group-moves.js";
import { containerAttach } from "../../src/core/container-attach.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { ANON, build, snapshot, unwrap, type Fixture } from "./fixtures.js";

/** Everything the indexes answer for the objects of a small world. */
function indexes(fx: Fixture, ids: { unitId: number; groupIds: number[]; domainIds: number[]; containerId: number; deviceIds: number[] }) {
  const m = fx.model;
  return JSON.stringify({
    attached: ids.domainIds.map((d) => [...m.groupsAttachedTo(d)].sort()),
    core: ids.domainIds.map((d) => [...m.groupsOwningCoreDomain(d)].sort()),
    onUnit: [...m.groupsOnUnit(ids.unitId)].sort(),
    bound: [...m.domainsBoundTo(ids.unitId)].sort(),
    pagingBound: m.pagingDomainsBoundTo(ids.unitId),
    nestParentsBound: m.usage.nestParentsBoundTo(ids.unitId),
    defaultDomains: m.usage.defaultDomainsOn(ids.unitId),
    attachedOn: m.domainsAttachedOn(ids.unitId),
    devicesEach: ids.domainIds.map((d) => m.devicesAttachedOn(ids.unitId, d)),
    container: m.domainsOf(ids.containerId).map((d) => d.id),
    devices: ids.groupIds.map((g) => m.devicesOf(g).map((d) => d.id)),
    unitFaults: m.faultsOn({ unitId: ids.unitId }).map((f) => f.id),
    deviceFaults: ids.deviceIds.map((d) => m.faultsOn({ deviceId: d }).map((f) => f.id)),
    names: ["u", "g1", "g2", "late", "ioas"].map((n) => [m.idByName("unit", n), m.idByName("group", n), m.idByName("device", n), m.idByName("container", n)]),
  });
}

function world() {
  const fx = build();
  const unit = fx.unit("arm-smmu-v3", {}, { name: "u" });
  const g1 = fx.group(unit.id, "g1");
  const g2 = fx.group(unit.id, "g2");
  const d1 = fx.device(g1.id);
  const d2 = fx.device(g2.id);
  const ioas = fx.container(undefined, "ioas");
  const paging = fx.domain({ driver: "arm-smmu-v3", name: "p" });
  // A fault on a bystander device, so the attaches below do not hit it.
  const d3 = fx.device(fx.group(unit.id, "g3").id);
  const fault = fx.fault({ deviceId: d3.id, errno: "ENOMEM", count: 5 });
  fx.commit();
  return { fx, unit, g1, g2, d1, d2, d3, ioas, paging, fault };
}

describe("savepoint / rollback", () => {
  it("restores rows and every index after attaches, creations and deletions", () => {
    const w = world();
    const { fx } = w;
    const ids = () => ({
      unitId: w.unit.id, groupIds: [w.g1.id, w.g2.id], containerId: w.ioas.id, deviceIds: [w.d1.id, w.d2.id, w.d3.id],
      domainIds: [...fx.model.all("domain")].map((d) => d.id).concat([100, 101, 102]),
    });
    const rowsBefore = snapshot(fx.model);
    const indexesBefore = indexes(fx, ids());
    expect(fx.model.attachedGroupCount(w.paging.id)).toBe(0);
    // g1, g2, g3 have a device each, on their default domains.
    expect(fx.model.domainsAttachedOn(w.unit.id)).toBe(3);

    const sp = fx.model.savepoint();
    // A device, an attach (binds the domain), a search that allocates, a deleted fault.
    const late = fx.device(w.g1.id, {}, "late");
    unwrap(fx.op(attachGroup, ANON, w.g1.id, w.paging.id));
    unwrap(fx.op(containerAttach, ANON, w.ioas.id, w.g2.id));
    fx.model.remove("fault", w.fault.id);
    expect(fx.model.devicesOf(w.g1.id).map((d) => d.id)).toEqual([w.d1.id, late.id]);
    expect([...fx.model.groupsAttachedTo(w.paging.id)].includes(w.g1.id)).toBe(true);
    // g1 (two devices) on the paging domain, g2 on the automatic one, g3 on its default domain.
    expect(fx.model.domainsAttachedOn(w.unit.id)).toBe(3);
    expect(fx.model.devicesAttachedOn(w.unit.id, w.paging.id)).toBe(2);
    expect(fx.model.devicesAttachedOn(w.unit.id, w.g1.defaultDomainId)).toBe(0);
    expect(fx.model.pagingDomainsBoundTo(w.unit.id)).toBe(2);
    expect(indexes(fx, ids())).not.toBe(indexesBefore);

    fx.model.rollbackTo(sp);
    expect(snapshot(fx.model)).toBe(rowsBefore);
    expect(indexes(fx, ids())).toBe(indexesBefore);
    expect(fx.model.attachedGroupCount(w.paging.id)).toBe(0);
    expect([...fx.model.groupsAttachedTo(w.g1.defaultDomainId)]).toEqual([w.g1.id]);
    expect(fx.model.devicesAttachedOn(w.unit.id, w.g1.defaultDomainId)).toBe(1);
    expect(fx.model.devicesAttachedOn(w.unit.id, w.paging.id)).toBe(0);
    expect(fx.model.idByName("device", "late")).toBeUndefined();
    expect(fx.model.get("device", late.id)).toBeUndefined();
  });

  it("restores the device refcount when an automatic domain freed by a replace comes back", () => {
    const w = world();
    const { fx } = w;
    const auto = unwrap(fx.op(containerAttach, ANON, w.ioas.id, w.g1.id)).domainId;
    fx.commit();
    expect(fx.model.devicesAttachedOn(w.unit.id, auto)).toBe(1);
    const sp = fx.model.savepoint();
    unwrap(fx.op(replaceDomain, ANON, w.g1.id, w.paging.id));
    expect(fx.model.get("domain", auto)).toBeUndefined();
    expect(fx.model.devicesAttachedOn(w.unit.id, auto)).toBe(0);
    expect(fx.model.devicesAttachedOn(w.unit.id, w.paging.id)).toBe(1);
    expect(fx.model.domainsAttachedOn(w.unit.id)).toBe(3);
    fx.model.rollbackTo(sp);
    expect(fx.model.get("domain", auto)).toMatchObject({ auto: true, containerId: w.ioas.id, owner: null });
    expect([...fx.model.groupsAttachedTo(auto)]).toEqual([w.g1.id]);
    expect(fx.model.attachedGroupCount(w.paging.id)).toBe(0);
    expect(fx.model.devicesAttachedOn(w.unit.id, auto)).toBe(1);
    expect(fx.model.devicesAttachedOn(w.unit.id, w.paging.id)).toBe(0);
    expect(fx.model.domainsAttachedOn(w.unit.id)).toBe(3);
    expect(fx.model.domainsOf(w.ioas.id).map((d) => d.id)).toEqual([auto]);
    expect(fx.model.get("domain", w.paging.id)?.unitId).toBeNull();
    expect(fx.model.pagingDomainsBoundTo(w.unit.id)).toBe(1);
  });

  it("nested savepoints roll back only their own part", () => {
    const w = world();
    const { fx } = w;
    const outer = fx.model.savepoint();
    const a = unwrap(createDomain(fx.model, { type: "paging", driver: "mock" }));
    const inner = fx.model.savepoint();
    const b = unwrap(createDomain(fx.model, { type: "paging", driver: "mock" }));
    unwrap(deleteDomain(fx.model, a.id));
    fx.model.rollbackTo(inner);
    expect(fx.model.get("domain", a.id)).toEqual(a);
    expect(fx.model.get("domain", b.id)).toBeUndefined();
    fx.model.rollbackTo(outer);
    expect(fx.model.get("domain", a.id)).toBeUndefined();
  });

  it("ids are not given back by a rollback", () => {
    const w = world();
    const sp = w.fx.model.savepoint();
    const a = unwrap(createDomain(w.fx.model, { type: "paging", driver: "mock" }));
    w.fx.model.rollbackTo(sp);
    const b = unwrap(createDomain(w.fx.model, { type: "paging", driver: "mock" }));
    expect(b.id).toBeGreaterThan(a.id);
  });
});

describe("putSurvivingRollback", () => {
  it("survives a rollback (a consumed fault stays consumed)", () => {
    const w = world();
    const { fx } = w;
    const sp = fx.model.savepoint();
    fx.model.put("unit", { ...w.unit, online: false });
    fx.model.putSurvivingRollback("fault", { ...w.fault, remaining: 4 }, w.fault.id);
    fx.model.rollbackTo(sp);
    expect(fx.model.get("unit", w.unit.id)?.online).toBe(true);
    expect(fx.model.get("fault", w.fault.id)?.remaining).toBe(4);
    expect(fx.model.takeChanges().rows.fault.get(w.fault.id)?.after).toMatchObject({ remaining: 4 });
  });

  it("a durable delete survives a rollback and updates the indexes", () => {
    const w = world();
    const { fx } = w;
    const sp = fx.model.savepoint();
    fx.model.putSurvivingRollback("fault", null, w.fault.id);
    fx.model.rollbackTo(sp);
    expect(fx.model.get("fault", w.fault.id)).toBeUndefined();
    expect(fx.model.faultsOn({ deviceId: w.d3.id })).toEqual([]);
    expect(fx.model.takeChanges().rows.fault.get(w.fault.id)?.after).toBeNull();
  });
});

describe("restore", () => {
  it("puts back a change set whose group left an automatic domain that was freed: indexes that read the domain count the group again", () => {
    const w = world();
    const { fx } = w;
    const auto = unwrap(fx.op(containerAttach, ANON, w.ioas.id, w.g1.id)).domainId;
    fx.commit();
    const ids = {
      unitId: w.unit.id, groupIds: [w.g1.id, w.g2.id], containerId: w.ioas.id, deviceIds: [w.d1.id, w.d2.id, w.d3.id],
      domainIds: [...fx.model.all("domain")].map((d) => d.id),
    };
    const rowsBefore = snapshot(fx.model);
    const indexesBefore = indexes(fx, ids);
    unwrap(fx.op(replaceDomain, ANON, w.g1.id, w.paging.id));
    expect(fx.model.get("domain", auto)).toBeUndefined();
    fx.model.restore(fx.model.takeChanges());
    expect(snapshot(fx.model)).toBe(rowsBefore);
    expect(indexes(fx, ids)).toBe(indexesBefore);
    expect(fx.model.devicesAttachedOn(w.unit.id, auto)).toBe(1);
    expect(fx.model.hasChanges()).toBe(false);
  });
});

describe("takeChanges", () => {
  it("returns the final row of each changed object, null for deleted ones, and the events", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const kept = unwrap(createDomain(fx.model, { type: "paging", driver: "mock", name: "first" }));
    fx.model.put("domain", { ...kept, name: "renamed" });
    const gone = unwrap(createDomain(fx.model, { type: "paging", driver: "mock" }));
    unwrap(deleteDomain(fx.model, gone.id));
    fx.model.put("unit", { ...unit, online: false });
    fx.model.record({ op: "claim", owner: "x", groupId: null, deviceId: null, domainId: null, containerId: null, ...outcomeOf(null) });
    expect(fx.model.hasChanges()).toBe(true);

    const drained = fx.model.takeChanges();
    expect(drained.rows.domain.get(kept.id)?.after).toMatchObject({ id: kept.id, name: "renamed" });
    expect(drained.rows.domain.get(gone.id)?.after).toBeNull();
    expect(drained.rows.domain.size).toBe(2);
    expect(drained.rows.unit.get(unit.id)?.after).toEqual({ ...unit, online: false });
    expect(drained.rows.group.size).toBe(0);
    expect(drained.events).toEqual([
      expect.objectContaining({ op: "create", kind: "unit", objectId: unit.id }),
      expect.objectContaining({ op: "create", kind: "domain", objectId: kept.id }),
      expect.objectContaining({ op: "create", kind: "domain", objectId: gone.id }),
      expect.objectContaining({ op: "delete", kind: "domain", objectId: gone.id }),
      expect.objectContaining({ op: "claim", owner: "x" }),
    ]);

    // Drained is committed: nothing pending, and the undo log is gone.
    expect(fx.model.hasChanges()).toBe(false);
    const again = fx.model.takeChanges();
    expect(again.events).toEqual([]);
    for (const rows of Object.values(again.rows)) expect(rows.size).toBe(0);
    fx.model.rollbackTo(0);
    expect(fx.model.get("domain", kept.id)?.name).toBe("renamed");
    expect(fx.model.get("unit", unit.id)?.online).toBe(false);
  });

  it("a row created and rolled back is no change at all (the store writes nothing for it)", () => {
    const fx = build();
    const sp = fx.model.savepoint();
    const d = unwrap(createDomain(fx.model, { type: "paging", driver: "mock" }));
    fx.model.rollbackTo(sp);
    expect(fx.model.takeChanges().rows.domain.has(d.id)).toBe(false);
    expect(fx.model.hasChanges()).toBe(false);
  });

  it("a row changed before a savepoint stays changed when a later change to it is rolled back", () => {
    const fx = build();
    const u = fx.unit("mock");
    fx.commit();
    unwrap(updateUnit(fx.model, u.id, { online: false }));
    const sp = fx.model.savepoint();
    unwrap(updateUnit(fx.model, u.id, { online: true }));
    fx.model.rollbackTo(sp);
    const change = fx.model.takeChanges().rows.unit.get(u.id);
    expect(change?.before).toMatchObject({ online: true });
    expect(change?.after).toMatchObject({ online: false });
  });
});

describe("load / reserveIds", () => {
  it("load indexes rows without marking them dirty or undoable", () => {
    const model = new Model(DRIVERS);
    const unit = Unit.make({
      id: 7, name: "loaded", driver: "mock", online: true,
      capabilities: {
        addressWidth: 64, pageSizes: [4096], snoopControl: true, dirtyTracking: true, nesting: true, domainIds: 10, cpuPageSize: 4096, isolatedMsi: true,
        coherentWalk: true, firstStage: true, bypass: true,
      },
    });
    const domain = Domain.make({
      id: 3, type: "paging", driver: "mock", unitId: 7,
      config: { addressWidth: 64, pageSizes: [4096], enforceCacheCoherency: false, dirtyTracking: false, nestParent: false, coherentWalk: true, firstStage: true },
    });
    model.load("unit", unit);
    model.load("domain", domain);
    expect(model.hasChanges()).toBe(false);
    expect(model.idByName("unit", "loaded")).toBe(7);
    expect([...model.domainsBoundTo(7)]).toEqual([3]);
    expect(model.pagingDomainsBoundTo(7)).toBe(1);
    model.rollbackTo(0);
    expect(model.get("unit", 7)).toEqual(unit);
    // Ids continue after the loaded ones.
    expect(model.allocateId("unit")).toBe(8);
    expect(model.allocateId("domain")).toBe(4);
  });

  it("reserveIds never goes backwards", () => {
    const model = new Model(DRIVERS);
    model.reserveIds("group", 10);
    model.reserveIds("group", 5);
    expect(model.allocateId("group")).toBe(11);
    expect(model.allocateId("device")).toBe(1);
  });
});

describe("id order of tables", () => {
  it("rows stay in id order when a rollback puts back a row deleted earlier", async () => {
    const { Model } = await import("../../src/core/model.js");
    const { createUnit, deleteUnit } = await import("../../src/core/objects.js");
    const m = new Model(DRIVERS);
    for (const name of ["a", "b", "c"]) createUnit(m, { name, driver: "mock" });
    const sp = m.savepoint();
    deleteUnit(m, 1);
    m.rollbackTo(sp);
    expect([...m.all("unit")].map((u) => u.id)).toEqual([1, 2, 3]);
    expect(m.count("unit")).toBe(3);
  });
});

describe("column-stored kinds", () => {
  it("read back exactly what was stored, nulls and shared objects included, past the columns' first growth", () => {
    const m = new Model(DRIVERS);
    const config = { addressWidth: 48, pageSizes: [4096], enforceCacheCoherency: false, dirtyTracking: false, nestParent: false, coherentWalk: true, firstStage: true };
    const flags = { noDirty: true, canwbs: false, requiresIdentity: false, untrusted: false };
    const domains = [
      Domain.make({ id: 1, name: null, type: "dma", driver: "intel-vtd", unitId: null, config, auto: false, containerId: null, owner: null }),
      Domain.make({ id: 5000, name: "p", type: "paging", driver: "mock", unitId: 0, config, auto: true, containerId: 3, owner: "vmm-a" }),
      // Storage holds any text: a value outside the enum reads back unchanged.
      Domain.make({ id: 5001, name: "x", type: "future" as Domain["type"], driver: "other", unitId: 2, config, auto: false, containerId: null, owner: null }),
    ];
    for (const d of domains) m.put("domain", d);
    const groups = [
      Group.make({ id: 3, name: "g3", unitId: 1, domainId: 1, defaultDomainId: 1, blockingDomainId: null, owner: null }),
      Group.make({ id: 4000, name: "g4000", unitId: 2, domainId: 5000, defaultDomainId: 1, blockingDomainId: 0, owner: "vfio" }),
    ];
    for (const g of groups) m.put("group", g);
    const device = Device.make({ id: 2, name: "d2", groupId: 4000, flags, faulty: true });
    m.put("device", device);
    for (const d of domains) expect(m.get("domain", d.id)).toStrictEqual(d);
    for (const g of groups) expect(m.get("group", g.id)).toStrictEqual(g);
    expect(Object.keys(m.get("group", 3)!)).toEqual(Object.keys(groups[0]!));
    expect(m.get("device", 2)).toStrictEqual(device);
    expect(m.get("device", 2)!.flags).toBe(flags);
    expect(m.get("domain", 5000)!.config).toBe(config);
    for (const id of [0, 2, 4999, 5002, 1 << 20, -1, 1.5]) expect(m.get("domain", id)).toBeUndefined();
    expect([...m.all("domain")].map((d) => d.id)).toEqual([1, 5000, 5001]);
    // Group 4000 (unit 2) holds device 2 and sits on paging domain 5000.
    expect(m.devicesAttachedOn(2, 5000)).toBe(1);
    expect(m.domainsAttachedOn(2)).toBe(1);
    expect(m.usage.defaultDomainsOn(2)).toBe(1);

    m.remove("domain", 5001);
    m.put("group", { ...groups[1]!, owner: null });
    expect(m.get("domain", 5001)).toBeUndefined();
    expect(m.get("group", 4000)!.owner).toBeNull();
    expect(m.count("domain")).toBe(2);
    const drained = m.takeChanges();
    expect(drained.rows.domain.get(5001)).toStrictEqual({ before: null, after: null });
    expect(drained.rows.group.get(4000)!.after).toStrictEqual({ ...groups[1]!, owner: null });
  });
});
