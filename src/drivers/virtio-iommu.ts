// virtio-iommu (drivers/iommu/virtio-iommu.c): a domain is finalised on the
// first endpoint's virtio-iommu; a granule larger than the CPU page is
// rejected by viommu_domain_finalise() with ENODEV, a hard error.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK, smallest } from "./rules.js";

export const virtioIommu: IommuDriver = {
  name: "virtio-iommu",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 4096, cpuPageSize: 4096,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: false, nestParent: false },
  finalise({ domain, unit }) {
    const granule = smallest(unit.capabilities.pageSizes);
    if (granule > unit.capabilities.cpuPageSize) {
      return fail("granule-too-large", `${unit.name} granule ${granule} exceeds the CPU page size ${unit.capabilities.cpuPageSize} (domain ${domain.id})`);
    }
    return OK;
  },
  attachDev: () => OK,
  // viommu_domain_alloc_identity: the static viommu_identity_domain where the
  // device offers VIRTIO_IOMMU_F_BYPASS_CONFIG, else a paging domain mapped
  // 1:1; either way the endpoint is let through. No blocked_domain: a group's
  // blocking domain is an empty paging domain (__iommu_group_alloc_blocking_domain).
  identityDomain: {},
};
