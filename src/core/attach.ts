// Moving a group between domains: the per-device attach_dev path and the
// group-level __iommu_group_set_domain() of drivers/iommu/iommu.c.
//
// All devices are checked before anything changes, so a failed group attach
// leaves no trace but the injected faults it consumed (the kernel gets the
// same all-or-nothing by putting devices back on the old domain, since v6.5).
// On a kernel-version profile without that unwind (src/core/profiles.ts) the
// devices before the failing one stay on the new domain, as
// __iommu_group_for_each_dev() left them: that survives the refusal, like a
// consumed fault. A driver's refusal is answered with the code the profile's
// kernel returned for it.
import { finaliseOn } from "./domain-alloc.js";
import type { Device, Domain, Fault, Group, Unit } from "./entities.js";
import { isErrnoName } from "./errno.js";
import { checkReservedRegions } from "./iova.js";
import { lookupDriver } from "./lookup.js";
import type { Model } from "./model.js";
import { asKernelAnswers, kernelProfile } from "./profiles.js";
import { driverFailure, fail, failure, ok, withIds, type ErrnoError, type Result } from "./result.js";

/** Probe: report what an attach would do and change nothing (the dry run). */
export type AttachMode = "commit" | "probe";

/** The injected fault that the next driver op on this device would hit. */
export function pendingFault(model: Model, unit: Unit, device: Device): Fault | undefined {
  return model.faultsOn({ deviceId: device.id })[0] ?? model.faultsOn({ unitId: unit.id })[0];
}

export function consumeFault(model: Model, fault: Fault): void {
  const remaining = fault.remaining - 1;
  model.putSurvivingRollback("fault", remaining > 0 ? { ...fault, remaining } : null, fault.id);
}

/**
 * One device's attach_dev against `domain` (already bound as far as earlier
 * devices of the same group went). Returns the domain as the driver leaves it.
 * `mustSucceed`: returning a group to its core domain (detach, release) is
 * done with IOMMU_SET_DOMAIN_MUST_SUCCEED in the kernel: only the core's own
 * rule (a device needing identity mappings cannot be blocked) applies, never
 * the driver's, so a detach succeeds even on a unit gone offline.
 */
function attachDev(model: Model, unit: Unit, device: Device, domain: Domain, current: Domain, mode: AttachMode, mustSucceed: boolean): Result<Domain> {
  if (domain.type === "blocked" && device.flags.requiresIdentity) {
    return fail("requires-identity", `${device.name} has firmware-reserved regions and needs a 1:1 mapping; it cannot be blocked`);
  }
  if (mustSucceed) return ok(domain);
  if (!unit.online) return fail("unit-offline", `${unit.name} is offline`);
  if (device.faulty) return fail("device-faulty", `${device.name} is faulty`);
  const fault = pendingFault(model, unit, device);
  if (fault) {
    if (mode === "commit") consumeFault(model, fault);
    const raw = isErrnoName(fault.errno) ? fault.errno : "ENODEV";
    return driverFailure(raw, "injected-fault", `injected ${fault.errno} on ${fault.deviceId !== null ? device.name : unit.name}`);
  }
  if (domain.type !== "paging") return ok(domain);
  const found = lookupDriver(model, unit.driver);
  if (!found.ok) return found;
  const driver = found.value;
  // The driver's refusals, as the host's kernel answers them.
  const refused = (error: ErrnoError): Result<Domain> => ({ ok: false, error: asKernelAnswers(kernelProfile(model.host().kernelProfile), unit.driver, error) });
  let bound = domain;
  // A driver with a finalise op binds a domain to one instance.
  if (driver.finalise) {
    if (domain.unitId !== null && domain.unitId !== unit.id) {
      const other = model.get("unit", domain.unitId);
      return refused(failure("different-instance", `domain ${domain.id} is finalised on ${other?.name ?? `unit ${domain.unitId}`}, ${device.name} is behind ${unit.name}`));
    }
    if (domain.unitId === null) {
      const finalised = finaliseOn(model, driver, domain, unit);
      if (!finalised.ok) return refused(finalised.error);
      bound = { ...domain, unitId: unit.id };
    }
  }
  const attached = driver.attachDev({ unit, device, domain: bound, current, usage: model.usage });
  return attached.ok ? ok(bound) : refused(attached.error);
}

/**
 * Would every device of the group accept `domain`? Checks only: on success it
 * returns the domain as binding leaves it, without storing anything.
 */
export function checkGroupAttach(model: Model, group: Group, domain: Domain, mode: AttachMode, mustSucceed = false): Result<Domain> {
  // iommufd_hw_pagetable_attach reserves the devices' regions in the container before any driver op.
  const reserved = checkReservedRegions(model, group, domain);
  const r = reserved.ok ? checkDevices(model, group, domain, mode, mustSucceed) : reserved;
  return r.ok ? r : { ok: false, error: withIds(r.error, { groupId: group.id, domainId: domain.id }) };
}

