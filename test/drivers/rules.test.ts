// Section 3 of the contract: the per-driver incompatibility rules, one table
// per driver, each row run through both public entry points (attachGroup and
// attachDevice) so the whole core path is exercised.
import { describe, expect, it } from "vitest";
import type { DeviceFlags } from "../../src/core/entities.js";
import { ERRNO_VALUES, type ErrnoName } from "../../src/core/errno.js";
import { attachDevice, attachGroup } from "../../src/core/group-moves.js";
import * as objects from "../../src/core/objects.js";
import type { Reason } from "../../src/core/reasons.js";
import { isSoft } from "../../src/core/result.js";
import { DRIVERS, type DriverName } from "../../src/drivers/index.js";
import { ANON, build, errorOf, snapshot, type Fixture } from "../core/fixtures.js";

interface Setup {
  readonly groupId: number;
  readonly deviceId: number;
  readonly domainId: number;
  readonly unitId: number;
}

interface Row {
  readonly rule: string;
  readonly setup: (fx: Fixture) => Setup;
  /** null: the attach succeeds. */
  readonly errno: ErrnoName | null;
  readonly reason: Reason | null;
  readonly soft: boolean;
}

/** A one-device group on `unitId` and the domain to attach it to. */
function single(fx: Fixture, unitId: number, domainId: number, flags: Partial<DeviceFlags> = {}): Setup {
  const { group, devices } = fx.groupWith(unitId, [flags]);
  return { groupId: group.id, deviceId: devices[0]!.id, domainId, unitId };
}

/** Spend the unit's only domain ID / ASID: another group attached to another paging domain. */
function occupyDomainId(fx: Fixture, unitId: number, driver: DriverName): void {
  const other = single(fx, unitId, fx.domain({ driver }).id);
  const r = fx.op(attachGroup, ANON, other.groupId, other.domainId);
  if (!r.ok) throw new Error(`setup attach failed: ${r.error.reason}`);
}

const ok = (rule: string, setup: Row["setup"]): Row => ({ rule, setup, errno: null, reason: null, soft: false });
const soft = (reason: Reason, setup: Row["setup"]): Row => ({ rule: reason, setup, errno: "EINVAL", reason, soft: true });
const hard = (errno: ErrnoName, reason: Reason, setup: Row["setup"]): Row => ({ rule: reason, setup, errno, reason, soft: false });

