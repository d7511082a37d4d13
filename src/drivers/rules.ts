// Checks several drivers share, named after the rule they implement.
import type { Domain, DomainConfig, Unit } from "../core/entities.js";
import type { Model } from "../core/model.js";
import { fail, ok, type Result } from "../core/result.js";
import type { FixedReason } from "../core/reasons.js";

const OK: Result<void> = ok(undefined);
export { OK };

export function sameSet(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

export function smallest(sizes: readonly number[]): number {
  return Math.min(...sizes);
}

/** Features a unit lacks cannot be requested at allocation (EOPNOTSUPP). */
export function unitSupports(config: DomainConfig, unit: Unit | null, features: { dirty: boolean; nesting: boolean }): Result<void> {
  if (config.dirtyTracking && (!features.dirty || (unit && !unit.capabilities.dirtyTracking))) {
    return fail("unsupported", "dirty tracking is not supported" + (unit ? ` by unit ${unit.name}` : " by this driver"));
  }
  if (config.nestParent && (!features.nesting || (unit && !unit.capabilities.nesting))) {
    return fail("unsupported", "nesting parent domains are not supported" + (unit ? ` by unit ${unit.name}` : " by this driver"));
  }
  return OK;
}

/** Finalisation that consumes one of the unit's ASIDs / context banks. */
export function checkInstanceIdAvailable(unit: Unit, model: Model, reason: FixedReason, what: string): Result<void> {
  const used = model.pagingDomainsBoundTo(unit.id);
  if (used >= unit.capabilities.domainIds) {
    return fail(reason, `all ${unit.capabilities.domainIds} ${what} of ${unit.name} are in use`);
  }
  return OK;
}

/** A domain attached on a unit for the first time takes one of its domain IDs. */
export function checkDomainIdAvailable(unit: Unit, domain: Domain, model: Model): Result<void> {
  if (model.isPagingDomainAttachedOn(unit.id, domain.id)) return OK;
  const used = model.pagingDomainsAttachedOn(unit.id);
  if (used >= unit.capabilities.domainIds) {
    return fail("domain-ids-exhausted", `all ${unit.capabilities.domainIds} domain IDs of ${unit.name} are in use`);
  }
  return OK;
}
