// Section 3 of the contract: the per-driver rules, one table per registered
// driver (CASES is keyed by the registry's names, so a driver without a table
// does not compile). Each table pins the driver's defaults and allocation
// flags, whether it binds domains to an instance, and its attach outcomes to
// the errno, reason and detail text; each attach row is run through both
// public entry points (attachGroup and attachDevice), so the whole core path
// is exercised. Adding a driver: one more entry in CASES.
import { describe, expect, it } from "vitest";
import { ERRNO_VALUES } from "../../src/core/errno.js";
import { attachDevice, attachGroup } from "../../src/core/group-moves.js";
import * as objects from "../../src/core/objects.js";
import { isSoft } from "../../src/core/result.js";
import { DRIVERS, type DriverName } from "../../src/drivers/index.js";
import { ANON, as, build, errorOf, snapshot, unwrap } from "../core/fixtures.js";
import {
  attachAnother, differentInstance, hard, occupyDomainId, ok, single, soft, type DriverCase, type Seen,
} from "./cases.js";

const CASES: Record<DriverName, DriverCase> = {
  "intel-vtd": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
      dirtyTracking: false, nesting: false, domainIds: 65535, cpuPageSize: 4096,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: false,
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("intel-vtd").id, fx.domain({ type: "identity", driver: "intel-vtd" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("intel-vtd").id, fx.domain({ type: "blocked", driver: "intel-vtd" }).id)),
      ok("compatible paging domain (same width and sizes)", (fx) => single(fx, fx.unit("intel-vtd").id, fx.domain({ driver: "intel-vtd" }).id)),
      ok("force-snooping domain on a unit with snoop control", (fx) =>
        single(fx, fx.unit("intel-vtd", { snoopControl: true }).id, fx.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }).id)),
      ok("domain without force-snooping on a unit without snoop control", (fx) =>
        single(fx, fx.unit("intel-vtd", { snoopControl: false }).id, fx.domain({ driver: "intel-vtd" }).id)),
      ok("dirty-tracking domain on a unit with dirty tracking", (fx) =>
        single(fx, fx.unit("intel-vtd", { dirtyTracking: true }).id, fx.domain({ driver: "intel-vtd", config: { dirtyTracking: true } }).id)),
      ok("narrower domain than the unit", (fx) =>
        single(fx, fx.unit("intel-vtd", { addressWidth: 57 }).id, fx.domain({ driver: "intel-vtd", config: { addressWidth: 48 } }).id)),
      ok("nesting parent on a unit that nests", (fx) =>
        single(fx, fx.unit("intel-vtd", { nesting: true }).id, fx.domain({ driver: "intel-vtd", config: { nestParent: true } }).id)),
      ok("nesting parent on a unit that cannot nest (paging_domain_compatible has no nesting check)", (fx) =>
        single(fx, fx.unit("intel-vtd", { nesting: false }).id, fx.domain({ driver: "intel-vtd", config: { nestParent: true } }).id)),
      ok("a non-coherent domain on a non-coherent unit", (fx) => {
        const unit = fx.unit("intel-vtd", { coherentWalk: false });
        return single(fx, unit.id, fx.domain({ unitId: unit.id }).id);
      }),
      ok("a domain allocated for a unit without first stage is second stage, and fits a unit with it", (fx) =>
        single(fx, fx.unit("intel-vtd").id, fx.domain({ unitId: fx.unit("intel-vtd", { firstStage: false }).id }).id)),
      ok("a dirty-tracking domain is second stage, on a unit without first stage", (fx) =>
        single(fx, fx.unit("intel-vtd", { firstStage: false, dirtyTracking: true }).id, fx.domain({ driver: "intel-vtd", config: { dirtyTracking: true } }).id)),
      ok("all domain IDs in use but this domain already holds one on the unit", (fx) => {
        const unit = fx.unit("intel-vtd", { domainIds: 1 });
        const domain = fx.domain({ driver: "intel-vtd" });
        attachAnother(fx, unit.id, domain.id);
        return single(fx, unit.id, domain.id);
      }),
      ok("one domain ID left", (fx) => {
        const unit = fx.unit("intel-vtd", { domainIds: 2 });
        occupyDomainId(fx, unit.id, "intel-vtd");
        return single(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id);
      }),
      soft("snoop-control", ({ domain, unit }) => `domain ${domain.id} enforces cache coherency (force_snooping); ${unit.name} has no snoop control`, (fx) =>
        single(fx, fx.unit("intel-vtd", { snoopControl: false }).id, fx.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }).id)),
      soft("dirty-tracking", ({ domain, unit }) => `domain ${domain.id} tracks dirty pages; ${unit.name} has no second-stage dirty tracking`, (fx) =>
        single(fx, fx.unit("intel-vtd", { dirtyTracking: false }).id, fx.domain({ driver: "intel-vtd", config: { dirtyTracking: true } }).id)),
      soft("address-width", ({ domain, unit }) => `domain ${domain.id} is 48-bit; ${unit.name} translates 39 bits`, (fx) =>
        single(fx, fx.unit("intel-vtd", { addressWidth: 39 }).id, fx.domain({ driver: "intel-vtd", config: { addressWidth: 48 } }).id)),
      soft("page-size", ({ domain, unit }) => `domain ${domain.id} superpage sizes differ from ${unit.name}'s`, (fx) =>
        single(fx, fx.unit("intel-vtd", { pageSizes: [4096, 2097152] }).id, fx.domain({ driver: "intel-vtd", config: { pageSizes: [4096, 2097152, 1073741824] } }).id)),
      soft("page-size", ({ domain, unit }) => `domain ${domain.id} superpage sizes differ from ${unit.name}'s`, (fx) =>
        single(fx, fx.unit("intel-vtd").id, fx.domain({ driver: "intel-vtd", config: { pageSizes: [4096, 2097152] } }).id),
      "page-size (the domain lacks a size of the unit)"),
      soft("iommu-coherency", ({ domain, unit }) => `domain ${domain.id} page table is built for coherent walks; ${unit.name} walks are non-coherent`, (fx) =>
        single(fx, fx.unit("intel-vtd", { coherentWalk: false }).id, fx.domain({ unitId: fx.unit("intel-vtd", { coherentWalk: true }).id }).id),
      "iommu-coherency (paging_domain_compatible: a domain allocated for a coherent unit, on a non-coherent one)"),
      soft("iommu-coherency", ({ domain, unit }) => `domain ${domain.id} page table is built for non-coherent walks; ${unit.name} walks are coherent`, (fx) =>
        single(fx, fx.unit("intel-vtd").id, fx.domain({ unitId: fx.unit("intel-vtd", { coherentWalk: false }).id }).id),
      "iommu-coherency (the other way round: the check is an inequality)"),
      soft("first-stage", ({ domain, unit }) => `domain ${domain.id} is a first-stage page table; ${unit.name} has no first-stage translation`, (fx) =>
        single(fx, fx.unit("intel-vtd", { firstStage: false }).id, fx.domain({ unitId: fx.unit("intel-vtd").id }).id),
      "first-stage (paging_domain_compatible: use_first_level on a unit without scalable-mode FLTS)"),
      hard("EINVAL", "bypass-unsupported", ({ unit, device }) => `${unit.name} has no pass-through translation; ${device.name} cannot use the identity domain`, (fx) =>
        single(fx, fx.unit("intel-vtd", { bypass: false }).id, fx.domain({ type: "identity", driver: "intel-vtd" }).id),
      "bypass-unsupported (identity on a unit without ECAP.PT: device_def_domain_type answers DMA)"),
      hard("ENOSPC", "domain-ids-exhausted", ({ unit }) => `all 1 domain IDs of ${unit.name} are in use`, (fx) => {
        const unit = fx.unit("intel-vtd", { domainIds: 1 });
        occupyDomainId(fx, unit.id, "intel-vtd");
        return single(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id);
      }),
    ],
  },
  "arm-smmu-v3": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
      dirtyTracking: false, nesting: true, domainIds: 65536, cpuPageSize: 4096,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: true,
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ type: "identity", driver: "arm-smmu-v3" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ type: "blocked", driver: "arm-smmu-v3" }).id)),
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
      ok("stage-1 domain and a device with PASIDs", (fx) =>
        single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3" }).id, { pasid: true })),
      ok("dirty-tracking domain on an SMMU with HTTU", (fx) =>
        single(fx, fx.unit("arm-smmu-v3", { dirtyTracking: true }).id, fx.domain({ driver: "arm-smmu-v3", config: { dirtyTracking: true } }).id)),
      ok("one ASID left", (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 2 });
        fx.domain({ unitId: unit.id });
        return single(fx, unit.id, fx.domain({ driver: "arm-smmu-v3" }).id);
      }),
      soft("different-instance", differentInstance, (fx) => {
        const a = fx.unit("arm-smmu-v3");
        const b = fx.unit("arm-smmu-v3");
        return single(fx, b.id, fx.domain({ unitId: a.id }).id);
      }),
      soft("cache-coherency", ({ domain, device }) => `domain ${domain.id} enforces cache coherency; ${device.name} lacks CANWBS`, (fx) =>
        single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } }).id, { canwbs: false })),
      soft("dirty-tracking", ({ domain, unit }) => `domain ${domain.id} tracks dirty pages; ${unit.name} has no HTTU dirty tracking`, (fx) =>
        single(fx, fx.unit("arm-smmu-v3", { dirtyTracking: false }).id, fx.domain({ driver: "arm-smmu-v3", config: { dirtyTracking: true } }).id)),
      hard("EBUSY", "pasid-in-use", ({ device }) => `${device.name} has PASIDs in use; a stage-2 domain cannot replace its CD table`, (fx) =>
        single(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { nestParent: true } }).id, { pasid: true })),
      hard("ENOSPC", "asids-exhausted", ({ unit }) => `all 1 ASIDs of ${unit.name} are in use`, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
        fx.domain({ unitId: unit.id }); // finalised at allocation: holds the only ASID
        return single(fx, unit.id, fx.domain({ driver: "arm-smmu-v3" }).id);
      }),
      hard("ENOSPC", "asids-exhausted", ({ unit }) => `all 1 VMIDs of ${unit.name} are in use`, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
        fx.domain({ unitId: unit.id });
        return single(fx, unit.id, fx.domain({ driver: "arm-smmu-v3", config: { nestParent: true } }).id);
      }, "asids-exhausted (a nesting parent's VMID)"),
    ],
  },
  "arm-smmu": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 65536, 2097152, 33554432, 1073741824], snoopControl: false,
      dirtyTracking: false, nesting: false, domainIds: 128, cpuPageSize: 4096,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: false, nestParent: false },
    binds: true,
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("arm-smmu").id, fx.domain({ type: "identity", driver: "arm-smmu" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("arm-smmu").id, fx.domain({ type: "blocked", driver: "arm-smmu" }).id)),
      ok("unbound domain takes a context bank", (fx) =>
        single(fx, fx.unit("arm-smmu").id, fx.domain({ driver: "arm-smmu" }).id)),
      ok("one context bank left", (fx) => {
        const unit = fx.unit("arm-smmu", { domainIds: 2 });
        fx.domain({ unitId: unit.id });
        return single(fx, unit.id, fx.domain({ driver: "arm-smmu" }).id);
      }),
      soft("different-instance", differentInstance, (fx) => {
        const a = fx.unit("arm-smmu");
        const b = fx.unit("arm-smmu");
        return single(fx, b.id, fx.domain({ unitId: a.id }).id);
      }),
      hard("ENOSPC", "context-banks-exhausted", ({ unit }) => `all 1 context banks of ${unit.name} are in use`, (fx) => {
        const unit = fx.unit("arm-smmu", { domainIds: 1 });
        fx.domain({ unitId: unit.id });
        return single(fx, unit.id, fx.domain({ driver: "arm-smmu" }).id);
      }),
    ],
  },
  "amd-iommu": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
      dirtyTracking: true, nesting: false, domainIds: 65535, cpuPageSize: 4096,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: false,
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("amd-iommu").id, fx.domain({ type: "identity", driver: "amd-iommu" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("amd-iommu").id, fx.domain({ type: "blocked", driver: "amd-iommu" }).id)),
      ok("dirty-tracking domain on a unit with dirty tracking", (fx) =>
        single(fx, fx.unit("amd-iommu", { dirtyTracking: true }).id, fx.domain({ driver: "amd-iommu", config: { dirtyTracking: true } }).id)),
      ok("domain without dirty tracking on a unit without it", (fx) =>
        single(fx, fx.unit("amd-iommu", { dirtyTracking: false }).id, fx.domain({ driver: "amd-iommu" }).id)),
      ok("all domain IDs in use but this domain already holds one on the unit", (fx) => {
        const unit = fx.unit("amd-iommu", { domainIds: 1 });
        const domain = fx.domain({ driver: "amd-iommu" });
        attachAnother(fx, unit.id, domain.id);
        return single(fx, unit.id, domain.id);
      }),
      ok("one domain ID left", (fx) => {
        const unit = fx.unit("amd-iommu", { domainIds: 2 });
        occupyDomainId(fx, unit.id, "amd-iommu");
        return single(fx, unit.id, fx.domain({ driver: "amd-iommu" }).id);
      }),
      soft("dirty-tracking", ({ domain, unit }) => `domain ${domain.id} tracks dirty pages; ${unit.name} has no dirty tracking`, (fx) =>
        single(fx, fx.unit("amd-iommu", { dirtyTracking: false }).id, fx.domain({ driver: "amd-iommu", config: { dirtyTracking: true } }).id)),
      hard("ENOSPC", "domain-ids-exhausted", ({ unit }) => `all 1 domain IDs of ${unit.name} are in use`, (fx) => {
        const unit = fx.unit("amd-iommu", { domainIds: 1 });
        occupyDomainId(fx, unit.id, "amd-iommu");
        return single(fx, unit.id, fx.domain({ driver: "amd-iommu" }).id);
      }),
    ],
  },
  "apple-dart": {
    defaults: {
      addressWidth: 36, pageSizes: [16384], snoopControl: false,
      dirtyTracking: false, nesting: false, domainIds: 16, cpuPageSize: 16384,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: false, nestParent: false },
    binds: true,
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("apple-dart").id, fx.domain({ type: "identity", driver: "apple-dart" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("apple-dart").id, fx.domain({ type: "blocked", driver: "apple-dart" }).id)),
      ok("DART page size equal to the CPU page size", (fx) =>
        single(fx, fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 16384 }).id, fx.domain({ driver: "apple-dart" }).id)),
      ok("DART page size smaller than the CPU page size", (fx) =>
        single(fx, fx.unit("apple-dart", { pageSizes: [4096], cpuPageSize: 16384 }).id, fx.domain({ driver: "apple-dart" }).id)),
      ok("the DART's smallest page size is the one compared", (fx) =>
        single(fx, fx.unit("apple-dart", { pageSizes: [16384, 65536], cpuPageSize: 16384 }).id, fx.domain({ driver: "apple-dart" }).id)),
      soft("different-instance", differentInstance, (fx) => {
        const a = fx.unit("apple-dart");
        const b = fx.unit("apple-dart");
        return single(fx, b.id, fx.domain({ unitId: a.id }).id);
      }),
      soft("page-size", ({ domain, unit }) => `${unit.name} page size 16384 exceeds the CPU page size 4096 (domain ${domain.id})`, (fx) =>
        single(fx, fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 4096 }).id, fx.domain({ driver: "apple-dart" }).id)),
      ok("the static blocked domain on a DART whose page exceeds the CPU page (no force-bypass refusal since v6.7)", (fx) =>
        single(fx, fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 4096 }).id, fx.domain({ type: "blocked", driver: "apple-dart" }).id)),
      hard("EINVAL", "bypass-unsupported", ({ unit, device }) => `${unit.name} has no bypass support; ${device.name} cannot use the identity domain`, (fx) =>
        single(fx, fx.unit("apple-dart", { bypass: false }).id, fx.domain({ type: "identity", driver: "apple-dart" }).id),
      "bypass-unsupported (apple_dart_attach_dev_identity: !supports_bypass)"),
    ],
  },
  "virtio-iommu": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: false,
      dirtyTracking: false, nesting: false, domainIds: 4096, cpuPageSize: 4096,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: false, nestParent: false },
    binds: true,
    staticDomains: { identity: true, blocked: false },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("virtio-iommu").id, fx.domain({ type: "identity", driver: "virtio-iommu" }).id)),
      ok("unbound domain is finalised on the endpoint's viommu (granule equal to the CPU page)", (fx) =>
        single(fx, fx.unit("virtio-iommu").id, fx.domain({ driver: "virtio-iommu" }).id)),
      ok("granule smaller than the CPU page", (fx) =>
        single(fx, fx.unit("virtio-iommu", { pageSizes: [4096], cpuPageSize: 16384 }).id, fx.domain({ driver: "virtio-iommu" }).id)),
      ok("the smallest page size is the granule", (fx) =>
        single(fx, fx.unit("virtio-iommu", { pageSizes: [4096, 65536], cpuPageSize: 4096 }).id, fx.domain({ driver: "virtio-iommu" }).id)),
      soft("different-instance", differentInstance, (fx) => {
        const a = fx.unit("virtio-iommu");
        const b = fx.unit("virtio-iommu");
        return single(fx, b.id, fx.domain({ unitId: a.id }).id);
      }),
      hard("ENODEV", "granule-too-large", ({ domain, unit }) => `${unit.name} granule 65536 exceeds the CPU page size 4096 (domain ${domain.id})`, (fx) =>
        single(fx, fx.unit("virtio-iommu", { pageSizes: [65536], cpuPageSize: 4096 }).id, fx.domain({ driver: "virtio-iommu" }).id)),
    ],
  },
  mock: {
    defaults: {
      addressWidth: 64, pageSizes: [4096], snoopControl: true,
      dirtyTracking: true, nesting: true, domainIds: 1048576, cpuPageSize: 4096,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: false,
    staticDomains: { identity: false, blocked: true },
    attach: [
      ok("the static blocked domain", (fx) => single(fx, fx.unit("mock").id, fx.domain({ type: "blocked", driver: "mock" }).id)),
      ok("normal device on a dirty-tracking domain", (fx) =>
        single(fx, fx.unit("mock").id, fx.domain({ driver: "mock", config: { dirtyTracking: true } }).id)),
      ok("no-dirty device on a domain without dirty tracking", (fx) =>
        single(fx, fx.unit("mock").id, fx.domain({ driver: "mock" }).id, { noDirty: true })),
      soft("dirty-tracking", ({ domain, device }) => `domain ${domain.id} tracks dirty pages; ${device.name} was created no-dirty`, (fx) =>
        single(fx, fx.unit("mock").id, fx.domain({ driver: "mock", config: { dirtyTracking: true } }).id, { noDirty: true })),
    ],
  },
};

