// Apple DART (drivers/iommu/apple-dart.c): a domain is bound to the DART it
// was finalised on, and a DART whose page size exceeds the CPU's cannot back
// a paging domain.
import type { IommuDriver } from "./types.js";
import { OK, smallest, unitSupports } from "./rules.js";
import { fail } from "../core/result.js";

export const appleDart: IommuDriver = {
  name: "apple-dart",
  defaults: {
    addressWidth: 36, pageSizes: [16384], snoopControl: false,
    dirtyTracking: false, nesting: false, domainIds: 16, cpuPageSize: 16384,
  },
  bindsToInstance: true,
  checkAlloc: (config, unit) => unitSupports(config, unit, { dirty: false, nesting: false }),
  finalise: () => OK,
  attachDev({ unit, domain }) {
    const pgsize = smallest(unit.capabilities.pageSizes);
    if (pgsize > unit.capabilities.cpuPageSize) {
      return fail("page-size", `${unit.name} page size ${pgsize} exceeds the CPU page size ${unit.capabilities.cpuPageSize} (domain ${domain.id})`);
    }
    return OK;
  },
};
