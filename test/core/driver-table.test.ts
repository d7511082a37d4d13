// The core runs whatever driver table it is handed (new Model(drivers)): a
// driver it has never heard of works through the contract alone, sees the
// read-only usage view and never the model, and a name the table lacks is
// refused, not a crash.
import { describe, expect, it } from "vitest";
import { ANONYMOUS } from "../../src/core/caller.js";
import { containerAttach } from "../../src/core/container-attach.js";
import type { AttachContext, FinaliseContext, IommuDriver } from "../../src/core/driver.js";
import { attachGroup } from "../../src/core/group-moves.js";
import { Model } from "../../src/core/model.js";
import { createContainer, createDevice, createDomain, createGroup, createUnit } from "../../src/core/objects.js";
import { perform } from "../../src/core/operation.js";
import { fail, ok, type Result } from "../../src/core/result.js";
import { errorOf, snapshot, unwrap } from "./fixtures.js";

const CAPS = {
  addressWidth: 40, pageSizes: [4096], snoopControl: false, dirtyTracking: false, nesting: false, domainIds: 8, cpuPageSize: 4096, isolatedMsi: true,
  coherentWalk: true, firstStage: true, bypass: true,
};

/** A driver of this test's own, recording what it is given. */
function toy(name: string, opts: { binds: boolean; refuseFinalise?: boolean }) {
  const seen = { finalise: [] as FinaliseContext[], attach: [] as AttachContext[] };
  const base: IommuDriver = {
    name, defaults: CAPS, allocFlags: { dirtyTracking: false, nestParent: false },
    attachDev: (ctx) => {
      seen.attach.push(ctx);
      return ok(undefined);
    },
  };
  const driver: IommuDriver = opts.binds
    ? {
      ...base,
      finaliseAt: "first-attach",
      finalise: (ctx: FinaliseContext): Result<void> => {
        seen.finalise.push(ctx);
        return opts.refuseFinalise ? fail("context-banks-exhausted", "toy refuses") : ok(undefined);
      },
    }
    : base;
  return { driver, seen };
}

function groupOn(model: Model, unitId: number, name: string) {
  const group = unwrap(createGroup(model, { name, unitId }));
  unwrap(createDevice(model, { name: `${name}-dev`, groupId: group.id }));
  return group;
}

const attach = (model: Model, groupId: number, domainId: number) =>
  perform(model, (m) => attachGroup(m, ANONYMOUS, groupId, domainId)).result;

