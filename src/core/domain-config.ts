// A paging domain's configuration as the driver's allocation shapes it for a
// unit: the address width and page sizes of the unit, the flags asked for,
// and what VT-d's allocation reads off the unit it allocates for
// (paging_domain_alloc / intel_iommu_domain_alloc_paging_flags):
// iommu_coherency from the unit's page-walk coherency, and a first-stage
// table where the unit has one, unless dirty tracking or a nesting parent
// asks for second stage. Every field asked for wins.
import type { DomainConfig, UnitCapabilities } from "./entities.js";
import { interned } from "./intern.js";

export function shapedConfig(caps: UnitCapabilities, asked: Partial<DomainConfig> = {}): DomainConfig {
  const dirtyTracking = asked.dirtyTracking ?? false;
  const nestParent = asked.nestParent ?? false;
  return interned({
    addressWidth: caps.addressWidth, pageSizes: caps.pageSizes,
    enforceCacheCoherency: false, dirtyTracking, nestParent,
    coherentWalk: caps.coherentWalk,
    firstStage: caps.firstStage && !dirtyTracking && !nestParent,
    ...asked,
  });
}