const NAMES = Object.keys(CASES) as DriverName[];
const VIAS = ["attachGroup", "attachDevice"] as const;

it("every registered driver has a table, and every table a registered driver", () => {
  expect(NAMES.sort()).toEqual(Object.keys(DRIVERS).sort());
});

describe.each(NAMES)("%s", (driver) => {
  const spec = CASES[driver];

  it("is registered under its own name, with the pinned defaults, allocation flags and binding", () => {
    const registered = DRIVERS[driver];
    expect(registered.name).toBe(driver);
    expect(registered.defaults).toEqual(spec.defaults);
    expect(registered.allocFlags).toEqual(spec.allocFlags);
    expect(registered.finalise !== undefined).toBe(spec.binds);
    expect({ identity: registered.identityDomain !== undefined, blocked: registered.blockedDomain !== undefined }).toEqual(spec.staticDomains);
  });

  // __iommu_domain_alloc: ops->identity_domain / ops->blocked_domain for every
  // request of the type, -EOPNOTSUPP where the driver has none.
  describe.each(["identity", "blocked"] as const)("its static %s domain", (type) => {
    if (spec.staticDomains[type]) {
      it("is one domain, made by the first request and answered to every later one, whatever unit is named", () => {
        const fx = build();
        const unit = fx.unit(driver);
        const first = unwrap(objects.createDomain(fx.model, { type, driver }));
        expect(first).toMatchObject({ type, driver, name: `${driver}-${type}`, unitId: null, containerId: null, owner: null, auto: false });
        fx.commit();
        const before = snapshot(fx.model);
        expect(unwrap(objects.createDomain(fx.model, { type, unitId: unit.id }, as("vmm")))).toEqual(first);
        expect(snapshot(fx.model)).toBe(before);
      });
    } else {
      it("does not exist: EOPNOTSUPP unsupported, nothing made", () => {
        const fx = build();
        const before = snapshot(fx.model);
        expect(errorOf(objects.createDomain(fx.model, { type, driver }))).toEqual({ errno: "EOPNOTSUPP", reason: "unsupported", detail: `${driver} has no static ${type} domain` });
        expect(snapshot(fx.model)).toBe(before);
      });
    }
  });

  it("gives a unit defined without capabilities its defaults, and each given field wins", () => {
    const fx = build();
    expect(fx.unit(driver).capabilities).toEqual(spec.defaults);
    expect(fx.unit(driver, { domainIds: 3 }).capabilities).toEqual({ ...spec.defaults, domainIds: 3 });
  });

  it("has a positive row and at least one failing row", () => {
    expect(spec.attach.some((r) => r.errno === null)).toBe(true);
    expect(spec.attach.some((r) => r.errno !== null)).toBe(true);
  });

  describe.each(VIAS)("via %s", (via) => {
    it.each(spec.attach)("$rule → $errno", (row) => {
      const fx = build();
      const s = row.setup(fx);
      fx.commit();
      const before = snapshot(fx.model);
      const oldDomainId = fx.groupNow(s.groupId).domainId;
      expect(oldDomainId).not.toBe(s.domainId);
      const domain = fx.domainNow(s.domainId)!;
      const seen: Seen = {
        unit: fx.model.get("unit", s.unitId)!, device: fx.model.get("device", s.deviceId)!, domain,
        boundTo: domain.unitId === null ? null : fx.model.get("unit", domain.unitId)!,
      };

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
        // A binding driver leaves the domain bound to this unit; another leaves the binding as it was.
        // (a static domain is bound to nothing).
        expect(fx.domainNow(s.domainId)?.unitId).toBe(spec.binds && domain.type === "paging" ? s.unitId : domain.unitId);
        expect(event).toMatchObject({ errno: null, code: 0, reason: null, groupId: s.groupId, domainId: s.domainId });
        return;
      }
      const error = errorOf(r);
      const detail = row.detail!(seen);
      expect(error).toMatchObject({ errno: row.errno, reason: row.reason, detail });
      expect(isSoft(error)).toBe(row.soft);
      expect(error.driverErrno).toBeUndefined();
      expect(error.ids?.deviceId).toBe(s.deviceId);
      // Nothing changed: not the group, not the domain's binding, not a counter.
      expect(fx.groupNow(s.groupId).domainId).toBe(oldDomainId);
      expect(snapshot(fx.model)).toBe(before);
      expect(event).toMatchObject({
        errno: row.errno, code: -ERRNO_VALUES[row.errno], reason: row.reason, detail, groupId: s.groupId, domainId: s.domainId,
      });
    });
  });

  // The allocation flags are data the core checks (core/domain-alloc.ts): the
  // expectations below follow the table's flags, not the driver's.
  describe.each([
    { flag: "dirtyTracking", config: { dirtyTracking: true }, capability: "dirtyTracking", refused: "dirty tracking is not supported" },
    { flag: "nestParent", config: { nestParent: true }, capability: "nesting", refused: "nesting parent domains are not supported" },
  ] as const)("a paging domain asking for $flag", ({ flag, config, capability, refused }) => {
    const supported = spec.allocFlags[flag];

    it(supported ? "is allocated without a unit" : "is refused without a unit: EOPNOTSUPP", () => {
      const fx = build();
      const before = snapshot(fx.model);
      const r = objects.createDomain(fx.model, { type: "paging", driver, config });
      if (supported) {
        expect(r.ok).toBe(true);
        return;
      }
      expect(errorOf(r)).toEqual({ errno: "EOPNOTSUPP", reason: "unsupported", detail: `${refused} by this driver` });
      expect(snapshot(fx.model)).toBe(before);
    });

    it.each([true, false])(`for a unit whose ${capability} is %s`, (has) => {
      const fx = build();
      const unit = fx.unit(driver, { [capability]: has });
      const before = snapshot(fx.model);
      const r = objects.createDomain(fx.model, { type: "paging", unitId: unit.id, config });
      if (supported && has) {
        expect(r.ok).toBe(true);
        return;
      }
      expect(errorOf(r)).toEqual({ errno: "EOPNOTSUPP", reason: "unsupported", detail: `${refused} by unit ${unit.name}` });
      expect(snapshot(fx.model)).toBe(before);
    });
  });
});

describe("binding drivers: finalisation", () => {
  it.each(NAMES.filter((n) => CASES[n].binds))(
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

  it.each(NAMES.filter((n) => !CASES[n].binds))("%s: a domain is not bound; groups on two units share it", (driver) => {
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
