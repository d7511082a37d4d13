// ARM SMMU v1/v2 (drivers/iommu/arm/arm-smmu/arm-smmu.c): a domain is
// finalised on one SMMU and holds one of its context banks.
import type { IommuDriver } from "../core/driver.js";
import { OK, checkInstanceIdAvailable } from "./rules.js";

export const armSmmu: IommuDriver = {
  name: "arm-smmu",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 65536, 2097152, 33554432, 1073741824], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 128, cpuPageSize: 4096,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: false, nestParent: false },
  finalise: ({ unit, usage }) => checkInstanceIdAvailable(unit, usage, "context-banks-exhausted", "context banks"),
  attachDev: () => OK,
  // arm_smmu_attach_dev_identity and _blocked (arm_smmu_attach_dev_type: an
  // S2CR of type BYPASS or FAULT): never refused.
  identityDomain: {},
  blockedDomain: {},
};
