// ARM SMMUv3 (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c). A domain is
// finalised on one SMMU (arm_smmu_domain_finalise), at allocation for a
// device or else at its first attach: a stage-1 domain takes an ASID from one
// xarray shared by every SMMU (arm_smmu_domain_finalise_s1: xa_alloc on
// arm_smmu_asid_xa with XA_LIMIT(1, this SMMU's ASID range), -EBUSY when
// full), a stage-2 (nesting-parent) domain a VMID from this SMMU's own ida
// (arm_smmu_domain_finalise_s2, -ENOSPC). Default domains are stage 1. The
// static identity and blocked domains take neither. arm_smmu_attach_prepare()
// refuses coherency it cannot give.
import { fail, type IommuDriver, type Unit, type UnitUsage } from "../core/driver.js";
import { OK, takeId } from "./rules.js";

const NAME = "arm-smmu-v3";

/**
 * The shared ASID space: every stage-1 domain finalised on any SMMUv3, and
 * every default domain of a group with devices. The kernel looks for a free
 * ASID within this SMMU's range; the count stands for it (docs/semantics.md
 * §4 D26: exact while every SMMU has the same range).
 */
function takeAsid(unit: Unit, usage: UnitUsage) {
  const used = usage.unitsOf(NAME).reduce(
    (n, u) => n + usage.pagingDomainsBoundTo(u.id) - usage.nestParentsBoundTo(u.id) + usage.defaultDomainsOn(u.id), 0);
  const size = unit.capabilities.domainIds;
  return takeId(used, size, "asids-exhausted", `all ${size} ASIDs ${unit.name} can use are taken (${used} in use across every SMMUv3)`);
}

function takeVmid(unit: Unit, usage: UnitUsage) {
  const size = unit.capabilities.domainIds;
  return takeId(usage.nestParentsBoundTo(unit.id), size, "vmids-exhausted", `all ${size} VMIDs of ${unit.name} are in use`);
}

export const armSmmuV3: IommuDriver = {
  name: NAME,
  defaults: {
    addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
    dirtyTracking: false, nesting: true, domainIds: 65536, cpuPageSize: 4096,
    // SMMUv3 servers route MSIs through a GICv3 ITS, whose domain is
    // IRQ_DOMAIN_FLAG_ISOLATED_MSI (its_node_init()).
    isolatedMsi: true,
    coherentWalk: true, firstStage: true, bypass: true,
  },
  allocFlags: { dirtyTracking: true, nestParent: true },
  finaliseAt: "allocation",
  finalise: ({ domain, unit, usage }) => (domain.config.nestParent ? takeVmid(unit, usage) : takeAsid(unit, usage)),
  setupDefaultDomain: ({ unit, usage }) => takeAsid(unit, usage),
  attachDev({ device, domain, usage }) {
    if (domain.config.enforceCacheCoherency && !device.flags.canwbs) {
      return fail("cache-coherency", `domain ${domain.id} enforces cache coherency; ${device.name} lacks CANWBS`);
    }
    // arm_smmu_ssids_in_use(): PASIDs set to a domain use CDs of the table a
    // stage-2 STE would drop (a PASID on the blocked domain has none).
    if (domain.config.nestParent && usage.pasidsOn(device.id).some((p) => p.domainType !== "blocked")) {
      return fail("pasid-in-use", `${device.name} has PASIDs in use; a stage-2 domain cannot replace its CD table`);
    }
    return OK;
  },
  // arm_smmu_s1_set_dev_pasid() and arm_smmu_set_pasid() for paging domains;
  // the blocked domain's arm_smmu_blocking_set_dev_pasid(); the identity
  // domain (arm_smmu_identity_ops) has none.
  pasid: {
    domainTypes: ["paging", "blocked"],
    setDevPasid({ device, domain, groupDomain }) {
      if (domain.type === "blocked") return OK;
      if (domain.config.nestParent) {
        return fail("pasid-incompatible", `domain ${domain.id} is a stage-2 (nesting parent) domain; only a stage-1 domain can be attached to a PASID`);
      }
      // The STE points at a CD table only for a stage-1, identity or blocked RID domain.
      if (groupDomain.type === "paging" && groupDomain.config.nestParent) {
        return fail("no-pasid-table", `${device.name} is on stage-2 domain ${groupDomain.id}, whose STE has no CD table for PASIDs`);
      }
      // arm_smmu_attach_prepare(), as for the RID
      if (domain.config.enforceCacheCoherency && !device.flags.canwbs) {
        return fail("cache-coherency", `domain ${domain.id} enforces cache coherency; ${device.name} lacks CANWBS`);
      }
      return OK;
    },
  },
  // arm_smmu_capable(): coherent when the SMMU is (ARM_SMMU_FEAT_COHERENCY,
  // snoopControl here); no-snoop blocked for a CANWBS device
  // (arm_smmu_master_canwbs); dirty tracking with HTTU on a coherent SMMU
  // (arm_smmu_dbm_capable: ARM_SMMU_FEAT_HD and ARM_SMMU_FEAT_COHERENCY).
  capable({ unit, device }, cap) {
    switch (cap) {
      case "cache-coherency": return unit.capabilities.snoopControl;
      case "enforce-cache-coherency": return device.flags.canwbs;
      case "dirty-tracking": return unit.capabilities.dirtyTracking && unit.capabilities.snoopControl;
    }
  },
  // arm_smmu_enforce_cache_coherency(): only if every attached master is CANWBS.
  enforceCacheCoherency: ({ attached }) => attached.every(({ device }) => device.flags.canwbs),
  // arm_smmu_attach_dev_identity (a bypass STE) and arm_smmu_attach_dev_blocked
  // (an abort STE): never refused.
  identityDomain: {},
  blockedDomain: {},
};
