// Intel VT-d (drivers/iommu/intel/iommu.c). A paging domain is not bound to
// one DMAR unit; paging_domain_compatible() decides per unit, and every unit
// a paging or default DMA domain is attached on spends one domain ID on it
// (domain_attach_iommu: per-unit ida, refcounted per device, -ENOSPC when
// full). The static identity and blocking domains take none.
import { fail, OK, type IommuDriver } from "../core/driver.js";
import { sameSet, checkUnitDomainId } from "./rules.js";

export const intelVtd: IommuDriver = {
  name: "intel-vtd",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
    dirtyTracking: false, nesting: false, domainIds: 65535, cpuPageSize: 4096,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  // The first device's probe attaches the default domain (dmar_domain_attach_device).
  setupDefaultDomain: ({ unit, domain, attached, usage }) => (attached ? checkUnitDomainId(unit, domain, null, usage) : OK),
  attachDev({ unit, domain, current, usage }) {
    const caps = unit.capabilities;
    const cfg = domain.config;
    if (cfg.enforceCacheCoherency && !caps.snoopControl) {
      return fail("snoop-control", `domain ${domain.id} enforces cache coherency (force_snooping); ${unit.name} has no snoop control`);
    }
    if (cfg.dirtyTracking && !caps.dirtyTracking) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${unit.name} has no second-stage dirty tracking`);
    }
    if (cfg.addressWidth > caps.addressWidth) {
      return fail("address-width", `domain ${domain.id} is ${cfg.addressWidth}-bit; ${unit.name} translates ${caps.addressWidth} bits`);
    }
    if (!sameSet(cfg.pageSizes, caps.pageSizes)) {
      return fail("page-size", `domain ${domain.id} superpage sizes differ from ${unit.name}'s`);
    }
    if (cfg.nestParent && !caps.nesting) {
      return fail("nesting", `domain ${domain.id} is a nesting parent; ${unit.name} cannot nest`);
    }
    return checkUnitDomainId(unit, domain, current, usage);
  },
};
