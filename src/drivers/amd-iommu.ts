// AMD-Vi (drivers/iommu/amd/iommu.c): dirty tracking is per unit; domains
// span units and each unit spends a domain ID on a domain it serves.
import { fail, type IommuDriver } from "../core/driver.js";
import { checkDomainIdAvailable } from "./rules.js";

export const amdIommu: IommuDriver = {
  name: "amd-iommu",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
    dirtyTracking: true, nesting: false, domainIds: 65535, cpuPageSize: 4096,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  attachDev({ unit, domain, usage }) {
    if (domain.config.dirtyTracking && !unit.capabilities.dirtyTracking) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${unit.name} has no dirty tracking`);
    }
    return checkDomainIdAvailable(unit, domain, usage);
  },
  // The static identity_domain (attached through amd_iommu_attach_device,
  // whose only refusal is dirty tracking, which it lacks) and blocked_domain
  // (blocked_domain_attach_device): never refused.
  identityDomain: {},
  blockedDomain: {},
};
