// What the core does with a driver's data when a paging domain is allocated:
// the driver's domain_alloc_paging_flags() refuses a flag it does not
// implement, or one the unit's hardware lacks (intel_iommu_domain_alloc_paging_flags
// without SSADS, arm_smmu_domain_alloc_paging_flags without HTTU), with
// EOPNOTSUPP; then the driver's own allocation runs (AMD's domain-ID pool,
// DART's page size) and, on a driver that finalises at allocation, the
// finalisation on the unit the domain is allocated for. Each driver declares
// its flags and timing (IommuDriver.allocFlags, allocPaging, finaliseAt); the
// sequence is one, here, for client domains and the container search alike.
import type { IommuDriver } from "./driver.js";
import type { Domain, DomainConfig, Unit } from "./entities.js";
import type { Model } from "./model.js";
import { fail, ok, OK, type Result } from "./result.js";

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

/**
 * IOMMU_HWPT_ALLOC allocates for a device (it names a dev_id), so the
 * kernel always checks dirty tracking and nesting against that device's
 * IOMMU. A domain with either flag needs the unit it is for.
 */
function checkFlagsHaveUnit(config: DomainConfig, unit: Unit | null): Result<void> {
  if (unit || (!config.dirtyTracking && !config.nestParent)) return OK;
  const what = config.dirtyTracking ? "a dirty-tracking domain" : "a nesting-parent domain";
  return fail("invalid-argument", `${what} is allocated for a device (IOMMU_HWPT_ALLOC names a dev_id): name the unitId it is for`);
}

/**
 * domain_alloc_paging(_flags) of `domain` (not yet in the model) for the
 * device of `unit`, or for none. Returns the domain as allocation leaves it:
 * bound to `unit` when the driver finalises at allocation; on a binding
 * driver that finalises only at first attach, unbound; on a driver that does
 * not bind, recording the unit it was allocated for.
 */
export function allocatePaging(model: Model, driver: IommuDriver, domain: Domain, unit: Unit | null): Result<Domain> {
  const hasUnit = checkFlagsHaveUnit(domain.config, unit);
  if (!hasUnit.ok) return hasUnit;
  const allowed = checkAllocFlags(driver, domain.config, unit);
  if (!allowed.ok) return allowed;
  if (driver.allocPaging) {
    const allocated = driver.allocPaging({ unit, config: domain.config, usage: model.usage });
    if (!allocated.ok) return allocated;
  }
  if (!driver.finalise) return ok({ ...domain, unitId: unit?.id ?? null });
  if (!unit || driver.finaliseAt !== "allocation") return ok({ ...domain, unitId: null });
  const finalised = driver.finalise({ unit, domain: { ...domain, unitId: null }, usage: model.usage });
  return finalised.ok ? ok({ ...domain, unitId: unit.id }) : finalised;
}

/** Finalise `domain` on `unit` if the driver binds domains to an instance; else nothing to do. */
export function finaliseOn(model: Model, driver: IommuDriver, domain: Domain, unit: Unit): Result<void> {
  return driver.finalise ? driver.finalise({ unit, domain, usage: model.usage }) : OK;
}
