// AMD-Vi (drivers/iommu/amd/iommu.c): dirty tracking is per unit; domains
// span units and each unit spends a domain ID on a domain it serves.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK, checkDomainIdAvailable } from "./rules.js";

export const amdIommu: IommuDriver = {
  name: "amd-iommu",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
    dirtyTracking: true, nesting: false, domainIds: 65535, cpuPageSize: 4096,
    // Interrupt remapping: amd_iommu_create_irq_domain() gives the IR domain
    // IRQ_DOMAIN_FLAG_ISOLATED_MSI.
    isolatedMsi: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  attachDev({ unit, domain, usage }) {
    if (domain.config.dirtyTracking && !unit.capabilities.dirtyTracking) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${unit.name} has no dirty tracking`);
    }
    return checkDomainIdAvailable(unit, domain, usage);
  },
  // The paging domains' ops (amdv1_ops, amdv2_ops) have no set_dev_pasid:
  // the driver attaches PASIDs to SVA domains only (not modelled). Its
  // blocked domain has one (blocked_domain_set_dev_pasid), refusing nothing.
  pasid: {
    domainTypes: ["blocked"],
    setDevPasid: () => OK,
  },
  // amd_iommu_capable(): coherent and no-snoop blocking always; dirty
  // tracking where the unit has it (amd_iommu_hd_support).
  capable({ unit }, cap) {
    switch (cap) {
      case "cache-coherency": return true;
      case "enforce-cache-coherency": return true;
      case "dirty-tracking": return unit.capabilities.dirtyTracking;
    }
  },
  // amd_iommu_enforce_cache_coherency(): "IOMMU_PTE_FC is always set".
  enforceCacheCoherency: () => true,
};
