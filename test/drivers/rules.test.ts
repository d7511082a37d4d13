// Section 3 of the contract: the per-driver rules, one table per registered
// driver (CASES is keyed by the registry's names, so a driver without a table
// does not compile). Each table pins the driver's defaults and allocation
// flags, whether and when it binds domains to an instance, its attach
// outcomes to the errno, reason and detail text (each attach row is run
// through both public entry points, attachGroup and attachDevice, so the
// whole core path is exercised), what allocating a domain takes or refuses,
// and what a group's first device needs for its default domain. Adding a
// driver: one more entry in CASES.
import { describe, expect, it } from "vitest";
import { deviceIommuCapable, domainCanEnforceCoherency } from "../../src/core/capable.js";
import { IOMMU_CAPS } from "../../src/core/driver.js";
import type { DeviceFlags, Domain } from "../../src/core/entities.js";
import { ERRNO_VALUES, type ErrnoName } from "../../src/core/errno.js";
import { attachDevice, attachGroup, claimOwnership, detachGroup } from "../../src/core/group-moves.js";
import { attachPasid } from "../../src/core/pasid.js";
import type { Reason } from "../../src/core/reasons.js";
import * as objects from "../../src/core/objects.js";
import { isSoft } from "../../src/core/result.js";
import { DRIVERS, type DriverName } from "../../src/drivers/index.js";
import { ANON, as, build, errorOf, snapshot, unwrap, type Fixture } from "../core/fixtures.js";
import {
  allocated, answers, attachAnother, differentInstance, hard, occupyDomainId, ok, refused, single, singleWithPasid, soft,
  type DriverCase, type Seen, type Setup,
} from "./cases.js";

