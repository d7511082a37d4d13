// ARM SMMU v1/v2 (drivers/iommu/arm/arm-smmu/arm-smmu.c): a domain is
// finalised on one SMMU at its first attach only (arm_smmu_attach_dev →
// arm_smmu_init_domain_context; arm_smmu_domain_alloc_paging takes nothing,
// even for a device) and holds one of its context banks until it is freed
// (__arm_smmu_alloc_bitmap, -ENOSPC when full). A default domain takes one
// when its group's first device attaches it; the static identity and
// blocked domains take none.
import type { IommuDriver } from "../core/driver.js";
import { OK, checkInstanceIdAvailable } from "./rules.js";

export const armSmmu: IommuDriver = {
  name: "arm-smmu",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 65536, 2097152, 33554432, 1073741824], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 128, cpuPageSize: 4096,
    // SMMUv2 platforms commonly take MSIs through a GICv2m frame, which
    // isolates nothing (no IRQ_DOMAIN_FLAG_ISOLATED_MSI).
    isolatedMsi: false,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: false, nestParent: false },
  finaliseAt: "first-attach",
  finalise: ({ unit, usage }) => checkInstanceIdAvailable(unit, usage, "context-banks-exhausted", "context banks"),
  setupDefaultDomain: ({ unit, usage }) => checkInstanceIdAvailable(unit, usage, "context-banks-exhausted", "context banks"),
  attachDev: () => OK,
  // arm_smmu_capable(): coherent when the SMMU walks coherently
  // (ARM_SMMU_FEAT_COHERENT_WALK, snoopControl here) or the device is
  // DMA-coherent itself (not modelled); nothing else. No
  // enforce_cache_coherency op.
  capable: ({ unit }, cap) => cap === "cache-coherency" && unit.capabilities.snoopControl,
  // arm_smmu_attach_dev_identity and _blocked (arm_smmu_attach_dev_type: an
  // S2CR of type BYPASS or FAULT): never refused.
  identityDomain: {},
  blockedDomain: {},
};
