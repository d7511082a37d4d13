// Apple DART (drivers/iommu/apple-dart.c): a domain is bound to the DART it
// was finalised on, and a DART whose page size exceeds the CPU's cannot back
// a paging domain.
import { fail, type IommuDriver } from "../core/driver.js";
import { OK, smallest } from "./rules.js";

export const appleDart: IommuDriver = {
  name: "apple-dart",
  defaults: {
    addressWidth: 36, pageSizes: [16384], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 16, cpuPageSize: 16384,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: false, nestParent: false },
  // Present because a DART binds its domains: apple_dart_finalize_domain()
  // builds the page table from this DART's sizes, and takes nothing that can
  // run out, so finalising always succeeds.
  finalise: () => OK,
  attachDev({ unit, domain }) {
    const pgsize = smallest(unit.capabilities.pageSizes);
    if (pgsize > unit.capabilities.cpuPageSize) {
      return fail("page-size", `${unit.name} page size ${pgsize} exceeds the CPU page size ${unit.capabilities.cpuPageSize} (domain ${domain.id})`);
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