const CASES: Record<DriverName, DriverCase> = {
  "intel-vtd": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
      dirtyTracking: false, nesting: false, domainIds: 65535, cpuPageSize: 4096, isolatedMsi: true,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: false,
    // intel_iommu_capable; intel_iommu_enforce_cache_coherency (domain_support_force_snooping).
    capable: [
      { unit: { snoopControl: true, dirtyTracking: true }, device: {}, answers: answers(true, true, true) },
      { unit: { snoopControl: true, dirtyTracking: false }, device: { canwbs: true }, answers: answers(true, true, false) },
      { unit: { snoopControl: false, dirtyTracking: false }, device: {}, answers: answers(true, false, false) },
    ],
    enforceCoherency: [
      { rule: "nothing attached", enforcing: false, attached: [], enforced: true },
      { rule: "every unit it serves has snoop control", enforcing: false, attached: [{ unit: { snoopControl: true }, device: {} }, { unit: { snoopControl: true }, device: {} }], enforced: true },
      { rule: "a unit it serves lacks snoop control", enforcing: false, attached: [{ unit: { snoopControl: true }, device: {} }, { unit: { snoopControl: false }, device: {} }], enforced: false },
      { rule: "already force-snooping", enforcing: true, attached: [{ unit: { snoopControl: false }, device: {} }], enforced: true },
    ],
    finaliseAt: null,
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("intel-vtd").id, fx.domain({ type: "identity", driver: "intel-vtd" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("intel-vtd").id, fx.domain({ type: "blocked", driver: "intel-vtd" }).id)),
      ok("compatible paging domain (same width and sizes)", (fx) => single(fx, fx.unit("intel-vtd").id, fx.domain({ driver: "intel-vtd" }).id)),
      ok("force-snooping domain on a unit with snoop control", (fx) =>
        single(fx, fx.unit("intel-vtd", { snoopControl: true }).id, fx.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }).id)),
      ok("domain without force-snooping on a unit without snoop control", (fx) =>
        single(fx, fx.unit("intel-vtd", { snoopControl: false }).id, fx.domain({ driver: "intel-vtd" }).id)),
      ok("dirty-tracking domain on a unit with dirty tracking", (fx) => {
        const unit = fx.unit("intel-vtd", { dirtyTracking: true });
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id);
      }),
      ok("narrower domain than the unit", (fx) =>
        single(fx, fx.unit("intel-vtd", { addressWidth: 57 }).id, fx.domain({ driver: "intel-vtd", config: { addressWidth: 48 } }).id)),
      ok("nesting parent on a unit that nests", (fx) => {
        const unit = fx.unit("intel-vtd", { nesting: true });
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { nestParent: true } }).id);
      }),
      ok("nesting parent on a unit that cannot nest (paging_domain_compatible has no nesting check)", (fx) =>
        single(fx, fx.unit("intel-vtd", { nesting: false }).id, fx.domain({ unitId: fx.unit("intel-vtd", { nesting: true }).id, config: { nestParent: true } }).id)),
      ok("a non-coherent domain on a non-coherent unit", (fx) => {
        const unit = fx.unit("intel-vtd", { coherentWalk: false });
        return single(fx, unit.id, fx.domain({ unitId: unit.id }).id);
      }),
      ok("a domain allocated for a unit without first stage is second stage, and fits a unit with it", (fx) =>
        single(fx, fx.unit("intel-vtd").id, fx.domain({ unitId: fx.unit("intel-vtd", { firstStage: false }).id }).id)),
      ok("a dirty-tracking domain is second stage, on a unit without first stage", (fx) =>
        {
        const unit = fx.unit("intel-vtd", { firstStage: false, dirtyTracking: true });
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id);
      }),
      ok("all domain IDs in use but this domain already holds one on the unit", (fx) => {
        const unit = fx.unit("intel-vtd", { domainIds: 2 });
        const domain = fx.domain({ driver: "intel-vtd" });
        attachAnother(fx, unit.id, domain.id);
        return single(fx, unit.id, domain.id); // its default domain takes the last ID
      }),
      ok("all domain IDs in use, but the device's default domain gives its ID back on the way (device_block_translation)", (fx) => {
        const unit = fx.unit("intel-vtd", { domainIds: 2 });
        occupyDomainId(fx, unit.id, "intel-vtd");
        return single(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id);
      }),
      {
        ...ok("one domain ID left for an owned group on its blocking domain (which holds none)", (fx) => {
          const unit = fx.unit("intel-vtd", { domainIds: 2 });
          const s = claimed(fx, single(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id), "vfio");
          occupyDomainId(fx, unit.id, "intel-vtd");
          return s;
        }),
        owner: "vfio",
      },
      soft("snoop-control", ({ domain, unit }) => `domain ${domain.id} enforces cache coherency (force_snooping); ${unit.name} has no snoop control`, (fx) =>
        single(fx, fx.unit("intel-vtd", { snoopControl: false }).id, fx.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }).id)),
      soft("dirty-tracking", ({ domain, unit }) => `domain ${domain.id} tracks dirty pages; ${unit.name} has no second-stage dirty tracking`, (fx) => {
        const tracking = fx.unit("intel-vtd", { dirtyTracking: true });
        return single(fx, fx.unit("intel-vtd", { dirtyTracking: false }).id, fx.domain({ unitId: tracking.id, config: { dirtyTracking: true } }).id);
      }),
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
      {
        ...hard("ENOSPC", "domain-ids-exhausted", ({ unit }) => `all 2 domain IDs of ${unit.name} are in use`, (fx) => {
          const unit = fx.unit("intel-vtd", { domainIds: 2 });
          const s = claimed(fx, single(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id), "vfio");
          occupyDomainId(fx, unit.id, "intel-vtd");
          occupyDomainId(fx, unit.id, "intel-vtd");
          return s;
        }, "domain-ids-exhausted (an owned group on its blocking domain gives no ID back)"),
        owner: "vfio",
      },
    ],
    allocate: [
      allocated("a domain allocated for a unit whose domain IDs are all in use: IDs are taken at attach", false, (fx) => {
        const unit = fx.unit("intel-vtd", { domainIds: 1 });
        fx.groupWith(unit.id);
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id };
      }),
    ],
    firstDevice: {
      rule: "the default domain's attach needs a domain ID (domain_attach_iommu)",
      setup: (fx) => {
        const unit = fx.unit("intel-vtd", { domainIds: 1 });
        const other = fx.groupWith(unit.id);
        return { unitId: unit.id, groupId: fx.group(unit.id).id, free: () => unwrap(objects.deleteDevice(fx.model, other.devices[0]!.id)) };
      },
      errno: "ENOSPC", reason: "domain-ids-exhausted", detail: (unit) => `all 1 domain IDs of ${unit.name} are in use`,
    },
  },
  "arm-smmu-v3": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
      dirtyTracking: false, nesting: true, domainIds: 65536, cpuPageSize: 4096, isolatedMsi: true,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: true,
    // arm_smmu_capable (arm_smmu_master_canwbs, arm_smmu_dbm_capable); arm_smmu_enforce_cache_coherency.
    capable: [
      { unit: { snoopControl: true, dirtyTracking: true }, device: { canwbs: true }, answers: answers(true, true, true) },
      { unit: { snoopControl: true, dirtyTracking: false }, device: {}, answers: answers(true, false, false) },
      { unit: { snoopControl: false, dirtyTracking: true }, device: { canwbs: true }, answers: answers(false, true, false) },
    ],
    enforceCoherency: [
      { rule: "nothing attached", enforcing: false, attached: [], enforced: true },
      { rule: "every attached device is CANWBS", enforcing: false, attached: [{ unit: {}, device: { canwbs: true } }, { unit: {}, device: { canwbs: true } }], enforced: true },
      { rule: "an attached device lacks CANWBS", enforcing: false, attached: [{ unit: {}, device: { canwbs: true } }, { unit: {}, device: { canwbs: false } }], enforced: false },
    ],
    finaliseAt: "allocation",
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
      ok("nesting parent and a device without PASIDs", (fx) => {
        const unit = fx.unit("arm-smmu-v3");
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { nestParent: true } }).id);
      }),
      ok("stage-1 domain and a device with PASIDs", (fx) => {
        const unit = fx.unit("arm-smmu-v3");
        return singleWithPasid(fx, unit.id, fx.domain({ driver: "arm-smmu-v3" }).id, fx.domain({ unitId: unit.id }).id);
      }),
      ok("nesting parent and a device whose PASID is on the blocked domain (no CD in use)", (fx) => {
        const unit = fx.unit("arm-smmu-v3");
        return singleWithPasid(fx, unit.id, fx.domain({ unitId: unit.id, config: { nestParent: true } }).id,
          fx.domain({ type: "blocked", driver: "arm-smmu-v3" }).id);
      }),
      ok("dirty-tracking domain on an SMMU with HTTU", (fx) => {
        const unit = fx.unit("arm-smmu-v3", { dirtyTracking: true });
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id);
      }),
      ok("one ASID left (a domain finalised at allocation and the group's default domain hold the others)", (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 3 });
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
      hard("EBUSY", "pasid-in-use", ({ device }) => `${device.name} has PASIDs in use; a stage-2 domain cannot replace its CD table`, (fx) => {
        const unit = fx.unit("arm-smmu-v3");
        return singleWithPasid(fx, unit.id, fx.domain({ unitId: unit.id, config: { nestParent: true } }).id, fx.domain({ unitId: unit.id }).id);
      }),
      hard("EBUSY", "asids-exhausted", ({ unit }) => `all 1 ASIDs ${unit.name} can use are taken (1 in use across every SMMUv3)`, (fx) =>
        single(fx, fx.unit("arm-smmu-v3", { domainIds: 1 }).id, fx.domain({ driver: "arm-smmu-v3" }).id),
      "asids-exhausted (the group's default domain holds the only ASID; finalised at first attach)"),
      hard("EBUSY", "asids-exhausted", ({ unit }) => `all 2 ASIDs ${unit.name} can use are taken (2 in use across every SMMUv3)`, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 2 });
        fx.domain({ unitId: fx.unit("arm-smmu-v3").id }); // an ASID taken for another SMMU
        return single(fx, unit.id, fx.domain({ driver: "arm-smmu-v3" }).id);
      }, "asids-exhausted (one ASID space for every SMMU: arm_smmu_asid_xa)"),
    ],
    allocate: [
      allocated("a domain allocated for a unit is finalised there at once, taking an ASID", true, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 2 });
        fx.groupWith(unit.id);
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id };
      }),
      allocated("a domain allocated without a unit takes nothing until its first attach", false, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
        fx.groupWith(unit.id);
        return { spec: { type: "paging", driver: "arm-smmu-v3" }, unitId: null };
      }),
      refused("EBUSY", "asids-exhausted", (unit) => `all 2 ASIDs ${unit!.name} can use are taken (2 in use across every SMMUv3)`, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 2 });
        fx.groupWith(unit.id);
        const first = fx.domain({ unitId: unit.id });
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id, free: () => unwrap(objects.deleteDomain(fx.model, first.id)) };
      }, "asids-exhausted (arm_smmu_domain_finalise_s1: xa_alloc → -EBUSY)"),
      refused("ENOSPC", "vmids-exhausted", (unit) => `all 1 VMIDs of ${unit!.name} are in use`, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
        const first = fx.domain({ unitId: unit.id, config: { nestParent: true } });
        return { spec: { type: "paging", unitId: unit.id, config: { nestParent: true } }, unitId: unit.id, free: () => unwrap(objects.deleteDomain(fx.model, first.id)) };
      }, "vmids-exhausted (arm_smmu_domain_finalise_s2: the SMMU's own ida → -ENOSPC)"),
      allocated("a nesting parent takes a VMID, not an ASID: a full ASID space does not stop it", true, (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
        fx.groupWith(unit.id);
        return { spec: { type: "paging", unitId: unit.id, config: { nestParent: true } }, unitId: unit.id };
      }),
    ],
    firstDevice: {
      rule: "the default domain is finalised for the device: it needs an ASID",
      setup: (fx) => {
        const unit = fx.unit("arm-smmu-v3", { domainIds: 1 });
        const domain = fx.domain({ unitId: unit.id });
        return { unitId: unit.id, groupId: fx.group(unit.id).id, free: () => unwrap(objects.deleteDomain(fx.model, domain.id)) };
      },
      errno: "EBUSY", reason: "asids-exhausted", detail: (unit) => `all 1 ASIDs ${unit.name} can use are taken (1 in use across every SMMUv3)`,
    },
  },
  "arm-smmu": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 65536, 2097152, 33554432, 1073741824], snoopControl: false,
      dirtyTracking: false, nesting: false, domainIds: 128, cpuPageSize: 4096, isolatedMsi: false,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: false, nestParent: false },
    binds: true,
    // arm_smmu_capable: coherent walks only; no enforce_cache_coherency op.
    capable: [
      { unit: { snoopControl: true }, device: { canwbs: true }, answers: answers(true, false, false) },
      { unit: { snoopControl: false, dirtyTracking: true }, device: {}, answers: answers(false, false, false) },
    ],
    enforceCoherency: null,
    finaliseAt: "first-attach",
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("arm-smmu").id, fx.domain({ type: "identity", driver: "arm-smmu" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("arm-smmu").id, fx.domain({ type: "blocked", driver: "arm-smmu" }).id)),
      ok("unbound domain takes a context bank", (fx) =>
        single(fx, fx.unit("arm-smmu").id, fx.domain({ driver: "arm-smmu" }).id)),
      ok("one context bank left", (fx) => {
        const unit = fx.unit("arm-smmu", { domainIds: 4 });
        attachAnother(fx, unit.id, fx.domain({ driver: "arm-smmu" }).id);
        return single(fx, unit.id, fx.domain({ driver: "arm-smmu" }).id);
      }),
      ok("a domain allocated for the unit is finalised at its first attach", (fx) => {
        const unit = fx.unit("arm-smmu");
        return single(fx, unit.id, fx.domain({ unitId: unit.id }).id);
      }),
      soft("different-instance", differentInstance, (fx) => {
        const a = fx.unit("arm-smmu");
        const b = fx.unit("arm-smmu");
        const domain = fx.domain({ driver: "arm-smmu" });
        attachAnother(fx, a.id, domain.id);
        return single(fx, b.id, domain.id);
      }),
      hard("ENOSPC", "context-banks-exhausted", ({ unit }) => `all 1 context banks of ${unit.name} are in use`, (fx) =>
        single(fx, fx.unit("arm-smmu", { domainIds: 1 }).id, fx.domain({ driver: "arm-smmu" }).id),
      "context-banks-exhausted (the group's default domain holds the only one)"),
      hard("ENOSPC", "context-banks-exhausted", ({ unit }) => `all 1 context banks of ${unit.name} are in use`, (fx) => {
        const unit = fx.unit("arm-smmu", { domainIds: 1 });
        return single(fx, unit.id, fx.domain({ unitId: unit.id }).id);
      }, "context-banks-exhausted (a domain allocated for the unit takes one at its first attach)"),
    ],
    allocate: [
      allocated("a domain allocated for a unit whose context banks are all in use: not finalised, nothing taken", false, (fx) => {
        const unit = fx.unit("arm-smmu", { domainIds: 1 });
        fx.groupWith(unit.id);
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id };
      }),
    ],
    firstDevice: {
      rule: "the default domain's first attach needs a context bank",
      setup: (fx) => {
        const unit = fx.unit("arm-smmu", { domainIds: 1 });
        const other = fx.groupWith(unit.id);
        return { unitId: unit.id, groupId: fx.group(unit.id).id, free: () => unwrap(objects.deleteDevice(fx.model, other.devices[0]!.id)) };
      },
      errno: "ENOSPC", reason: "context-banks-exhausted", detail: (unit) => `all 1 context banks of ${unit.name} are in use`,
    },
  },
  "amd-iommu": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
      dirtyTracking: true, nesting: false, domainIds: 65535, cpuPageSize: 4096, isolatedMsi: true,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: false,
    // amd_iommu_capable (amd_iommu_hd_support); amd_iommu_enforce_cache_coherency ("IOMMU_PTE_FC is always set").
    capable: [
      { unit: { dirtyTracking: true }, device: {}, answers: answers(true, true, true) },
      { unit: { dirtyTracking: false, snoopControl: false }, device: {}, answers: answers(true, true, false) },
    ],
    enforceCoherency: [
      { rule: "nothing attached", enforcing: false, attached: [], enforced: true },
      { rule: "any device attached", enforcing: false, attached: [{ unit: { snoopControl: false }, device: {} }], enforced: true },
    ],
    finaliseAt: null,
    staticDomains: { identity: true, blocked: true },
    attach: [
      ok("the static identity domain", (fx) => single(fx, fx.unit("amd-iommu").id, fx.domain({ type: "identity", driver: "amd-iommu" }).id)),
      ok("the static blocked domain", (fx) => single(fx, fx.unit("amd-iommu").id, fx.domain({ type: "blocked", driver: "amd-iommu" }).id)),
      ok("dirty-tracking domain on a unit with dirty tracking", (fx) => {
        const unit = fx.unit("amd-iommu", { dirtyTracking: true });
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id);
      }),
      ok("domain without dirty tracking on a unit without it", (fx) =>
        single(fx, fx.unit("amd-iommu", { dirtyTracking: false }).id, fx.domain({ driver: "amd-iommu" }).id)),
      ok("the domain-ID pool is full, yet an allocated domain attaches: its ID was taken at allocation", (fx) => {
        const unit = fx.unit("amd-iommu", { domainIds: 3 });
        const domain = fx.domain({ driver: "amd-iommu" });
        return single(fx, unit.id, domain.id); // identity domain + this domain + the group's default domain
      }),
      soft("dirty-tracking", ({ domain, unit }) => `domain ${domain.id} tracks dirty pages; ${unit.name} has no dirty tracking`, (fx) => {
        const tracking = fx.unit("amd-iommu", { dirtyTracking: true });
        return single(fx, fx.unit("amd-iommu", { dirtyTracking: false }).id, fx.domain({ unitId: tracking.id, config: { dirtyTracking: true } }).id);
      }),
    ],
    allocate: [
      allocated("one ID of the pool left", false, (fx) => {
        const unit = fx.unit("amd-iommu", { domainIds: 3 });
        fx.groupWith(unit.id);
        return { spec: { type: "paging", driver: "amd-iommu" }, unitId: null };
      }),
      refused("ENOMEM", "domain-id-pool-exhausted", () => "all 3 domain IDs of the amd-iommu pool are in use (one by the identity domain)", (fx) => {
        const unit = fx.unit("amd-iommu", { domainIds: 3 });
        fx.groupWith(unit.id);
        const first = fx.domain({ driver: "amd-iommu" });
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id, free: () => unwrap(objects.deleteDomain(fx.model, first.id)) };
      }, "domain-id-pool-exhausted (protection_domain_alloc → pdom_id_alloc; -ENOMEM)"),
      refused("ENOMEM", "domain-id-pool-exhausted", () => "all 2 domain IDs of the amd-iommu pool are in use (one by the identity domain)", (fx) => {
        fx.unit("amd-iommu", { domainIds: 2 });
        const big = fx.unit("amd-iommu");
        const first = fx.domain({ unitId: big.id });
        return { spec: { type: "paging", unitId: big.id }, unitId: big.id, free: () => unwrap(objects.deleteDomain(fx.model, first.id)) };
      }, "domain-id-pool-exhausted (one pool for the driver, as large as its smallest unit's)"),
    ],
    firstDevice: {
      rule: "the default domain's allocation needs an ID from the pool",
      setup: (fx) => {
        const unit = fx.unit("amd-iommu", { domainIds: 2 });
        const domain = fx.domain({ driver: "amd-iommu" });
        return { unitId: unit.id, groupId: fx.group(unit.id).id, free: () => unwrap(objects.deleteDomain(fx.model, domain.id)) };
      },
      errno: "ENOMEM", reason: "domain-id-pool-exhausted", detail: () => "all 2 domain IDs of the amd-iommu pool are in use (one by the identity domain)",
    },
  },
  "apple-dart": {
    defaults: {
      addressWidth: 36, pageSizes: [16384], snoopControl: false,
      dirtyTracking: false, nesting: false, domainIds: 16, cpuPageSize: 16384, isolatedMsi: false,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: false, nestParent: false },
    binds: true,
    // apple_dart_iommu_ops has neither capable nor enforce_cache_coherency.
    capable: null,
    enforceCoherency: null,
    finaliseAt: "allocation",
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
    allocate: [
      allocated("a domain allocated for a DART is finalised there at once", true, (fx) => {
        const unit = fx.unit("apple-dart");
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id };
      }),
      allocated("without a unit, a DART's page size is not known yet: finalised at the first attach", false, (fx) => {
        fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 4096 });
        return { spec: { type: "paging", driver: "apple-dart" }, unitId: null };
      }),
      refused("EINVAL", "page-too-large", (unit) => `${unit!.name} page size 16384 exceeds the CPU page size 4096: it cannot back a paging domain`, (fx) => {
        const unit = fx.unit("apple-dart", { pageSizes: [16384], cpuPageSize: 4096 });
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id };
      }, "page-too-large (apple_dart_domain_alloc_paging → apple_dart_finalize_domain: -EINVAL, hard)"),
    ],
    firstDevice: null,
  },
  "virtio-iommu": {
    defaults: {
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: false,
      dirtyTracking: false, nesting: false, domainIds: 4096, cpuPageSize: 4096, isolatedMsi: false,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: false, nestParent: false },
    binds: true,
    // viommu_capable: coherent only; no enforce_cache_coherency op.
    capable: [
      { unit: {}, device: {}, answers: answers(true, false, false) },
      { unit: { dirtyTracking: true, snoopControl: true }, device: { canwbs: true }, answers: answers(true, false, false) },
    ],
    enforceCoherency: null,
    finaliseAt: "allocation",
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
      hard("ENOSPC", "domain-ids-exhausted", ({ unit }) => `all 1 domain IDs of ${unit.name} are in use`, (fx) =>
        single(fx, fx.unit("virtio-iommu", { domainIds: 1 }).id, fx.domain({ driver: "virtio-iommu" }).id),
      "domain-ids-exhausted (the group's default domain holds the only one; viommu_domain_finalise at first attach)"),
    ],
    allocate: [
      refused("ENOSPC", "domain-ids-exhausted", (unit) => `all 2 domain IDs of ${unit!.name} are in use`, (fx) => {
        const unit = fx.unit("virtio-iommu", { domainIds: 2 });
        fx.groupWith(unit.id);
        const first = fx.domain({ unitId: unit.id });
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id, free: () => unwrap(objects.deleteDomain(fx.model, first.id)) };
      }, "domain-ids-exhausted (viommu_domain_alloc_paging: ida_alloc_range → -ENOSPC)"),
      refused("ENODEV", "granule-too-large", (unit, domainId) => `${unit!.name} granule 65536 exceeds the CPU page size 4096 (domain ${domainId})`, (fx) => {
        const unit = fx.unit("virtio-iommu", { pageSizes: [65536], cpuPageSize: 4096 });
        return { spec: { type: "paging", unitId: unit.id }, unitId: unit.id };
      }, "granule-too-large (viommu_domain_alloc_paging: -ENODEV, before any ID is taken)"),
    ],
    firstDevice: {
      rule: "the default domain is finalised for the device: it needs a domain ID",
      setup: (fx) => {
        const unit = fx.unit("virtio-iommu", { domainIds: 1 });
        const domain = fx.domain({ unitId: unit.id });
        return { unitId: unit.id, groupId: fx.group(unit.id).id, free: () => unwrap(objects.deleteDomain(fx.model, domain.id)) };
      },
      errno: "ENOSPC", reason: "domain-ids-exhausted", detail: (unit) => `all 1 domain IDs of ${unit.name} are in use`,
    },
  },
  mock: {
    defaults: {
      addressWidth: 64, pageSizes: [4096], snoopControl: true,
      dirtyTracking: true, nesting: true, domainIds: 1048576, cpuPageSize: 4096, isolatedMsi: true,
      coherentWalk: true, firstStage: true, bypass: true,
    },
    allocFlags: { dirtyTracking: true, nestParent: true },
    binds: false,
    // mock_domain_capable (selftest.c): MOCK_FLAGS_DEVICE_NO_DIRTY; no enforce_cache_coherency op.
    capable: [
      { unit: {}, device: {}, answers: answers(true, false, true) },
      { unit: {}, device: { noDirty: true }, answers: answers(true, false, false) },
      { unit: { dirtyTracking: false }, device: {}, answers: answers(true, false, false) },
    ],
    enforceCoherency: null,
    finaliseAt: null,
    staticDomains: { identity: false, blocked: true },
    attach: [
      ok("the static blocked domain", (fx) => single(fx, fx.unit("mock").id, fx.domain({ type: "blocked", driver: "mock" }).id)),
      ok("normal device on a dirty-tracking domain", (fx) => {
        const unit = fx.unit("mock");
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id);
      }),
      ok("no-dirty device on a domain without dirty tracking", (fx) =>
        single(fx, fx.unit("mock").id, fx.domain({ driver: "mock" }).id, { noDirty: true })),
      soft("dirty-tracking", ({ domain, device }) => `domain ${domain.id} tracks dirty pages; ${device.name} was created no-dirty`, (fx) => {
        const unit = fx.unit("mock");
        return single(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id, { noDirty: true });
      }),
    ],
    allocate: [
      allocated("takes nothing that can run out", false, (fx) => {
        const unit = fx.unit("mock", { domainIds: 1 });
        fx.groupWith(unit.id);
        fx.domain({ driver: "mock" });
        return { spec: { type: "paging", driver: "mock" }, unitId: null };
      }),
    ],
    firstDevice: null,
  },
};

