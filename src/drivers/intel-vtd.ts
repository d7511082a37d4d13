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
    // Interrupt remapping: intel_setup_irq_remapping() gives the unit's IR
    // domain IRQ_DOMAIN_FLAG_ISOLATED_MSI.
    isolatedMsi: true,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  // The first device's probe attaches the default domain (dmar_domain_attach_device).
  setupDefaultDomain: ({ unit, domain, attached, usage }) => (attached ? checkUnitDomainId(unit, domain, null, usage) : OK),
  // paging_domain_compatible() checks no nesting: a nesting parent is refused
  // only at allocation (intel_iommu_domain_alloc_paging_flags, EOPNOTSUPP).
  attachDev({ unit, domain, current, usage }) {
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
    return checkUnitDomainId(unit, domain, current, usage);
  },
  // intel_iommu_set_dev_pasid() for paging domains, identity_domain_set_dev_pasid()
  // and blocking_domain_set_dev_pasid() for the static ones.
  pasid: {
    domainTypes: ["paging", "identity", "blocked"],
    setDevPasid(ctx) {
      const { unit, domain } = ctx;
      // The static domains refuse nothing modelled here (pasid_supported()
      // is the unit's: behind a unit without it a device takes no PASID);
      // a default domain is the group's own, shaped like its unit.
      if (domain.type !== "paging") return OK;
      if (domain.config.dirtyTracking) {
        return fail("pasid-incompatible", `domain ${domain.id} tracks dirty pages; ${unit.name} attaches no dirty-tracking domain to a PASID`);
      }
      // paging_domain_compatible() and domain_attach_iommu(), as attach_dev.
      return intelVtd.attachDev(ctx);
    },
  },
  // intel_iommu_capable(): coherent always; no-snoop blocked where the unit
  // has snoop control (ecap_sc_support); dirty tracking where it has
  // second-stage A/D bits (ssads_supported).
  capable({ unit }, cap) {
    switch (cap) {
      case "cache-coherency": return true;
      case "enforce-cache-coherency": return unit.capabilities.snoopControl;
      case "dirty-tracking": return unit.capabilities.dirtyTracking;
    }
  },
  // intel_iommu_enforce_cache_coherency(): a force-snooping domain stays so;
  // otherwise every unit it serves must have snoop control
  // (domain_support_force_snooping). Its refusal once the domain has
  // mappings is not modelled (mappings are not).
  enforceCacheCoherency: ({ domain, attached }) =>
    domain.config.enforceCacheCoherency || attached.every(({ unit }) => unit.capabilities.snoopControl),
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
