// AMD-Vi (drivers/iommu/amd/iommu.c): dirty tracking is per unit; a domain
// spans units. Every paging domain, default domains included, takes an ID
// from one global pool at allocation (protection_domain_alloc →
// pdom_id_alloc, ida_alloc_range(&pdom_ids, 1, MAX_DOMAIN_ID - 1)); a full
// pool fails the allocation, which its callers answer -ENOMEM
// (do_iommu_domain_alloc, amd_iommu_domain_alloc_paging_v1), never the
// attach. The static identity domain took one of the pool's IDs at boot
// (amd_iommu_init_identity_domain); the blocked domain takes none.
import { fail, type AllocContext, type IommuDriver, type UnitUsage } from "../core/driver.js";
import { takeId, OK } from "./rules.js";

const NAME = "amd-iommu";
const DEFAULTS = {
  addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
  dirtyTracking: true, nesting: false, domainIds: 65535, cpuPageSize: 4096,
  // Interrupt remapping: amd_iommu_create_irq_domain() gives the IR domain
  // IRQ_DOMAIN_FLAG_ISOLATED_MSI.
  isolatedMsi: true,
  coherentWalk: true, firstStage: true, bypass: true,
};

/**
 * The pool's size is data: the driver's range (MAX_DOMAIN_ID - 1 IDs),
 * lowered to the smallest `domainIds` of its units, since a domain's ID
 * must be valid on every unit it may be attached on.
 */
function poolSize(usage: UnitUsage): number {
  return Math.min(DEFAULTS.domainIds, ...usage.unitsOf(NAME).map((u) => u.capabilities.domainIds));
}

function allocateDomainId({ usage }: Pick<AllocContext, "usage">) {
  const size = poolSize(usage);
  const units = usage.unitsOf(NAME);
  const used = 1 + usage.pagingDomainsOf(NAME) + units.reduce((n, u) => n + usage.defaultDomainsOn(u.id), 0);
  return takeId(used, size, "domain-id-pool-exhausted", `all ${size} domain IDs of the ${NAME} pool are in use (one by the identity domain)`);
}

export const amdIommu: IommuDriver = {
  name: NAME,
  defaults: DEFAULTS,
  allocFlags: { dirtyTracking: true, nestParent: true },
  allocPaging: allocateDomainId,
  setupDefaultDomain: allocateDomainId,
  attachDev({ unit, domain }) {
    if (domain.config.dirtyTracking && !unit.capabilities.dirtyTracking) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${unit.name} has no dirty tracking`);
    }
    return OK;
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
  // The static identity_domain (attached through amd_iommu_attach_device,
  // whose only refusal is dirty tracking, which it lacks) and blocked_domain
  // (blocked_domain_attach_device): never refused.
  identityDomain: {},
  blockedDomain: {},
};