const TABLES: Record<DriverName, Row[]> = {
  "intel-vtd": [
    ok("compatible paging domain", (fx) => single(fx, fx.unit("intel-vtd").id, fx.domain({ driver: "intel-vtd" }).id)),
    ok("force-snooping domain on a unit with snoop control", (fx) =>
      single(fx, fx.unit("intel-vtd", { snoopControl: true }).id, fx.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }).id)),
    ok("narrower domain than the unit", (fx) =>
      single(fx, fx.unit("intel-vtd", { addressWidth: 57 }).id, fx.domain({ driver: "intel-vtd", config: { addressWidth: 48 } }).id)),
    ok("all domain IDs in use but this domain already holds one on the unit", (fx) => {
      const unit = fx.unit("intel-vtd", { domainIds: 1 });
      const domain = fx.domain({ driver: "intel-vtd" });
      const first = single(fx, unit.id, domain.id);
      if (!fx.op(attachGroup, ANON, first.groupId, domain.id).ok) throw new Error("setup");
      return single(fx, unit.id, domain.id);
    }),
    soft("snoop-control", (fx) =>
      single(fx, fx.unit("intel-vtd", { snoopControl: false }).id, fx.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }).id)),
    soft("dirty-tracking", (fx) =>
      single(fx, fx.unit("intel-vtd", { dirtyTracking: false }).id, fx.domain({ driver: "intel-vtd", config: { dirtyTracking: true } }).id)),
    soft("address-width", (fx) =>
      single(fx, fx.unit("intel-vtd", { addressWidth: 39 }).id, fx.domain({ driver: "intel-vtd", config: { addressWidth: 48 } }).id)),
    soft("page-size", (fx) =>
      single(fx, fx.unit("intel-vtd", { pageSizes: [4096, 2097152] }).id, fx.domain({ driver: "intel-vtd", config: { pageSizes: [4096, 2097152, 1073741824] } }).id)),
    soft("nesting", (fx) =>
      single(fx, fx.unit("intel-vtd", { nesting: false }).id, fx.domain({ driver: "intel-vtd", config: { nestParent: true } }).id)),
    hard("ENOSPC", "domain-ids-exhausted", (fx) => {
      const unit = fx.unit("intel-vtd", { domainIds: 1 });
      occupyDomainId(fx, unit.id, "intel-vtd");
      return single(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id);
    }),
  ],
  "arm-smmu-v3": [
    ok("unbound domain is finalised on the device's SMMU", (fx) => {
      fx.unit("arm-smmu-v3");
      return single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3" }).id);
    }),
    ok("domain finalised on the same SMMU", (fx) => {
      const unit = fx.unit("arm-smmu-v3");
      return single(fx, unit.id, fx.domain({ unitId: unit.id }).id);
    }),
    ok("coherent domain and a CANWBS device", (fx) =>
      single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } }).id, { canwbs: true })),
    ok("nesting parent and a device without PASIDs", (fx) =>
      single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { nestParent: true } }).id, { pasid: false })),
    soft("different-instance", (fx) => {
      const a = fx.unit("arm-smmu-v3");
      const b = fx.unit("arm-smmu-v3");
      return single(fx, b.id, fx.domain({ unitId: a.id }).id);
    }),
    soft("cache-coherency", (fx) =>
      single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } }).id, { canwbs: false })),
    hard("EBUSY", "pasid-in-use", (fx) =>
      single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { nestParent: true } }).id, { pasid: true })),
    hard("ENOSPC", "asids-exhausted", (fx) => {
      const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
      fx.domain({ unitId: unit.id }); // finalised at allocation: holds the only ASID
      return single(fx, unit.id, fx.domain({ driver: "arm-smmu-v3" }).id);
    }),
  ],
  "arm-smmu": [
    ok("unbound domain takes a context bank", (fx) =>
      single(fx, fx.unit("arm-smmu").id, fx.domain({ driver: "arm-smmu" }).id)),
    soft("different-instance", (fx) => {
      const a = fx.unit("arm-smmu");
      const b = fx.unit("arm-smmu");
      return single(fx, b.id, fx.domain({ unitId: a.id }).id);
    }),
    hard("ENOSPC", "context-banks-exhausted", (fx) => {
      const unit = fx.unit("arm-smmu", { domainIds: 1 });
      fx.domain({ unitId: unit.id });
      return single(fx, unit.id, fx.domain({ driver: "arm-smmu" }).id);
    }),
  ],
  "amd-iommu": [
    ok("dirty-tracking domain on a unit with dirty tracking", (fx) =>
      single(fx, fx.unit("amd-iommu", { dirtyTracking: true }).id, fx.domain({ driver: "amd-iommu", config: { dirtyTracking: true } }).id)),
    soft("dirty-tracking", (fx) =>
      single(fx, fx.unit("amd-iommu", { dirtyTracking: false }).id, fx.domain({ driver: "amd-iommu", config: { dirtyTracking: true } }).id)),
    hard("ENOSPC", "domain-ids-exhausted", (fx) => {
      const unit = fx.unit("amd-iommu", { domainIds: 1 });
      occupyDomainId(fx, unit.id, "amd-iommu");
      return single(fx, unit.id, fx.domain({ driver: "amd-iommu" }).id);
    }),
  ],
  "apple-dart": [
    ok("DART page size equal to the CPU page size", (fx) =>
      single(fx, fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 16384 }).id, fx.domain({ driver: "apple-dart" }).id)),
    soft("different-instance", (fx) => {
      const a = fx.unit("apple-dart");
      const b = fx.unit("apple-dart");
      return single(fx, b.id, fx.domain({ unitId: a.id }).id);
    }),
    soft("page-size", (fx) =>
      single(fx, fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 4096 }).id, fx.domain({ driver: "apple-dart" }).id)),
  ],
  "virtio-iommu": [
    ok("unbound domain is finalised on the endpoint's viommu", (fx) =>
      single(fx, fx.unit("virtio-iommu").id, fx.domain({ driver: "virtio-iommu" }).id)),
    soft("different-instance", (fx) => {
      const a = fx.unit("virtio-iommu");
      const b = fx.unit("virtio-iommu");
      return single(fx, b.id, fx.domain({ unitId: a.id }).id);
    }),
    hard("ENODEV", "granule-too-large", (fx) =>
      single(fx, fx.unit("virtio-iommu", { pageSizes: [65536], cpuPageSize: 4096 }).id, fx.domain({ driver: "virtio-iommu" }).id)),
  ],
  mock: [
    ok("normal device on a dirty-tracking domain", (fx) =>
      single(fx, fx.unit("mock").id, fx.domain({ driver: "mock", config: { dirtyTracking: true } }).id)),
    ok("no-dirty device on a domain without dirty tracking", (fx) =>
      single(fx, fx.unit("mock").id, fx.domain({ driver: "mock" }).id, { noDirty: true })),
    soft("dirty-tracking", (fx) =>
      single(fx, fx.unit("mock").id, fx.domain({ driver: "mock", config: { dirtyTracking: true } }).id, { noDirty: true })),
  ],
};

const VIAS = ["attachGroup", "attachDevice"] as const;

