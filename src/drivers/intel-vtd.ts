// Intel VT-d (drivers/iommu/intel/iommu.c). A paging domain is not bound to
// one DMAR unit; paging_domain_compatible() decides per unit, and every unit
// a domain is attached on spends one domain ID on it.
import { fail, OK, type IommuDriver } from "../core/driver.js";
import { sameSet, checkDomainIdAvailable } from "./rules.js";

export const intelVtd: IommuDriver = {
  name: "intel-vtd",
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
    dirtyTracking: false, nesting: false, domainIds: 65535, cpuPageSize: 4096,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  // paging_domain_compatible() checks no nesting: a nesting parent is refused
  // only at allocation (intel_iommu_domain_alloc_paging_flags, EOPNOTSUPP).
  attachDev({ unit, domain, usage }) {
    const caps = unit.capabilities;
    const cfg = domain.config;
    if (cfg.enforceCacheCoherency && !caps.snoopControl) {
      return fail("snoop-control", `domain ${domain.id} enforces cache coherency (force_snooping); ${unit.name} has no snoop control`);
    }
    if (cfg.dirtyTracking && !caps.dirtyTracking) {
      return fail("dirty-tracking", `domain ${domain.id} tracks dirty pages; ${unit.name} has no second-stage dirty tracking`);
    }
    // dmar_domain->iommu_coherency != iommu_paging_structure_coherency(iommu):
    // the page table is flushed (or not) for the unit it was built for.
    if (cfg.coherentWalk !== caps.coherentWalk) {
      return fail("iommu-coherency", `domain ${domain.id} page table is built for ${cfg.coherentWalk ? "coherent" : "non-coherent"} walks; ${unit.name} walks are ${caps.coherentWalk ? "coherent" : "non-coherent"}`);
    }
    if (!sameSet(cfg.pageSizes, caps.pageSizes)) {
      return fail("page-size", `domain ${domain.id} superpage sizes differ from ${unit.name}'s`);
    }
    // use_first_level && (!sm_supported(iommu) || !ecap_flts(iommu->ecap)).
    if (cfg.firstStage && !caps.firstStage) {
      return fail("first-stage", `domain ${domain.id} is a first-stage page table; ${unit.name} has no first-stage translation`);
    }
    if (cfg.addressWidth > caps.addressWidth) {
      return fail("address-width", `domain ${domain.id} is ${cfg.addressWidth}-bit; ${unit.name} translates ${caps.addressWidth} bits`);
    }
    return checkDomainIdAvailable(unit, domain, usage);
  },
  // The static identity domain (identity_domain_attach_dev) sets up pass-through
  // without a check of its own: a unit without pass-through support (no
  // ECAP.PT) makes device_def_domain_type() answer IOMMU_DOMAIN_DMA, and
  // iommu_get_default_domain_type() then refuses an identity domain, which
  // iommu_setup_default_domain() answers with -EINVAL.
  identityDomain: {
    attachDev({ unit, device }) {
      return unit.capabilities.bypass ? OK
        : fail("bypass-unsupported", `${unit.name} has no pass-through translation; ${device.name} cannot use the identity domain`);
    },
  },
  // blocking_domain_attach_dev: never refused.
  blockedDomain: {},
};
