// virtio-iommu (drivers/iommu/virtio-iommu.c): a domain is finalised on the
// viommu of the device it is allocated for (viommu_domain_alloc_paging) or,
// in kernels before v6.9, of its first endpoint (viommu_domain_finalise). A
// granule larger than the CPU page is refused with ENODEV, a hard error;
// then the domain takes an ID from this viommu's range (ida_alloc_range on
// viommu->domain_ids, -ENOSPC when full), held until it is freed. A default
// domain takes one with its group's first device.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK, checkInstanceIdAvailable, smallest } from "./rules.js";

export const virtioIommu: IommuDriver = {
  name: "virtio-iommu",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 4096, cpuPageSize: 4096,
    // A guest's MSIs are isolated only by an interrupt remapper or ITS of its
    // own; a QEMU x86 guest with virtio-iommu has none.
    isolatedMsi: false,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: false, nestParent: false },
  finaliseAt: "allocation",
  finalise({ domain, unit, usage }) {
    const granule = smallest(unit.capabilities.pageSizes);
    if (granule > unit.capabilities.cpuPageSize) {
      return fail("granule-too-large", `${unit.name} granule ${granule} exceeds the CPU page size ${unit.capabilities.cpuPageSize} (domain ${domain.id})`);
    }
    return checkInstanceIdAvailable(unit, usage, "domain-ids-exhausted", "domain IDs");
  },
  setupDefaultDomain: ({ unit, usage }) => checkInstanceIdAvailable(unit, usage, "domain-ids-exhausted", "domain IDs"),
  attachDev: () => OK,
  // viommu_capable(): coherent, nothing else; no enforce_cache_coherency op.
  capable: (_ctx, cap) => cap === "cache-coherency",
  // viommu_domain_alloc_identity: the static viommu_identity_domain where the
  // device offers VIRTIO_IOMMU_F_BYPASS_CONFIG, else a paging domain mapped
  // 1:1; either way the endpoint is let through. No blocked_domain: a group's
  // blocking domain is an empty paging domain (__iommu_group_alloc_blocking_domain).
  identityDomain: {},
};
