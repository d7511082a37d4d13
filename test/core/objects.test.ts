// Creation / deletion rules of src/core/objects.ts and the dry run of
// src/core/compat.ts.
import { describe, expect, it } from "vitest";
import { groupCompatibility } from "../../src/core/compat.js";
import type { DomainConfig } from "../../src/core/entities.js";
import {
  createContainer, createDevice, createDomain, createGroup, createUnit, deleteContainer, deleteDevice,
  deleteDomain, deleteGroup, deleteUnit, injectFault, updateDevice,
} from "../../src/core/objects.js";
import * as ops from "../../src/core/group-moves.js";
import { attachGroup, claimOwnership } from "../../src/core/group-moves.js";
import type { Reason } from "../../src/core/reasons.js";
import { containerAttach } from "../../src/core/container-attach.js";
import type { DriverName } from "../../src/drivers/index.js";
import { isSoft } from "../../src/core/result.js";
import { ANON, as, build, errorOf, snapshot, unwrap, type Fixture } from "./fixtures.js";

describe("names", () => {
  const rows: { kind: string; make: (fx: Fixture, name: string) => { ok: boolean } & object; idKey: string }[] = [
    { kind: "unit", idKey: "unitId", make: (fx, name) => createUnit(fx.model, { name, driver: "mock" }) },
    { kind: "group", idKey: "groupId", make: (fx, name) => createGroup(fx.model, { name, unitId: fx.model.idByName("unit", "u")! }) },
    { kind: "device", idKey: "deviceId", make: (fx, name) => createDevice(fx.model, { name, groupId: fx.model.idByName("group", "g")! }) },
    { kind: "container", idKey: "containerId", make: (fx, name) => createContainer(fx.model, { name }) },
  ];

  it.each(rows)("a second $kind with the same name → EEXIST name-taken", ({ make, idKey, kind }) => {
    const fx = build();
    const unit = fx.unit("mock", {}, { name: "u" });
    const group = fx.group(unit.id, "g");
    fx.device(group.id, {}, "d");
    fx.container(undefined, "c");
    const name = { unit: "u", group: "g", device: "d", container: "c" }[kind]!;
    fx.commit();
    const before = snapshot(fx.model);
    const r = make(fx, name) as Parameters<typeof errorOf>[0];
    const error = errorOf(r);
    expect(error).toMatchObject({ errno: "EEXIST", reason: "name-taken" });
    expect(error.ids?.[idKey]).toBe(fx.model.idByName(kind as "unit", name));
    expect(snapshot(fx.model)).toBe(before);
    // A fresh name works.
    expect(make(fx, `${name}-2`).ok).toBe(true);
  });

  it("a name is free again once its object is deleted", () => {
    const fx = build();
    const unit = fx.unit("mock", {}, { name: "u" });
    unwrap(deleteUnit(fx.model, unit.id));
    const again = fx.unit("mock", {}, { name: "u" });
    expect(again.id).not.toBe(unit.id); // ids are never reused
  });
});

describe("units", () => {
  it("take the driver's defaults for capabilities they leave out", () => {
    const fx = build();
    const unit = fx.unit("apple-dart", { cpuPageSize: 4096 });
    expect(unit.capabilities).toEqual({
      addressWidth: 36, pageSizes: [16384], snoopControl: false, dirtyTracking: false, nesting: false, domainIds: 16, cpuPageSize: 4096,
      isolatedMsi: false,
      coherentWalk: true, firstStage: true, bypass: true,
    });
    expect(unit.online).toBe(true);
  });

  it.each([
    ["a group", (fx: Fixture, unitId: number) => { fx.group(unitId); }],
    ["a domain finalised on it", (fx: Fixture, unitId: number) => { fx.domain({ unitId }); }],
  ] as const)("with %s → EBUSY unit-in-use", (_name, occupy) => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3");
    occupy(fx, unit.id);
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(deleteUnit(fx.model, unit.id))).toMatchObject({ errno: "EBUSY", reason: "unit-in-use", ids: { unitId: unit.id } });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("an empty unit is deleted with its injected faults", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const fault = fx.fault({ unitId: unit.id, errno: "ENOMEM" });
    fx.commit();
    expect(deleteUnit(fx.model, unit.id).ok).toBe(true);
    const drained = fx.model.takeChanges();
    expect(drained.rows.unit.get(unit.id)?.after).toBeNull();
    expect(drained.rows.fault.get(fault.id)?.after).toBeNull();
    expect(errorOf(deleteUnit(fx.model, unit.id))).toMatchObject({ errno: "ENOENT", reason: "no-such-unit" });
  });
});