/** The row's group claimed by `owner` (on its blocking domain, as VFIO leaves it). */
function claimed(fx: Fixture, s: Setup, owner: string): Setup {
  unwrap(fx.op(claimOwnership, { owner }, s.groupId));
  return s;
}

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
    expect(registered.finaliseAt ?? null).toBe(spec.finaliseAt);
    expect(spec.binds).toBe(spec.finaliseAt !== null);
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

  it("answers capable() as pinned; without the op, false for every cap", () => {
    expect(DRIVERS[driver].capable !== undefined).toBe(spec.capable !== null);
    const rows = spec.capable ?? [
      { unit: {}, device: {}, answers: answers(false, false, false) },
      { unit: { snoopControl: true, dirtyTracking: true }, device: { canwbs: true }, answers: answers(false, false, false) },
    ];
    for (const row of rows) {
      const fx = build();
      const unit = fx.unit(driver, row.unit);
      const device = fx.groupWith(unit.id, [row.device]).devices[0]!;
      const got = Object.fromEntries(IOMMU_CAPS.map((cap) => [cap, deviceIommuCapable(fx.model, unit, device, cap)]));
      expect(got, JSON.stringify(row)).toEqual(row.answers);
    }
  });

  it("answers enforce_cache_coherency as pinned; without the op, never", () => {
    expect(DRIVERS[driver].enforceCacheCoherency !== undefined).toBe(spec.enforceCoherency !== null);
    for (const row of spec.enforceCoherency ?? []) {
      const fx = build();
      const attached = row.attached.map(({ unit: caps, device: flags }) => {
        const unit = fx.unit(driver, caps);
        return { unit, device: fx.groupWith(unit.id, [flags]).devices[0]! };
      });
      const domain = fx.domain({ driver, config: { enforceCacheCoherency: row.enforcing } });
      expect(DRIVERS[driver].enforceCacheCoherency!({ domain, attached }), row.rule).toBe(row.enforced);
    }
    if (spec.enforceCoherency === null) {
      const fx = build();
      expect(domainCanEnforceCoherency(fx.model, fx.domain({ unitId: fx.unit(driver).id }))).toBe(false);
    }
  });

  // iommufd_hwpt_paging_alloc(): "It is an iommu driver bug to report
  // IOMMU_CAP_ENFORCE_CACHE_COHERENCY but fail enforce_cache_coherency on a new domain."
  it("enforces coherency on a new domain for every device capable() says can have it", () => {
    for (const row of (spec.capable ?? []).filter((r) => r.answers["enforce-cache-coherency"])) {
      const fx = build();
      const unit = fx.unit(driver, row.unit);
      expect(domainCanEnforceCoherency(fx.model, fx.domain({ unitId: unit.id })), JSON.stringify(row)).toBe(true);
    }
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

      const who = row.owner === undefined ? ANON : { owner: row.owner };
      const r = via === "attachGroup"
        ? fx.op(attachGroup, who, s.groupId, s.domainId)
        : fx.op(attachDevice, who, s.deviceId, s.domainId);
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

  // domain_alloc_paging: what allocating takes, refuses and gives back.
  it.each(spec.allocate)("allocation: $rule → $errno", (row) => {
    const fx = build();
    const s = row.setup(fx);
    fx.commit();
    const before = snapshot(fx.model);
    const unit = s.unitId === null ? null : fx.model.get("unit", s.unitId)!;
    const domainId = fx.model.lastIds().domain + 1;
    const r = fx.op(objects.createDomain, s.spec);
    if (row.errno === null) {
      const domain = unwrap(r);
      expect(domain.unitId).toBe(row.bound ? s.unitId : spec.binds ? null : s.unitId);
      expect(fx.domainNow(domain.id)).toEqual(domain);
      return;
    }
    const error = errorOf(r);
    expect(error).toEqual({ errno: row.errno, reason: row.reason, detail: row.detail!(unit, domainId) });
    expect(isSoft(error)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
    if (!s.free) return;
    // The ID is counted from the model: freeing what held it gives it back.
    s.free();
    expect(unwrap(fx.op(objects.createDomain, s.spec)).type).toBe("paging");
  });

  const first = spec.firstDevice;
  if (first === null) {
    it("a group's first device: its default domain takes nothing that can run out", () => {
      expect(DRIVERS[driver].setupDefaultDomain).toBeUndefined();
      const fx = build();
      const unit = fx.unit(driver, { domainIds: 1 });
      fx.domain({ unitId: unit.id });
      fx.domain({ unitId: unit.id });
      fx.groupWith(unit.id, [{}, {}]);
      expect(fx.groupWith(unit.id).devices).toHaveLength(1);
    });
  } else {
    it(`a group's first device: ${first.rule} → ${first.errno}; freeing one lets it join`, () => {
      const fx = build();
      const s = first.setup(fx);
      fx.commit();
      const before = snapshot(fx.model);
      const unit = fx.model.get("unit", s.unitId)!;
      const group = fx.groupNow(s.groupId);
      const error = errorOf(fx.op(objects.createDevice, { name: "first", groupId: s.groupId }));
      expect(error).toEqual({
        errno: first.errno, reason: first.reason, detail: first.detail(unit), ids: { groupId: s.groupId, domainId: group.defaultDomainId },
      });
      expect(snapshot(fx.model)).toBe(before);
      s.free();
      unwrap(fx.op(objects.createDevice, { name: "first", groupId: s.groupId }));
      // The second device joins a default domain that holds its ID already.
      unwrap(fx.op(objects.createDevice, { name: "second", groupId: s.groupId }));
    });
  }

  // The allocation flags are data the core checks (core/domain-alloc.ts): the
  // expectations below follow the table's flags, not the driver's.
  describe.each([
    { flag: "dirtyTracking", config: { dirtyTracking: true }, capability: "dirtyTracking", refused: "dirty tracking is not supported" },
    { flag: "nestParent", config: { nestParent: true }, capability: "nesting", refused: "nesting parent domains are not supported" },
  ] as const)("a paging domain asking for $flag", ({ flag, config, capability, refused }) => {
    const supported = spec.allocFlags[flag];

    it("is refused without a unit: EINVAL invalid-argument (IOMMU_HWPT_ALLOC allocates for a device)", () => {
      const fx = build();
      const before = snapshot(fx.model);
      const r = objects.createDomain(fx.model, { type: "paging", driver, config });
      const what = flag === "dirtyTracking" ? "a dirty-tracking domain" : "a nesting-parent domain";
      expect(errorOf(r)).toEqual({
        errno: "EINVAL", reason: "invalid-argument",
        detail: `${what} is allocated for a device (IOMMU_HWPT_ALLOC names a dev_id): name the unitId it is for`,
      });
      expect(isSoft(errorOf(r))).toBe(false);
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

  it.each([
    ["arm-smmu", "ENOSPC"], ["arm-smmu-v3", "EBUSY"], ["virtio-iommu", "ENOSPC"],
  ] as const)("%s: a finalised domain holds its ID until it is freed, attached or not (→ %s, then freed: attached)", (driver, errno) => {
    const fx = build();
    const unit = fx.unit(driver, { domainIds: 2 });
    const s = single(fx, unit.id, fx.domain({ driver }).id); // the group's default domain holds one
    const held = fx.domain({ driver });
    unwrap(fx.op(attachGroup, ANON, s.groupId, held.id)); // finalised at this first attach: the other
    unwrap(fx.op(detachGroup, ANON, s.groupId, held.id));
    expect(fx.domainNow(held.id)?.unitId).toBe(unit.id);
    expect(errorOf(fx.op(attachGroup, ANON, s.groupId, s.domainId)).errno).toBe(errno);
    unwrap(objects.deleteDomain(fx.model, held.id));
    unwrap(fx.op(attachGroup, ANON, s.groupId, s.domainId));
  });

  it("intel-vtd: a domain ID is held while a device of the unit is attached; a group's last device leaving gives its default domain's back", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd", { domainIds: 2 });
    const s = claimed(fx, single(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id), "vfio");
    occupyDomainId(fx, unit.id, "intel-vtd");
    const bystander = fx.groupWith(unit.id);
    const vfio = { owner: "vfio" };
    expect(errorOf(fx.op(attachGroup, vfio, s.groupId, s.domainId))).toMatchObject({ errno: "ENOSPC", reason: "domain-ids-exhausted" });
    unwrap(objects.deleteDevice(fx.model, bystander.devices[0]!.id));
    unwrap(fx.op(attachGroup, vfio, s.groupId, s.domainId));
    expect(fx.model.devicesAttachedOn(unit.id, s.domainId)).toBe(1);
  });
});

// set_dev_pasid, per driver (iommu_attach_device_pasid): the domain types
// whose ops have it (any other is EOPNOTSUPP, and every type of a driver
// without it), and the driver's own refusals, each row run through
// attachPasid on a device that takes PASIDs, alone in its group.
type PasidType = "paging" | "identity" | "blocked";
interface PasidSeen extends Seen {
  /** The domain the device's RID is on. */
  readonly groupDomain: Domain;
}
interface PasidRow {
  readonly rule: string;
  readonly setup: (fx: Fixture) => Setup;
  readonly errno: ErrnoName | null;
  readonly reason: Reason | null;
  readonly soft: boolean;
  readonly detail: ((seen: PasidSeen) => string) | null;
}
const pasidOk = (rule: string, setup: PasidRow["setup"]): PasidRow => ({ rule, setup, errno: null, reason: null, soft: false, detail: null });
const pasidSoft = (reason: Reason, detail: (seen: PasidSeen) => string, setup: PasidRow["setup"], rule: string = reason): PasidRow =>
  ({ rule, setup, errno: "EINVAL", reason, soft: true, detail });
const pasidHard = (errno: ErrnoName, reason: Reason, detail: (seen: PasidSeen) => string, setup: PasidRow["setup"], rule: string = reason): PasidRow =>
  ({ rule, setup, errno, reason, soft: false, detail });

/** A group on `unitId` with one device taking PASIDs (flags of it), and the domain for its PASID. */
function pasidSingle(fx: Fixture, unitId: number, domainId: number, flags: Partial<DeviceFlags> = {}): Setup {
  const group = fx.group(unitId);
  return { groupId: group.id, deviceId: fx.pasidDevice(group.id, 1 << 20, flags).id, domainId, unitId };
}

const PASID_CASES: Record<DriverName, { readonly types: readonly PasidType[]; readonly rows: readonly PasidRow[] }> = {
  "intel-vtd": {
    // intel_iommu_set_dev_pasid, identity_domain_set_dev_pasid, blocking_domain_set_dev_pasid
    types: ["paging", "identity", "blocked"],
    rows: [
      pasidOk("compatible paging domain", (fx) => pasidSingle(fx, fx.unit("intel-vtd").id, fx.domain({ driver: "intel-vtd" }).id)),
      pasidOk("the identity domain", (fx) => pasidSingle(fx, fx.unit("intel-vtd").id, fx.domain({ type: "identity", driver: "intel-vtd" }).id)),
      pasidSoft("pasid-incompatible", ({ domain, unit }) => `domain ${domain.id} tracks dirty pages; ${unit.name} attaches no dirty-tracking domain to a PASID`, (fx) => {
        const unit = fx.unit("intel-vtd", { dirtyTracking: true });
        return pasidSingle(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id);
      }, "pasid-incompatible (a dirty-tracking domain: domain->dirty_ops)"),
      pasidSoft("snoop-control", ({ domain, unit }) => `domain ${domain.id} enforces cache coherency (force_snooping); ${unit.name} has no snoop control`, (fx) =>
        pasidSingle(fx, fx.unit("intel-vtd", { snoopControl: false }).id, fx.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }).id),
      "snoop-control (paging_domain_compatible, as for attach_dev)"),
      pasidSoft("address-width", ({ domain, unit }) => `domain ${domain.id} is 48-bit; ${unit.name} translates 39 bits`, (fx) =>
        pasidSingle(fx, fx.unit("intel-vtd", { addressWidth: 39 }).id, fx.domain({ driver: "intel-vtd", config: { addressWidth: 48 } }).id)),
      pasidHard("ENOSPC", "domain-ids-exhausted", ({ unit }) => `all 2 domain IDs of ${unit.name} are in use`, (fx) => {
        // One ID held by another group's paging domain, one by this device's default domain.
        const unit = fx.unit("intel-vtd", { domainIds: 2 });
        occupyDomainId(fx, unit.id, "intel-vtd");
        return pasidSingle(fx, unit.id, fx.domain({ driver: "intel-vtd" }).id);
      }, "domain-ids-exhausted (domain_add_dev_pasid → domain_attach_iommu)"),
    ],
  },
  "arm-smmu-v3": {
    // arm_smmu_s1_set_dev_pasid, arm_smmu_blocking_set_dev_pasid; arm_smmu_identity_ops has none
    types: ["paging", "blocked"],
    rows: [
      pasidOk("stage-1 domain, unbound: finalised on the device's SMMU", (fx) =>
        pasidSingle(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3" }).id)),
      pasidOk("the blocked domain", (fx) => pasidSingle(fx, fx.unit("arm-smmu-v3").id, fx.domain({ type: "blocked", driver: "arm-smmu-v3" }).id)),
      pasidOk("coherent domain and a CANWBS device", (fx) =>
        pasidSingle(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } }).id, { canwbs: true })),
      pasidSoft("pasid-incompatible", ({ domain }) => `domain ${domain.id} is a stage-2 (nesting parent) domain; only a stage-1 domain can be attached to a PASID`, (fx) => {
        const unit = fx.unit("arm-smmu-v3");
        return pasidSingle(fx, unit.id, fx.domain({ unitId: unit.id, config: { nestParent: true } }).id);
      }, "pasid-incompatible (stage != ARM_SMMU_DOMAIN_S1)"),
      pasidHard("EINVAL", "no-pasid-table", ({ device, groupDomain }) => `${device.name} is on stage-2 domain ${groupDomain.id}, whose STE has no CD table for PASIDs`, (fx) => {
        const unit = fx.unit("arm-smmu-v3");
        const s = pasidSingle(fx, unit.id, fx.domain({ driver: "arm-smmu-v3" }).id);
        const s2 = fx.domain({ unitId: unit.id, config: { nestParent: true } });
        if (!fx.op(attachGroup, ANON, s.groupId, s2.id).ok) throw new Error("setup attach failed");
        return s;
      }, "no-pasid-table (arm_smmu_set_pasid: the RID on a stage-2 domain)"),
      pasidSoft("cache-coherency", ({ domain, device }) => `domain ${domain.id} enforces cache coherency; ${device.name} lacks CANWBS`, (fx) =>
        pasidSingle(fx, fx.unit("arm-smmu-v3").id, fx.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } }).id)),
      pasidSoft("different-instance", differentInstance, (fx) => {
        const a = fx.unit("arm-smmu-v3");
        return pasidSingle(fx, fx.unit("arm-smmu-v3").id, fx.domain({ unitId: a.id }).id);
      }),
      pasidHard("EBUSY", "asids-exhausted", ({ unit }) => `all 2 ASIDs ${unit.name} can use are taken (2 in use across every SMMUv3)`, (fx) => {
        // One ASID held by a domain finalised at allocation, one by this device's default domain.
        const unit = fx.unit("arm-smmu-v3", { domainIds: 2 });
        fx.domain({ unitId: unit.id });
        return pasidSingle(fx, unit.id, fx.domain({ driver: "arm-smmu-v3" }).id);
      }, "asids-exhausted (finalised at the PASID attach)"),
    ],
  },
  "arm-smmu": { types: [], rows: [] },
  "amd-iommu": {
    // Paging ops (amdv1_ops, amdv2_ops) have none; blocked_domain_set_dev_pasid
    types: ["blocked"],
    rows: [pasidOk("the blocked domain", (fx) => pasidSingle(fx, fx.unit("amd-iommu").id, fx.domain({ type: "blocked", driver: "amd-iommu" }).id))],
  },
  "apple-dart": { types: [], rows: [] },
  "virtio-iommu": { types: [], rows: [] },
  mock: {
    // mock_domain_set_dev_pasid_nop on the paging and blocking domains
    types: ["paging", "blocked"],
    rows: [
      pasidOk("a paging domain", (fx) => pasidSingle(fx, fx.unit("mock").id, fx.domain({ driver: "mock" }).id)),
      pasidOk("a dirty-tracking domain and a no-dirty device (set_dev_pasid is a nop)", (fx) => {
        const unit = fx.unit("mock");
        return pasidSingle(fx, unit.id, fx.domain({ unitId: unit.id, config: { dirtyTracking: true } }).id, { noDirty: true });
      }),
    ],
  },
};