describe("a driver table of the caller's choosing", () => {
  it("a binding driver: finalised once, on the first attach, through the read-only usage view", () => {
    const { driver, seen } = toy("toy", { binds: true });
    const model = new Model({ toy: driver });
    const unit = unwrap(createUnit(model, { name: "u0", driver: "toy" }));
    expect(unit.capabilities).toEqual(CAPS);
    const domain = unwrap(createDomain(model, { type: "paging", driver: "toy" }));
    const a = groupOn(model, unit.id, "g0");
    const b = groupOn(model, unit.id, "g1");
    expect(attach(model, a.id, domain.id).ok).toBe(true);
    expect(attach(model, b.id, domain.id).ok).toBe(true);
    expect(seen.finalise).toHaveLength(1);
    expect(seen.finalise[0]).toMatchObject({ unit: { id: unit.id }, domain: { id: domain.id, unitId: null } });
    expect(seen.attach.map((c) => c.domain.unitId)).toEqual([unit.id, unit.id]);
    expect(model.get("domain", domain.id)?.unitId).toBe(unit.id);

    const usage = seen.attach[0]!.usage;
    expect(usage).toBe(model.usage);
    expect(usage).not.toBe(model);
    expect(Object.isFrozen(usage)).toBe(true);
    expect(Object.keys(usage).sort()).toEqual([
      "defaultDomainsOn", "devicesAttachedOn", "domainsAttachedOn", "nestParentsBoundTo", "pagingDomainsBoundTo",
      "pagingDomainsOf", "pasidsOn", "unitsOf",
    ]);
    expect(usage.unitsOf("toy").map((u) => u.id)).toEqual([unit.id]);
    expect(usage.pagingDomainsBoundTo(unit.id)).toBe(1);
    expect(usage.nestParentsBoundTo(unit.id)).toBe(0);
    expect(usage.pagingDomainsOf("toy")).toBe(1);
    // Both groups have a device: their default domains are allocated, and off them now.
    expect(usage.defaultDomainsOn(unit.id)).toBe(2);
    expect(usage.domainsAttachedOn(unit.id)).toBe(1);
    expect(usage.devicesAttachedOn(unit.id, domain.id)).toBe(2);
    expect(usage.devicesAttachedOn(unit.id, a.defaultDomainId)).toBe(0);
  });

  it("a binding driver's finalise refusal leaves the domain unbound and the group where it was", () => {
    const { driver, seen } = toy("toy", { binds: true, refuseFinalise: true });
    const model = new Model({ toy: driver });
    const unit = unwrap(createUnit(model, { name: "u0", driver: "toy" }));
    const domain = unwrap(createDomain(model, { type: "paging", driver: "toy" }));
    const group = groupOn(model, unit.id, "g0");
    model.takeChanges();
    const before = snapshot(model);
    expect(errorOf(attach(model, group.id, domain.id))).toMatchObject({ errno: "ENOSPC", reason: "context-banks-exhausted", detail: "toy refuses" });
    expect(seen.attach).toHaveLength(0);
    expect(snapshot(model)).toBe(before);
  });

  it("a driver without finalise does not bind: no finalise call, the domain stays unbound across units", () => {
    const { driver, seen } = toy("plain", { binds: false });
    const model = new Model({ plain: driver });
    const u0 = unwrap(createUnit(model, { name: "u0", driver: "plain" }));
    const u1 = unwrap(createUnit(model, { name: "u1", driver: "plain" }));
    const domain = unwrap(createDomain(model, { type: "paging", driver: "plain" }));
    expect(attach(model, groupOn(model, u0.id, "g0").id, domain.id).ok).toBe(true);
    expect(attach(model, groupOn(model, u1.id, "g1").id, domain.id).ok).toBe(true);
    expect(seen.finalise).toHaveLength(0);
    expect(seen.attach).toHaveLength(2);
    expect(model.get("domain", domain.id)?.unitId).toBeNull();
  });

  it("refuses a table whose key is not its driver's name", () => {
    const { driver } = toy("toy", { binds: false });
    expect(() => new Model({ other: driver })).toThrow(/key other holds driver toy/);
  });
});

describe("a driver the table lacks: EINVAL invalid-argument", () => {
  const refused = (name: string) => ({ errno: "EINVAL", reason: "invalid-argument", detail: `${name} is not a registered IOMMU driver` });

  it("for a new unit or domain, with nothing changed", () => {
    const model = new Model({ toy: toy("toy", { binds: false }).driver });
    const before = snapshot(model);
    expect(errorOf(createUnit(model, { name: "u0", driver: "intel-vtd" }))).toEqual(refused("intel-vtd"));
    expect(errorOf(createDomain(model, { type: "paging", driver: "nope" }))).toEqual(refused("nope"));
    expect(snapshot(model)).toBe(before);
    expect(model.lastIds().unit).toBe(0);
  });

  it("for a unit storage holds (a driver since removed): allocation and attach refuse, nothing crashes", () => {
    const model = new Model({ toy: toy("toy", { binds: true }).driver });
    model.load("unit", { id: 1, name: "old", driver: "gone", capabilities: CAPS, online: true });
    model.load("domain", {
      id: 1, name: null, type: "paging", driver: "gone", unitId: null, auto: false, search: "none", containerId: null, owner: null,
      config: {
        addressWidth: 40, pageSizes: [4096], enforceCacheCoherency: false, dirtyTracking: false, nestParent: false, coherentWalk: true, firstStage: true,
      },
    });
    const group = unwrap(createGroup(model, { name: "g0", unitId: 1 }));
    // A new device's default domain needs the driver too; the one storage holds is loaded as it is.
    expect(errorOf(createDevice(model, { name: "g0-dev", groupId: group.id }))).toMatchObject(refused("gone"));
    model.load("device", { id: 1, name: "g0-dev", groupId: group.id, faulty: false, flags: { noDirty: false, canwbs: false, requiresIdentity: false, untrusted: false }, maxPasids: 0, hostDriver: null, strandedOnDomainId: null });
    expect(errorOf(createDomain(model, { type: "paging", unitId: 1 }))).toEqual(refused("gone"));
    expect(errorOf(attach(model, group.id, 1))).toMatchObject(refused("gone"));
    const container = unwrap(createContainer(model, { name: "ioas" }));
    const r = perform(model, (m) => containerAttach(m, ANONYMOUS, container.id, group.id)).result;
    expect(errorOf(r)).toMatchObject(refused("gone"));
  });
});