describe("groups and devices", () => {
  it("a group is born on a default dma domain shaped like its unit", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd", { addressWidth: 39, pageSizes: [4096] });
    const group = fx.group(unit.id);
    expect(group).toMatchObject({ domainId: group.defaultDomainId, blockingDomainId: null, owner: null, unitId: unit.id });
    expect(fx.domainNow(group.defaultDomainId)).toMatchObject({
      type: "dma", driver: "intel-vtd", unitId: unit.id, auto: false, containerId: null,
      config: { addressWidth: 39, pageSizes: [4096], enforceCacheCoherency: false, dirtyTracking: false, nestParent: false },
    });
    expect([...fx.model.groupsAttachedTo(group.defaultDomainId)]).toEqual([group.id]);
  });

  it("createGroup on a missing unit → ENOENT, no default domain left behind", () => {
    const fx = build();
    const before = snapshot(fx.model);
    expect(errorOf(createGroup(fx.model, { name: "g", unitId: 5 }))).toMatchObject({ errno: "ENOENT", reason: "no-such-unit" });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("delete a group with devices → EBUSY group-has-devices", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group } = fx.groupWith(unit.id, [{}, {}]);
    expect(errorOf(deleteGroup(fx.model, group.id))).toMatchObject({ errno: "EBUSY", reason: "group-has-devices", ids: { groupId: group.id } });
    expect(fx.model.get("group", group.id)).toBeDefined();
  });

  it("delete an empty group left attached to a paging domain (a database from before empty groups were refused) → EBUSY group-not-default", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.group(unit.id);
    const domain = fx.domain({ driver: "mock" });
    expect(errorOf(fx.op(attachGroup, ANON, group.id, domain.id))).toMatchObject({ errno: "ENODEV", reason: "group-empty" });
    fx.model.put("group", { ...fx.model.get("group", group.id)!, domainId: domain.id });
    expect(errorOf(deleteGroup(fx.model, group.id))).toMatchObject({ errno: "EBUSY", reason: "group-not-default" });
  });

  it("delete an empty group removes its default and blocking domains", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.group(unit.id);
    unwrap(fx.op(claimOwnership, as("o"), group.id));
    unwrap(fx.op(ops.releaseOwnership, as("o"), group.id));
    const blocking = fx.groupNow(group.id).blockingDomainId!;
    fx.commit();
    expect(deleteGroup(fx.model, group.id).ok).toBe(true);
    const drained = fx.model.takeChanges();
    expect(drained.rows.group.get(group.id)?.after).toBeNull();
    expect(drained.rows.domain.get(group.defaultDomainId)?.after).toBeNull();
    expect(drained.rows.domain.get(blocking)?.after).toBeNull();
    expect(fx.model.groupCountOnUnit(unit.id)).toBe(0);
    expect(deleteUnit(fx.model, unit.id).ok).toBe(true);
  });

  it("a device can neither join nor leave a group attached to a paging domain (EBUSY group-attached)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group, devices } = fx.groupWith(unit.id);
    const domain = fx.domain({ driver: "mock" });
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(errorOf(createDevice(fx.model, { name: "late", groupId: group.id }))).toMatchObject({ errno: "EBUSY", reason: "group-attached" });
    expect(errorOf(deleteDevice(fx.model, devices[0]!.id))).toMatchObject({ errno: "EBUSY", reason: "group-attached" });
    expect(fx.model.devicesOf(group.id).map((d) => d.id)).toEqual([devices[0]!.id]);
  });

  it("a group's first device sets up its default domain, which takes an ID: refused when the unit has none left (VT-d ENOSPC), nothing created; later devices share it", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd", { domainIds: 1 });
    const { group, devices } = fx.groupWith(unit.id);
    expect(fx.model.devicesAttachedOn(unit.id, group.defaultDomainId)).toBe(1);
    // A second device of the same group: the default domain holds its ID already (refcounted).
    unwrap(createDevice(fx.model, { name: "second", groupId: group.id }));
    expect(fx.model.devicesAttachedOn(unit.id, group.defaultDomainId)).toBe(2);
    const empty = fx.group(unit.id);
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(fx.op(createDevice, { name: "first", groupId: empty.id }))).toEqual({
      errno: "ENOSPC", reason: "domain-ids-exhausted", detail: `all 1 domain IDs of ${unit.name} are in use`,
      ids: { groupId: empty.id, domainId: empty.defaultDomainId },
    });
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.idByName("device", "first")).toBeUndefined();
    // The other group's devices leave: its default domain gives the ID back.
    unwrap(deleteDevice(fx.model, devices[0]!.id));
    unwrap(deleteDevice(fx.model, fx.model.idByName("device", "second")!));
    unwrap(fx.op(createDevice, { name: "first", groupId: empty.id }));
  });

  it("a group's first device on an owned group (on its blocking domain): VT-d attaches nothing, so takes no domain ID", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd", { domainIds: 1 });
    fx.groupWith(unit.id);
    const owned = fx.group(unit.id);
    unwrap(fx.op(claimOwnership, as("vfio"), owned.id));
    unwrap(fx.op(createDevice, { name: "behind-vfio", groupId: owned.id }));
    expect(fx.model.domainsAttachedOn(unit.id)).toBe(1);
  });

  // iommu_probe_device → __iommu_probe_device → __iommu_device_set_domain:
  // a device needing 1:1 mappings does not join a group that is (or, while
  // owned, returns to) blocked; an untrusted one never sits on identity.
  // (A device joins only a group on a core domain, so the static domains are
  // reached by flag changes only.)
  it.each([
    ["joins an owned group", "requires-identity", "create", "owned"],
    ["is flagged in an owned group", "requires-identity", "patch", "owned"],
    ["is flagged in a group on the static blocked domain", "requires-identity", "patch", "blocked"],
    ["is flagged untrusted in a group on the identity domain", "untrusted-device", "patch", "identity"],
  ] as const)("a device that %s → hard EINVAL %s, nothing changes", (_name, reason, how, where) => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const { group, devices } = fx.groupWith(unit.id);
    if (where === "owned") unwrap(fx.op(claimOwnership, as("vfio"), group.id));
    else unwrap(fx.op(attachGroup, ANON, group.id, fx.domain({ type: where, driver: "intel-vtd" }).id));
    fx.commit();
    const before = snapshot(fx.model);
    const flag = reason === "requires-identity" ? { requiresIdentity: true } : { untrusted: true };
    const r = how === "create"
      ? createDevice(fx.model, { name: "late", groupId: group.id, flags: flag })
      : updateDevice(fx.model, devices[0]!.id, { flags: flag });
    const g = fx.groupNow(group.id);
    const name = how === "create" ? "late" : devices[0]!.name;
    const detail = reason === "untrusted-device"
      ? `${name} is untrusted; group ${g.name} is on identity domain ${g.domainId}`
      : `${name} needs a 1:1 mapping for firmware-reserved regions; group ${g.name} ${where === "owned" ? "is owned by vfio and cannot return to its blocking domain" : `is on blocked domain ${g.domainId}`}`;
    const error = errorOf(r);
    expect(error).toEqual({
      errno: "EINVAL", reason, detail, ids: how === "create" ? { groupId: group.id } : { groupId: group.id, deviceId: devices[0]!.id },
    });
    expect(isSoft(error)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
  });

  it("the same flags are fine where the group's domains allow them; a device keeps a flag it has", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const { group } = fx.groupWith(unit.id);
    // Unowned, on its default domain: joins; an untrusted device joins too.
    const rmrr = fx.device(group.id, { requiresIdentity: true });
    fx.device(group.id, { untrusted: true });
    // A stored device already flagged in an owned group (from before the rule): other changes go through.
    fx.model.put("group", { ...fx.groupNow(group.id), owner: "vfio" });
    expect(unwrap(updateDevice(fx.model, rmrr.id, { faulty: true, flags: { requiresIdentity: true, canwbs: true } })).flags)
      .toMatchObject({ requiresIdentity: true, canwbs: true });
  });

  it("deleting a device removes its injected faults", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { devices } = fx.groupWith(unit.id);
    const fault = fx.fault({ deviceId: devices[0]!.id, errno: "EIO" });
    expect(deleteDevice(fx.model, devices[0]!.id).ok).toBe(true);
    expect(fx.model.get("fault", fault.id)).toBeUndefined();
  });
});

