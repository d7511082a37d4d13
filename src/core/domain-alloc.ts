// What the core does with a driver's data when a paging domain is allocated:
// the driver's domain_alloc_paging_flags() refuses a flag it does not
// implement, or one the unit's hardware lacks (intel_iommu_domain_alloc_paging_flags
// without SSADS, arm_smmu_domain_alloc_paging_flags without HTTU), with
// EOPNOTSUPP. Each driver declares its flags (IommuDriver.allocFlags); the
// check is one, here.
import type { Domain, DomainConfig, Unit } from "./entities.js";
import type { IommuDriver } from "./driver.js";
import type { Model } from "./model.js";
import { fail, OK, type Result } from "./result.js";


/** Can the driver (and the unit, when the domain is allocated for one) give this configuration at all? */
export function checkAllocFlags(driver: IommuDriver, config: DomainConfig, unit: Unit | null): Result<void> {
  const flags = driver.allocFlags;
  if (config.dirtyTracking && (!flags.dirtyTracking || (unit && !unit.capabilities.dirtyTracking))) {
    return fail("unsupported", "dirty tracking is not supported" + (unit ? ` by unit ${unit.name}` : " by this driver"));
  }
  if (config.nestParent && (!flags.nestParent || (unit && !unit.capabilities.nesting))) {
    return fail("unsupported", "nesting parent domains are not supported" + (unit ? ` by unit ${unit.name}` : " by this driver"));
  }
  return OK;
}

/** Finalise `domain` on `unit` if the driver binds domains to an instance; else nothing to do. */
export function finaliseOn(model: Model, driver: IommuDriver, domain: Domain, unit: Unit): Result<void> {
  return driver.finalise ? driver.finalise({ unit, domain, usage: model.usage }) : OK;
}
