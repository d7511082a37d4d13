// Apple DART (drivers/iommu/apple-dart.c): a domain is bound to the DART it
// was finalised on, and a DART whose page size exceeds the CPU's cannot back
// a paging domain. apple_dart_iommu_ops has no capable op: every
// IOMMU_CAP_* answer is false, cache coherency included.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK, smallest } from "./rules.js";

export const appleDart: IommuDriver = {
  name: "apple-dart",
  defaults: {
    addressWidth: 36, pageSizes: [16384], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 16, cpuPageSize: 16384,
    // The Apple PCIe MSI controller isolates nothing.
    isolatedMsi: false,
  },
  allocFlags: { dirtyTracking: false, nestParent: false },
  // Present because a DART binds its domains: apple_dart_finalize_domain()
  // builds the page table from this DART's sizes, and takes nothing that can
  // run out, so finalising always succeeds.
  finalise: () => OK,
  // No capable op (apple_dart_iommu_ops): device_iommu_capable() answers
  // false for every capability, so iommufd binds no DART device.
  attachDev({ unit, domain }) {
    const pgsize = smallest(unit.capabilities.pageSizes);
    if (pgsize > unit.capabilities.cpuPageSize) {
      return fail("page-size", `${unit.name} page size ${pgsize} exceeds the CPU page size ${unit.capabilities.cpuPageSize} (domain ${domain.id})`);
    }
    return OK;
  },
};