describe("domains", () => {
  it.each([
    ["attached to a group", "attached"],
    ["a group's default domain", "default"],
    ["a group's blocking domain", "blocking"],
  ] as const)("delete a domain that is %s → EBUSY domain-in-use", (_name, how) => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    let id: number;
    if (how === "attached") {
      id = fx.domain({ driver: "mock" }).id;
      unwrap(fx.op(attachGroup, ANON, group.id, id));
    } else if (how === "default") {
      id = group.defaultDomainId;
    } else {
      id = unwrap(fx.op(claimOwnership, as("o"), group.id)).domainId;
      unwrap(fx.op(ops.releaseOwnership, as("o"), group.id));
    }
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(deleteDomain(fx.model, id))).toMatchObject({ errno: "EBUSY", reason: "domain-in-use", ids: { domainId: id } });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("a domain is deletable once nothing is attached (selftest: destroy after moving away)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const domain = fx.domain({ driver: "mock" });
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(errorOf(deleteDomain(fx.model, domain.id)).errno).toBe("EBUSY");
    unwrap(fx.op(ops.detachGroup, ANON, group.id, domain.id));
    expect(deleteDomain(fx.model, domain.id).ok).toBe(true);
    expect(errorOf(deleteDomain(fx.model, domain.id))).toMatchObject({ errno: "ENOENT", reason: "no-such-domain" });
  });

  it.each(["paging", "identity", "blocked"] as const)("a %s domain naming a unit of another driver → EINVAL driver-mismatch (hard: an argument error)", (type) => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const before = snapshot(fx.model);
    const error = errorOf(createDomain(fx.model, { type, driver: "amd-iommu", unitId: unit.id }));
    expect(error).toEqual({ errno: "EINVAL", reason: "driver-mismatch", detail: `unit ${unit.name} is intel-vtd, not amd-iommu`, ids: { unitId: unit.id } });
    expect(isSoft(error)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
  });

  it.each([
    ["neither driver nor unit", {}, "EINVAL", "invalid-argument"],
    ["a missing unit", { unitId: 42 }, "ENOENT", "no-such-unit"],
    ["a missing container", { driver: "mock", containerId: 42 }, "ENOENT", "no-such-container"],
  ] as const)("createDomain with %s → %s %s", (_name, spec, errno, reason) => {
    const fx = build();
    expect(errorOf(createDomain(fx.model, { type: "paging", ...spec }))).toMatchObject({ errno, reason });
    expect(fx.model.count("domain")).toBe(0);
  });

  const UNSUPPORTED: { name: string; driver: DriverName; onUnit: Partial<Parameters<Fixture["unit"]>[1]>; config: Partial<DomainConfig> }[] = [
    { name: "dirty tracking, arm-smmu driver", driver: "arm-smmu", onUnit: {}, config: { dirtyTracking: true } },
    { name: "dirty tracking, apple-dart driver", driver: "apple-dart", onUnit: {}, config: { dirtyTracking: true } },
    { name: "dirty tracking, virtio-iommu driver", driver: "virtio-iommu", onUnit: {}, config: { dirtyTracking: true } },
    { name: "dirty tracking, intel unit without it", driver: "intel-vtd", onUnit: { dirtyTracking: false }, config: { dirtyTracking: true } },
    { name: "dirty tracking, amd unit without it", driver: "amd-iommu", onUnit: { dirtyTracking: false }, config: { dirtyTracking: true } },
    { name: "dirty tracking, smmuv3 unit without HTTU", driver: "arm-smmu-v3", onUnit: { dirtyTracking: false }, config: { dirtyTracking: true } },
    { name: "nesting parent, arm-smmu driver", driver: "arm-smmu", onUnit: {}, config: { nestParent: true } },
    { name: "nesting parent, intel unit without nesting", driver: "intel-vtd", onUnit: { nesting: false }, config: { nestParent: true } },
  ];
  it.each(UNSUPPORTED)("$name → EOPNOTSUPP unsupported", ({ driver, onUnit, config }) => {
    const fx = build();
    const spec = { unitId: fx.unit(driver, onUnit).id };
    const before = snapshot(fx.model);
    const error = errorOf(createDomain(fx.model, { type: "paging", ...spec, config }));
    expect(error).toMatchObject({ errno: "EOPNOTSUPP", reason: "unsupported" });
    expect(snapshot(fx.model)).toBe(before);
  });

  it.each([
    ["dirty tracking, intel unit with it", "intel-vtd", { dirtyTracking: true }, { dirtyTracking: true }],
    ["dirty tracking, mock unit", "mock", {}, { dirtyTracking: true }],
    ["a nesting parent, smmuv3 unit", "arm-smmu-v3", {}, { nestParent: true }],
  ] as const)("%s is allowed", (_name, driver, caps, config) => {
    const fx = build();
    const unit = fx.unit(driver, caps);
    expect(unwrap(createDomain(fx.model, { type: "paging", unitId: unit.id, config })).config).toMatchObject(config);
  });

  it("an identity domain of arm-smmu asked for with dirty tracking: the static domain takes no configuration (EINVAL invalid-argument)", () => {
    const fx = build();
    expect(errorOf(createDomain(fx.model, { type: "identity", driver: "arm-smmu", config: { dirtyTracking: true } }))).toMatchObject({ errno: "EINVAL", reason: "invalid-argument" });
  });

  // IOMMU_HWPT_ALLOC always names the device it allocates for; without one the kernel cannot be asked.
  it.each([
    ["dirty tracking", "intel-vtd", { dirtyTracking: true }, "a dirty-tracking domain"],
    ["dirty tracking, a driver without it", "arm-smmu", { dirtyTracking: true }, "a dirty-tracking domain"],
    ["a nesting parent", "arm-smmu-v3", { nestParent: true }, "a nesting-parent domain"],
    ["both", "mock", { dirtyTracking: true, nestParent: true }, "a dirty-tracking domain"],
  ] as const)("%s without a unit → EINVAL invalid-argument, nothing allocated", (_name, driver, config, what) => {
    const fx = build();
    const before = snapshot(fx.model);
    expect(errorOf(createDomain(fx.model, { type: "paging", driver, config }))).toEqual({
      errno: "EINVAL", reason: "invalid-argument",
      detail: `${what} is allocated for a device (IOMMU_HWPT_ALLOC names a dev_id): name the unitId it is for`,
    });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("arm-smmu-v3: a domain created with a unitId is finalised there and takes an ASID (a nesting parent a VMID); EBUSY when the ASIDs run out, freeing gives one back", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3", { domainIds: 2 });
    const a = unwrap(createDomain(fx.model, { type: "paging", unitId: unit.id }));
    expect(a).toMatchObject({ unitId: unit.id, driver: "arm-smmu-v3", auto: false });
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(1);
    // A non-paging domain on the unit takes none.
    unwrap(createDomain(fx.model, { type: "identity", unitId: unit.id }));
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(1);
    // A nesting parent takes a VMID: the ASID space keeps its second ASID.
    unwrap(createDomain(fx.model, { type: "paging", unitId: unit.id, config: { nestParent: true } }));
    expect(fx.model.usage.nestParentsBoundTo(unit.id)).toBe(1);
    unwrap(createDomain(fx.model, { type: "paging", unitId: unit.id }));
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(3);
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(createDomain(fx.model, { type: "paging", unitId: unit.id }));
    expect(error).toEqual({ errno: "EBUSY", reason: "asids-exhausted", detail: `all 2 ASIDs ${unit.name} can use are taken (2 in use across every SMMUv3)` });
    expect(snapshot(fx.model)).toBe(before);
    unwrap(deleteDomain(fx.model, a.id));
    expect(createDomain(fx.model, { type: "paging", unitId: unit.id }).ok).toBe(true);
  });

  it("arm-smmu: a domain created with a unitId is shaped by the unit but not finalised: its context bank is taken at the first attach", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu", { domainIds: 1, addressWidth: 40 });
    fx.groupWith(unit.id); // its default domain holds the only context bank
    const domain = unwrap(createDomain(fx.model, { type: "paging", unitId: unit.id }));
    expect(domain).toMatchObject({ unitId: null, config: { addressWidth: 40 } });
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(0);
  });

  it("amd-iommu: every paging domain takes an ID from the driver's pool at allocation, with or without a unit; ENOMEM when it is used up", () => {
    const fx = build();
    fx.unit("amd-iommu", { domainIds: 3 }); // the identity domain holds one
    unwrap(createDomain(fx.model, { type: "paging", driver: "amd-iommu" }));
    unwrap(createDomain(fx.model, { type: "paging", driver: "amd-iommu" }));
    // Identity and blocked domains take none.
    unwrap(createDomain(fx.model, { type: "blocked", driver: "amd-iommu" }));
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(createDomain(fx.model, { type: "paging", driver: "amd-iommu" }))).toEqual({
      errno: "ENOMEM", reason: "domain-id-pool-exhausted", detail: "all 3 domain IDs of the amd-iommu pool are in use (one by the identity domain)",
    });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("apple-dart: a domain for a DART whose page exceeds the CPU page is refused at allocation, hard EINVAL page-too-large", () => {
    const fx = build();
    const unit = fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 4096 });
    const before = snapshot(fx.model);
    const error = errorOf(createDomain(fx.model, { type: "paging", unitId: unit.id }));
    expect(error).toEqual({
      errno: "EINVAL", reason: "page-too-large", detail: `${unit.name} page size 16384 exceeds the CPU page size 4096: it cannot back a paging domain`,
    });
    expect(isSoft(error)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
  });

  it("a paging domain created without a unit is not finalised", () => {
    const fx = build();
    expect(fx.domain({ driver: "arm-smmu-v3" }).unitId).toBeNull();
  });

  it("a domain's config defaults to the unit's shape, overridden by the spec", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd", { addressWidth: 57, pageSizes: [4096, 2097152] });
    expect(fx.domain({ unitId: unit.id, config: { enforceCacheCoherency: true } }).config).toEqual({
      addressWidth: 57, pageSizes: [4096, 2097152], enforceCacheCoherency: true, dirtyTracking: false, nestParent: false,
      coherentWalk: true, firstStage: true,
    });
  });

  // intel paging_domain_alloc: iommu_coherency from the unit; first stage
  // where the unit has it (first_level_by_default), second stage for dirty
  // tracking and nesting parents (intel_iommu_domain_alloc_paging_flags).
  it.each([
    ["a unit with coherent walks and first stage", {}, {}, { coherentWalk: true, firstStage: true }],
    ["a unit with non-coherent walks", { coherentWalk: false }, {}, { coherentWalk: false, firstStage: true }],
    ["a unit without first stage (legacy mode)", { firstStage: false }, {}, { coherentWalk: true, firstStage: false }],
    ["dirty tracking", { dirtyTracking: true }, { dirtyTracking: true }, { coherentWalk: true, firstStage: false }],
    ["a nesting parent", { nesting: true }, { nestParent: true }, { coherentWalk: true, firstStage: false }],
    ["an explicit first stage", {}, { firstStage: false }, { coherentWalk: true, firstStage: false }],
  ] as const)("VT-d page-table shape for %s", (_name, caps, config, shape) => {
    const fx = build();
    const unit = fx.unit("intel-vtd", caps);
    expect(fx.domain({ unitId: unit.id, config }).config).toMatchObject(shape);
  });
});

