// Checks several drivers share, named after the rule they implement. Like the
// drivers, they read only the contract (core/driver.ts).
import { fail, OK, type Domain, type FixedReason, type Result, type Unit, type UnitUsage } from "../core/driver.js";

export { OK };

export function sameSet(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

export function smallest(sizes: readonly number[]): number {
  return Math.min(...sizes);
}

/** Finalisation that consumes one of the unit's ASIDs / context banks. */
export function checkInstanceIdAvailable(unit: Unit, usage: UnitUsage, reason: FixedReason, what: string): Result<void> {
  const used = usage.pagingDomainsBoundTo(unit.id);
  if (used >= unit.capabilities.domainIds) {
    return fail(reason, `all ${unit.capabilities.domainIds} ${what} of ${unit.name} are in use`);
  }
  return OK;
}

/** A domain attached on a unit for the first time takes one of its domain IDs. */
export function checkDomainIdAvailable(unit: Unit, domain: Domain, usage: UnitUsage): Result<void> {
  if (usage.isPagingDomainAttachedOn(unit.id, domain.id)) return OK;
  const used = usage.pagingDomainsAttachedOn(unit.id);
  if (used >= unit.capabilities.domainIds) {
    return fail("domain-ids-exhausted", `all ${unit.capabilities.domainIds} domain IDs of ${unit.name} are in use`);
  }
  return OK;
}
