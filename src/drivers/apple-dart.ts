// Apple DART (drivers/iommu/apple-dart.c): a domain is bound to the DART it
// was finalised on (apple_dart_finalize_domain, at allocation for a device or
// else at its first attach), and a DART whose page size exceeds the CPU's
// cannot back a paging domain at all: apple_dart_finalize_domain answers
// -EINVAL before anything else, at allocation for a device behind it and on
// every attach of a device behind it. DARTs take no IDs that can run out.
// apple_dart_iommu_ops has no capable op: every IOMMU_CAP_* answer is false,
// cache coherency included, so iommufd binds no DART device.
import { fail, type IommuDriver, type Unit } from "../core/driver.js";
import { OK, smallest } from "./rules.js";

function dartPage(unit: Unit): { page: number; tooLarge: boolean } {
  const page = smallest(unit.capabilities.pageSizes);
  return { page, tooLarge: page > unit.capabilities.cpuPageSize };
}

export const appleDart: IommuDriver = {
  name: "apple-dart",
  defaults: {
    addressWidth: 36, pageSizes: [16384], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 16, cpuPageSize: 16384,
    // The Apple PCIe MSI controller isolates nothing.
    isolatedMsi: false,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: false, nestParent: false },
  // apple_dart_domain_alloc_paging(dev): no other domain would help, so the
  // answer is a hard EINVAL of its own, not the soft page-size mismatch.
  allocPaging({ unit }) {
    if (!unit) return OK;
    const { page, tooLarge } = dartPage(unit);
    if (tooLarge) {
      return fail("page-too-large", `${unit.name} page size ${page} exceeds the CPU page size ${unit.capabilities.cpuPageSize}: it cannot back a paging domain`);
    }
    return OK;
  },
  finaliseAt: "allocation",
  // The page table is built from this DART's sizes; nothing that can run out.
  finalise: () => OK,
  attachDev({ unit, domain }) {
    const { page, tooLarge } = dartPage(unit);
    if (tooLarge) {
      return fail("page-size", `${unit.name} page size ${page} exceeds the CPU page size ${unit.capabilities.cpuPageSize} (domain ${domain.id})`);
    }
    return OK;
  },
  // apple_dart_attach_dev_identity: a DART without bypass support (DART_PARAMS2
  // BYPASS_SUPPORT clear) cannot let a stream through untranslated.
  identityDomain: {
    attachDev({ unit, device }) {
      return unit.capabilities.bypass ? OK
        : fail("bypass-unsupported", `${unit.name} has no bypass support; ${device.name} cannot use the identity domain`);
    },
  },
  // apple_dart_attach_dev_blocked: never refused (the force_bypass refusal
  // went with "iommu/dart: Remove the force_bypass variable", v6.7).
  blockedDomain: {},
};