describe("the drivers' static identity and blocked domains", () => {
  it.each([
    ["another name", { name: "pt" }, "the static identity domain of intel-vtd is named intel-vtd-identity"],
    ["a configuration", { config: { dirtyTracking: true } }, "the static identity domain of intel-vtd has no configuration"],
    ["a container", { containerId: 1 }, "the static identity domain of intel-vtd belongs to no container"],
  ] as const)("a request with %s → EINVAL invalid-argument, nothing made", (_name, extra, detail) => {
    const fx = build();
    fx.container();
    const before = snapshot(fx.model);
    expect(errorOf(createDomain(fx.model, { type: "identity", driver: "intel-vtd", ...extra }))).toEqual({ errno: "EINVAL", reason: "invalid-argument", detail });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("a request naming the static domain's own name is answered with it", () => {
    const fx = build();
    const first = fx.domain({ type: "blocked", driver: "arm-smmu-v3" });
    expect(fx.domain({ type: "blocked", driver: "arm-smmu-v3", name: "arm-smmu-v3-blocked" })).toEqual(first);
  });

  it("one per driver and type: identity and blocked of each driver are distinct domains", () => {
    const fx = build();
    const ids = (["intel-vtd", "arm-smmu-v3"] as const).flatMap((driver) =>
      (["identity", "blocked"] as const).map((type) => fx.domain({ type, driver }).id));
    expect(new Set(ids).size).toBe(4);
  });

  it("is the driver's, not the client's: no creator, no quota used, also for a client at its quota", () => {
    const fx = build();
    const quotas = { objectsPerClient: 1 };
    unwrap(createContainer(fx.model, { name: "mine" }, as("vmm"), quotas));
    const domain = unwrap(createDomain(fx.model, { type: "identity", driver: "intel-vtd" }, as("vmm"), quotas));
    expect(domain.owner).toBeNull();
    expect(fx.model.ownedObjectCount("vmm")).toBe(1);
  });

  it("is never deleted (the kernel never frees a static domain): EBUSY domain-in-use", () => {
    const fx = build();
    const domain = fx.domain({ type: "identity", driver: "amd-iommu" });
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(deleteDomain(fx.model, domain.id))).toEqual({
      errno: "EBUSY", reason: "domain-in-use", detail: `domain ${domain.id} is the static identity domain of amd-iommu, which lives as long as its driver`,
      ids: { domainId: domain.id },
    });
    expect(snapshot(fx.model)).toBe(before);
  });
});

describe("containers and faults", () => {
  it("a container holding domains cannot be deleted (EBUSY container-in-use)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const ioas = fx.container();
    unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(unit.id).group.id));
    expect(errorOf(deleteContainer(fx.model, ioas.id))).toMatchObject({ errno: "EBUSY", reason: "container-in-use" });
    expect(deleteContainer(fx.model, fx.container().id).ok).toBe(true);
  });

  it.each([
    ["neither unit nor device", {}, "EINVAL", "invalid-argument"],
    ["both unit and device", { unitId: 1, deviceId: 1 }, "EINVAL", "invalid-argument"],
    ["a missing unit", { unitId: 9 }, "ENOENT", "no-such-unit"],
    ["a missing device", { deviceId: 9 }, "ENOENT", "no-such-device"],
  ] as const)("injectFault naming %s → %s", (_name, scope, errno, reason: Reason) => {
    const fx = build();
    const unit = fx.unit("mock");
    fx.groupWith(unit.id);
    expect(errorOf(injectFault(fx.model, { ...scope, errno: "ENOMEM", count: 1 }))).toMatchObject({ errno, reason });
    expect(fx.model.count("fault")).toBe(0);
  });
});

