// Checks several drivers share, named after the rule they implement. Like the
// drivers, they read only the contract (core/driver.ts). The ID counts come
// from the read-only usage view, derived from the model: freeing a domain (or
// a group's last device) gives its ID back without anything being stored.
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

/**
 * An ID space of `size` IDs with `used` taken: one more is refused with the
 * allocator's reason (its errno is the catalogue's).
 */
export function takeId(used: number, size: number, reason: FixedReason, detail: string): Result<void> {
  return used >= size ? fail(reason, detail) : OK;
}

/**
 * An ID the unit spends on every domain finalised on it, held until the
 * domain is freed: its paging domains, and the default domains of its groups
 * with devices (SMMUv2 context banks, virtio-iommu domain IDs).
 */
export function checkInstanceIdAvailable(unit: Unit, usage: UnitUsage, reason: FixedReason, what: string): Result<void> {
  const size = unit.capabilities.domainIds;
  const used = usage.pagingDomainsBoundTo(unit.id) + usage.defaultDomainsOn(unit.id);
  return takeId(used, size, reason, `all ${size} ${what} of ${unit.name} are in use`);
}

/**
 * VT-d domain_attach_iommu: a paging or default domain attached to a device
 * of a unit takes one of the unit's domain IDs, refcounted per device there,
 * so none when it holds one already. attach_dev first blocks the device
 * (device_block_translation → domain_detach_iommu), which gives the ID of
 * the domain it leaves back when it was that domain's last device on the
 * unit. `current`: the domain the device leaves (null: a new device).
 */
export function checkUnitDomainId(unit: Unit, domain: Domain, current: Domain | null, usage: UnitUsage): Result<void> {
  if (usage.devicesAttachedOn(unit.id, domain.id) > 0) return OK;
  const freed = current !== null && usage.devicesAttachedOn(unit.id, current.id) === 1 ? 1 : 0;
  const size = unit.capabilities.domainIds;
  return takeId(usage.domainsAttachedOn(unit.id) - freed, size, "domain-ids-exhausted", `all ${size} domain IDs of ${unit.name} are in use`);
}
