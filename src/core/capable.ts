// What the core asks a driver about capabilities: iommu_ops.capable() for a
// device (device_iommu_capable, drivers/iommu/iommu.c) and a domain's
// enforce_cache_coherency op with the devices attached to it now.
import type { IommuCap } from "./driver.js";
import type { Device, Domain, Unit } from "./entities.js";
import type { Model } from "./model.js";

/** device_iommu_capable(): false for every cap when the driver has no capable op. */
export function deviceIommuCapable(model: Model, unit: Unit, device: Device, cap: IommuCap): boolean {
  return model.driver(unit.driver)?.capable?.({ unit, device }, cap) ?? false;
}

/**
 * ops->enforce_cache_coherency(domain), asked with the devices attached to
 * the domain now (each with its unit); false when the driver has no such op.
 */
export function domainCanEnforceCoherency(model: Model, domain: Domain): boolean {
  const op = model.driver(domain.driver)?.enforceCacheCoherency;
  if (!op) return false;
  const attached = [...model.groupsAttachedTo(domain.id)].sort((a, b) => a - b).flatMap((groupId) => {
    const group = model.get("group", groupId)!;
    const unit = model.get("unit", group.unitId)!;
    return model.devicesOf(groupId).map((device) => ({ unit, device }));
  });
  return op({ domain, attached });
}