describe("groupCompatibility (dry run)", () => {
  function world() {
    const fx = build();
    const unit = fx.unit("mock");
    const { group, devices } = fx.groupWith(unit.id, [{}, { noDirty: true }]);
    const neighbour = fx.groupWith(unit.id).group;
    const plain = fx.domain({ driver: "mock" });
    const dirty = fx.domain({ unitId: unit.id, config: { dirtyTracking: true } });
    const vtd = fx.domain({ driver: "intel-vtd" });
    const smmu = fx.domain({ driver: "arm-smmu-v3" });
    fx.commit();
    return { fx, unit, group, devices, neighbour, plain, dirty, vtd, smmu };
  }

  it("reports a verdict per candidate and changes nothing", () => {
    const w = world();
    const before = snapshot(w.fx.model);
    const r = unwrap(groupCompatibility(w.fx.model, w.group.id, { limit: 100 }));
    expect(r.attachable).toBe(true);
    expect(r.next).toBeNull();
    // The neighbour's default domain is not a candidate.
    expect(r.verdicts.map((v) => v.domainId)).toEqual([w.group.defaultDomainId, w.plain.id, w.dirty.id, w.vtd.id, w.smmu.id]);
    expect(r.verdicts.map((v) => [v.domainId, v.compatible, v.current, v.errno, v.code, v.soft, v.reason])).toEqual([
      [w.group.defaultDomainId, true, true, null, 0, false, null],
      [w.plain.id, true, false, null, 0, false, null],
      [w.dirty.id, false, false, "EINVAL", -22, true, "dirty-tracking"],
      [w.vtd.id, false, false, "EINVAL", -22, true, "different-driver"],
      [w.smmu.id, false, false, "EINVAL", -22, true, "different-driver"],
    ]);
    expect(w.fx.model.hasChanges()).toBe(false);
    expect(snapshot(w.fx.model)).toBe(before);
  });

  it("reports an injected fault as the answer it would give without consuming it", () => {
    const w = world();
    const fault = w.fx.fault({ deviceId: w.devices[0]!.id, errno: "EIO", count: 1 });
    w.fx.commit();
    const r = unwrap(groupCompatibility(w.fx.model, w.group.id, { limit: 100 }));
    const plain = r.verdicts.find((v) => v.domainId === w.plain.id)!;
    expect(plain).toMatchObject({ compatible: false, errno: "ENODEV", code: -19, soft: false, reason: "injected-fault" });
    // The current domain needs no driver call and is not affected.
    expect(r.verdicts.find((v) => v.current)).toMatchObject({ compatible: true });
    expect(w.fx.model.get("fault", fault.id)).toEqual(fault);
    expect(w.fx.model.hasChanges()).toBe(false);
    // A real attach afterwards still hits it.
    expect(errorOf(attachGroup(w.fx.model, ANON, w.group.id, w.plain.id))).toMatchObject({ errno: "ENODEV", driverErrno: "EIO" });
  });

  it("does not finalise a binding driver's domain", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3");
    const group = fx.groupWith(unit.id).group;
    const domain = fx.domain({ driver: "arm-smmu-v3" });
    fx.commit();
    const r = unwrap(groupCompatibility(fx.model, group.id, { limit: 10 }));
    expect(r.verdicts.find((v) => v.domainId === domain.id)).toMatchObject({ compatible: true });
    expect(fx.domainNow(domain.id)?.unitId).toBeNull();
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(0);
    expect(fx.model.hasChanges()).toBe(false);
  });

  it("paginates with after / limit", () => {
    const w = world();
    const ids = [w.group.defaultDomainId, w.plain.id, w.dirty.id, w.vtd.id, w.smmu.id];
    const p1 = unwrap(groupCompatibility(w.fx.model, w.group.id, { limit: 2 }));
    expect(p1.verdicts.map((v) => v.domainId)).toEqual(ids.slice(0, 2));
    expect(p1.next).toBe(ids[1]);
    const p2 = unwrap(groupCompatibility(w.fx.model, w.group.id, { limit: 2, after: p1.next! }));
    expect(p2.verdicts.map((v) => v.domainId)).toEqual(ids.slice(2, 4));
    expect(p2.next).toBe(ids[3]);
    const p3 = unwrap(groupCompatibility(w.fx.model, w.group.id, { limit: 2, after: p2.next! }));
    expect(p3.verdicts.map((v) => v.domainId)).toEqual(ids.slice(4));
    expect(p3.next).toBeNull();
    // Exactly a page's worth left: no next page.
    const exact = unwrap(groupCompatibility(w.fx.model, w.group.id, { limit: 3, after: ids[1]! }));
    expect(exact.verdicts).toHaveLength(3);
    expect(exact.next).toBeNull();
  });

  it("limits the candidates to a container's domains", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    const inside = fx.domain({ driver: "mock", containerId: ioas.id });
    fx.domain({ driver: "mock" });
    const r = unwrap(groupCompatibility(fx.model, group.id, { limit: 10, containerId: ioas.id }));
    expect(r.verdicts.map((v) => v.domainId)).toEqual([inside.id]);
  });

  it("says not attachable while the group is on a paging domain; the current one is marked", () => {
    const w = world();
    unwrap(attachGroup(w.fx.model, ANON, w.group.id, w.plain.id));
    const r = unwrap(groupCompatibility(w.fx.model, w.group.id, { limit: 100 }));
    expect(r.attachable).toBe(false);
    expect(r.verdicts.filter((v) => v.current).map((v) => v.domainId)).toEqual([w.plain.id]);
  });

  it("a missing group → ENOENT", () => {
    const fx = build();
    expect(errorOf(groupCompatibility(fx.model, 3, { limit: 10 }))).toMatchObject({ errno: "ENOENT", reason: "no-such-group" });
  });
});