function checkDevices(model: Model, group: Group, domain: Domain, mode: AttachMode, mustSucceed: boolean): Result<Domain> {
  const unit = model.get("unit", group.unitId)!;
  if (domain.driver !== unit.driver) {
    return fail("different-driver", `domain ${domain.id} belongs to ${domain.driver}; group ${group.name} is behind ${unit.driver} unit ${unit.name}`);
  }
  if (isAnotherGroupsCoreDomain(model, group, domain)) {
    return fail("domain-not-attachable", `domain ${domain.id} is the ${domain.type === "dma" ? "default" : "blocking"} domain of another group`);
  }
  const devices = model.devicesOf(group.id);
  // The kernel has no empty groups (a group goes with its last device, and
  // __iommu_attach_group asks its first device for the driver): with no
  // device there is no driver to bind the domain or count its ID, so only
  // the group's own core domains are reachable.
  const ownCore = domain.id === group.defaultDomainId || domain.id === group.blockingDomainId;
  if (devices.length === 0 && !ownCore) {
    return fail("group-empty", `group ${group.name} has no devices; add one before attaching it to domain ${domain.id}`);
  }
  // __iommu_group_for_each_dev(): device by device, in the order they joined,
  // stopping at the first refusal.
  const unwinds = kernelProfile(model.host().kernelProfile).unwindsPartialAttach;
  const current = model.get("domain", group.domainId)!;
  let bound = domain;
  for (const [i, device] of devices.entries()) {
    const r = attachDev(model, unit, device, bound, current, mode, mustSucceed);
    if (!r.ok) {
      const error = withIds(r.error, { deviceId: device.id });
      if (unwinds || i === 0) return { ok: false, error };
      return { ok: false, error: { ...error, stranded: { domainId: domain.id, deviceIds: devices.slice(0, i).map((d) => d.id) } } };
    }
    bound = r.value;
  }
  return ok(bound);
}

/**
 * The group's way back to its core domain (__iommu_group_set_core_domain):
 * blocking while owned, else default, and it must not fail.
 */
export function returnToCoreDomain(model: Model, group: Group): Result<{ changed: boolean; domainId: number }> {
  const target = model.get("domain", coreDomainId(group))!;
  const r = setGroupDomain(model, group, target, true);
  return r.ok ? ok({ changed: r.value.changed, domainId: target.id }) : r;
}

/**
 * __iommu_group_set_domain: move the group, all or nothing. Attaching the
 * domain the group already has is a no-op without a driver call.
 */
export function setGroupDomain(model: Model, group: Group, domain: Domain, mustSucceed = false): Result<{ changed: boolean }> {
  if (group.domainId === domain.id) return ok({ changed: false });
  const checked = checkGroupAttach(model, group, domain, "commit", mustSucceed);
  if (!checked.ok) {
    if (checked.error.stranded) strand(model, group, domain, checked.error.stranded.deviceIds);
    return checked;
  }
  if (checked.value !== domain) model.put("domain", checked.value);
  model.put("group", { ...group, domainId: domain.id });
  // Every device went through attach_dev: none is left elsewhere.
  for (const device of model.devicesOf(group.id)) {
    if (device.strandedOnDomainId !== null) model.put("device", { ...device, strandedOnDomainId: null });
  }
  freeIfUnusedAuto(model, group.domainId);
  return ok({ changed: true });
}

/**
 * A partial attach on a kernel without the unwind: the devices that passed
 * stay on the new domain (and a binding driver's domain stays finalised on
 * their instance, as arm_smmu_domain_finalise() left it), while the group
 * keeps its domain. That happened whatever the caller does next, so it
 * survives the refusal's rollback.
 */
function strand(model: Model, group: Group, domain: Domain, deviceIds: readonly number[]): void {
  if (domain.type === "paging" && domain.unitId === null && model.driver(domain.driver)?.finalise) {
    model.putSurvivingRollback("domain", { ...domain, unitId: group.unitId }, domain.id);
  }
  for (const id of deviceIds) {
    const device = model.get("device", id)!;
    model.putSurvivingRollback("device", { ...device, strandedOnDomainId: domain.id }, id);
  }
}

/** A group's default and blocking domains are its own (the kernel never shares them). */
export function isAnotherGroupsCoreDomain(model: Model, group: Group, domain: Domain): boolean {
  if (domain.id === group.defaultDomainId || domain.id === group.blockingDomainId) return false;
  return domain.type === "dma" || model.isCoreDomainOfAGroup(domain.id);
}

/** The domain a detached group returns to: blocking while owned, else default. */
export function coreDomainId(group: Group): number {
  return group.owner !== null && group.blockingDomainId !== null ? group.blockingDomainId : group.defaultDomainId;
}

export function isOnCoreDomain(group: Group): boolean {
  return group.domainId === group.defaultDomainId || group.domainId === group.blockingDomainId;
}

/** iommufd frees an automatic domain once nothing is attached to it (no group, no PASID). */
function freeIfUnusedAuto(model: Model, domainId: number): void {
  const domain = model.get("domain", domainId);
  if (domain?.auto && model.attachedGroupCount(domainId) === 0 && model.pasidCountOfDomain(domainId) === 0 && model.strandedDeviceCount(domainId) === 0) {
    model.remove("domain", domainId);
  }
}
