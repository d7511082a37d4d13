// ARM SMMUv3 (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c). A domain is
// finalised on one SMMU, taking an ASID (stage 1) or VMID (stage 2, the
// nesting parent); arm_smmu_attach_prepare() refuses coherency it cannot give.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK, checkInstanceIdAvailable } from "./rules.js";

export const armSmmuV3: IommuDriver = {
  name: "arm-smmu-v3",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
    dirtyTracking: false, nesting: true, domainIds: 65536, cpuPageSize: 4096,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  finalise: ({ domain, unit, usage }) =>
    checkInstanceIdAvailable(unit, usage, "asids-exhausted", domain.config.nestParent ? "VMIDs" : "ASIDs"),
  attachDev({ unit, device, domain }) {
    if (domain.config.enforceCacheCoherency && !device.flags.canwbs) {
      return fail("cache-coherency", `domain ${domain.id} enforces cache coherency; ${device.name} lacks CANWBS`);
    }
    if (domain.config.dirtyTracking && !unit.capabilities.dirtyTracking) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${unit.name} has no HTTU dirty tracking`);
    }
    if (domain.config.nestParent && device.flags.pasid) {
      return fail("pasid-in-use", `${device.name} has PASIDs in use; a stage-2 domain cannot replace its CD table`);
    }
    return OK;
  },
  // arm_smmu_attach_dev_identity (a bypass STE) and arm_smmu_attach_dev_blocked
  // (an abort STE): never refused.
  identityDomain: {},
  blockedDomain: {},
};