describe.each(NAMES)("%s: set_dev_pasid", (driver) => {
  const spec = PASID_CASES[driver];

  it(`has it for ${spec.types.length > 0 ? spec.types.join(", ") + " domains" : "no domain"}`, () => {
    expect(DRIVERS[driver].pasid?.domainTypes ?? []).toEqual(spec.types);
  });

  it.each(["paging", "identity", "blocked"] as const)("a PASID of a %s domain: attached where the type has set_dev_pasid, else EOPNOTSUPP", (type) => {
    // A static domain the driver does not have cannot be asked for (its own row in the static-domain tests).
    if (type !== "paging" && !CASES[driver].staticDomains[type]) return;
    const fx = build();
    const s = pasidSingle(fx, fx.unit(driver).id, fx.domain({ type, driver }).id);
    fx.commit();
    const before = snapshot(fx.model);
    const r = fx.op(attachPasid, ANON, s.deviceId, 1, s.domainId);
    if (spec.types.includes(type)) {
      expect(r).toEqual({ ok: true, value: expect.objectContaining({ deviceId: s.deviceId, pasid: 1, domainId: s.domainId }) });
      return;
    }
    const detail = spec.types.length === 0
      ? `${driver} has no PASID support (no set_dev_pasid): domain ${s.domainId} cannot be attached to a PASID`
      : `${type} domains of ${driver} have no set_dev_pasid: domain ${s.domainId} cannot be attached to a PASID`;
    expect(errorOf(r)).toEqual({ errno: "EOPNOTSUPP", reason: "unsupported", detail, ids: { domainId: s.domainId } });
    expect(snapshot(fx.model)).toBe(before);
  });

  it.runIf(spec.rows.length > 0).each(spec.rows)("$rule → $errno", (row) => {
    const fx = build();
    const s = row.setup(fx);
    fx.commit();
    const before = snapshot(fx.model);
    const domain = fx.domainNow(s.domainId)!;
    const group = fx.groupNow(s.groupId);
    const seen: PasidSeen = {
      unit: fx.model.get("unit", s.unitId)!, device: fx.model.get("device", s.deviceId)!, domain,
      boundTo: domain.unitId === null ? null : fx.model.get("unit", domain.unitId)!, groupDomain: fx.domainNow(group.domainId)!,
    };
    const r = fx.op(attachPasid, ANON, s.deviceId, 1, s.domainId);
    const events = fx.model.takeChanges().events;
    expect(events).toEqual([expect.objectContaining({ op: "attach-pasid", deviceId: s.deviceId, groupId: s.groupId, domainId: s.domainId })]);
    if (row.errno === null) {
      expect(r).toEqual({ ok: true, value: { id: expect.any(Number), deviceId: s.deviceId, pasid: 1, domainId: s.domainId } });
      expect(fx.model.pasidAttachmentsOfGroup(s.groupId).map((a) => [a.pasid, a.domainId])).toEqual([[1, s.domainId]]);
      // A binding driver leaves a paging domain bound to this unit, as an attach would.
      const binds = DRIVERS[driver].finalise !== undefined && domain.type === "paging";
      expect(fx.domainNow(s.domainId)?.unitId).toBe(binds ? s.unitId : domain.unitId);
      expect(events[0]).toMatchObject({ errno: null, code: 0, reason: null });
      return;
    }
    const error = errorOf(r);
    const detail = row.detail!(seen);
    expect(error).toMatchObject({ errno: row.errno, reason: row.reason, detail, ids: expect.objectContaining({ deviceId: s.deviceId }) });
    expect(isSoft(error)).toBe(row.soft);
    expect(snapshot(fx.model)).toBe(before);
    expect(events[0]).toMatchObject({ errno: row.errno, code: -ERRNO_VALUES[row.errno], reason: row.reason, detail });
  });
});