describe.each(Object.entries(TABLES) as [DriverName, Row[]][])("%s", (driver, rows) => {
  it("has a positive row and at least one failing row", () => {
    expect(rows.some((r) => r.errno === null)).toBe(true);
    expect(rows.some((r) => r.errno !== null)).toBe(true);
  });

  describe.each(VIAS)("via %s", (via) => {
    it.each(rows)("$rule → $errno", (row) => {
      const fx = build();
      const s = row.setup(fx);
      fx.commit();
      const before = snapshot(fx.model);
      const oldDomainId = fx.groupNow(s.groupId).domainId;
      expect(oldDomainId).not.toBe(s.domainId);

      const r = via === "attachGroup"
        ? fx.op(attachGroup, ANON, s.groupId, s.domainId)
        : fx.op(attachDevice, ANON, s.deviceId, s.domainId);
      const events = fx.model.takeChanges().events;
      expect(events).toHaveLength(1);
      const event = events[0]!;
      expect(event.op).toBe(via === "attachGroup" ? "attach-group" : "attach-device");

      if (row.errno === null) {
        expect(r).toEqual({ ok: true, value: { groupId: s.groupId, domainId: s.domainId, changed: true } });
        expect(fx.groupNow(s.groupId).domainId).toBe(s.domainId);
        if (DRIVERS[driver].finalise) expect(fx.domainNow(s.domainId)?.unitId).toBe(s.unitId);
        expect(event).toMatchObject({ errno: null, code: 0, reason: null, groupId: s.groupId, domainId: s.domainId });
        return;
      }
      const error = errorOf(r);
      expect(error.errno).toBe(row.errno);
      expect(error.reason).toBe(row.reason);
      expect(isSoft(error)).toBe(row.soft);
      expect(error.driverErrno).toBeUndefined();
      expect(error.ids?.deviceId).toBe(s.deviceId);
      // Nothing changed: not the group, not the domain's binding, not a counter.
      expect(fx.groupNow(s.groupId).domainId).toBe(oldDomainId);
      expect(snapshot(fx.model)).toBe(before);
      expect(event).toMatchObject({
        errno: row.errno, code: -ERRNO_VALUES[row.errno], reason: row.reason, groupId: s.groupId, domainId: s.domainId,
      });
    });
  });
});

describe("binding drivers: finalisation", () => {
  it.each(["arm-smmu-v3", "arm-smmu", "apple-dart", "virtio-iommu"] as const)(
    "%s: the first attach binds the domain; a device behind another instance then gets a soft EINVAL",
    (driver) => {
      const fx = build();
      const a = fx.unit(driver);
      const b = fx.unit(driver);
      const domain = fx.domain({ driver });
      expect(domain.unitId).toBeNull();
      const ga = single(fx, a.id, domain.id);
      const gb = single(fx, b.id, domain.id);
      expect(fx.op(attachGroup, ANON, ga.groupId, domain.id).ok).toBe(true);
      expect(fx.domainNow(domain.id)?.unitId).toBe(a.id);
      const error = errorOf(fx.op(attachGroup, ANON, gb.groupId, domain.id));
      expect(error).toMatchObject({ errno: "EINVAL", reason: "different-instance" });
      expect(isSoft(error)).toBe(true);
      expect(fx.groupNow(gb.groupId).domainId).toBe(fx.groupNow(gb.groupId).defaultDomainId);
    },
  );

  it.each(["intel-vtd", "amd-iommu", "mock"] as const)("%s: a domain is not bound; groups on two units share it", (driver) => {
    const fx = build();
    const a = fx.unit(driver);
    const b = fx.unit(driver);
    const domain = fx.domain({ driver });
    const ga = single(fx, a.id, domain.id);
    const gb = single(fx, b.id, domain.id);
    expect(fx.op(attachGroup, ANON, ga.groupId, domain.id).ok).toBe(true);
    expect(fx.op(attachGroup, ANON, gb.groupId, domain.id).ok).toBe(true);
    expect(fx.domainNow(domain.id)?.unitId).toBeNull();
    expect([...fx.model.groupsAttachedTo(domain.id)].sort()).toEqual([ga.groupId, gb.groupId].sort());
  });

  it("virtio-iommu: granule-too-large also refuses a domain allocated for the unit (ENODEV at finalise)", () => {
    const fx = build();
    const unit = fx.unit("virtio-iommu", { pageSizes: [65536], cpuPageSize: 4096 });
    const before = snapshot(fx.model);
    const error = errorOf(objects.createDomain(fx.model, { type: "paging", unitId: unit.id }));
    expect(error).toMatchObject({ errno: "ENODEV", reason: "granule-too-large" });
    expect(isSoft(error)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
  });

  it("arm-smmu-v3: a VMID (nesting parent) is exhausted like an ASID", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
    fx.domain({ unitId: unit.id });
    const s = single(fx, unit.id, fx.domain({ driver: "arm-smmu-v3", config: { nestParent: true } }).id);
    const error = errorOf(fx.op(attachGroup, ANON, s.groupId, s.domainId));
    expect(error).toMatchObject({ errno: "ENOSPC", reason: "asids-exhausted" });
    expect(fx.domainNow(s.domainId)?.unitId).toBeNull();
  });

  it("arm-smmu: freeing a domain gives its context bank back", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu", { domainIds: 1 });
    const first = fx.domain({ unitId: unit.id });
    const s = single(fx, unit.id, fx.domain({ driver: "arm-smmu" }).id);
    expect(errorOf(fx.op(attachGroup, ANON, s.groupId, s.domainId)).errno).toBe("ENOSPC");
    expect(objects.deleteDomain(fx.model, first.id).ok).toBe(true);
    expect(fx.op(attachGroup, ANON, s.groupId, s.domainId).ok).toBe(true);
  });
});
