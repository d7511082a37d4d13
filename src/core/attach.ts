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
import type { IommuDriver } from "./driver.js";
import type { Device, Domain, Fault, Group, Unit } from "./entities.js";
import { isErrnoName } from "./errno.js";
import { checkReservedRegions } from "./iova.js";
import { lookupDriver } from "./lookup.js";
import type { Model } from "./model.js";
import { asKernelAnswers, kernelProfile } from "./profiles.js";
import { driverFailure, fail, failure, ok, OK, withIds, type ErrnoError, type Result } from "./result.js";

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
 * The core's own refusals, before any driver op: __iommu_device_set_domain
 * refuses a blocked domain (or the group's blocking domain) to a device
 * whose firmware asked for 1:1 mappings (dev->iommu->require_direct), and
 * iommu_get_default_domain_type refuses an identity domain to a group with
 * an untrusted device (the only way the kernel puts a group on an identity
 * domain is as its default domain). Neither device can ever take a domain
 * of that type: hard EINVALs.
 */
function checkCoreRules(device: Device, domain: Domain): Result<void> {
  if (domain.type === "blocked" && device.flags.requiresIdentity) {
    return fail("requires-identity", `${device.name} has firmware-reserved regions and needs a 1:1 mapping; it cannot be blocked`);
  }
  if (domain.type === "identity" && device.flags.untrusted) {
    return fail("untrusted-device", `${device.name} is untrusted (external-facing); it cannot bypass translation`);
  }
  return OK;
}

/** attach_dev of one of the driver's static domains (a group's blocking domain is the blocked one). */
function attachStatic(driver: IommuDriver, unit: Unit, device: Device, domain: Domain): Result<void> {
  const ops = domain.type === "identity" ? driver.identityDomain : driver.blockedDomain;
  // A group's blocking domain on a driver without a static blocked domain is
  // an empty paging domain the driver accepts (__iommu_group_alloc_blocking_domain).
  // An identity domain of a driver without one is a row stored before static
  // domains existed: nothing in the kernel could attach it.
  if (!ops) return domain.type === "identity" ? fail("unsupported", `${driver.name} has no identity domain`) : OK;
  return ops.attachDev ? ops.attachDev({ unit, device }) : OK;
}

/**
 * One device's attach_dev against `domain` (already bound as far as earlier
 * devices of the same group went). Returns the domain as the driver leaves it.
 * `mustSucceed`: returning a group to its core domain (detach, release) is
 * done with IOMMU_SET_DOMAIN_MUST_SUCCEED in the kernel; the simulated
 * hardware state (an offline unit, a faulty device, injected faults) is not
 * consulted there, so a detach succeeds even on a unit gone offline. A rule
 * that still refuses is the caller's to turn into a warning (returnToCoreDomain).
 */
function attachDev(model: Model, unit: Unit, device: Device, domain: Domain, current: Domain, mode: AttachMode, mustSucceed: boolean): Result<Domain> {
  const allowed = checkCoreRules(device, domain);
  if (!allowed.ok) return allowed;
  if (!mustSucceed) {
    if (!unit.online) return fail("unit-offline", `${unit.name} is offline`);
    if (device.faulty) return fail("device-faulty", `${device.name} is faulty`);
    const fault = pendingFault(model, unit, device);
    if (fault) {
      if (mode === "commit") consumeFault(model, fault);
      const raw = isErrnoName(fault.errno) ? fault.errno : "ENODEV";
      return driverFailure(raw, "injected-fault", `injected ${fault.errno} on ${fault.deviceId !== null ? device.name : unit.name}`);
    }
  }
  if (domain.type === "dma") return ok(domain);
  const found = lookupDriver(model, unit.driver);
  if (!found.ok) return found;
  const driver = found.value;
  // The driver's refusals, as the host's kernel answers them.
  const refused = (error: ErrnoError): Result<Domain> => ({ ok: false, error: asKernelAnswers(kernelProfile(model.host().kernelProfile), unit.driver, error) });
  if (domain.type !== "paging") {
    const attached = attachStatic(driver, unit, device, domain);
    return attached.ok ? ok(domain) : refused(attached.error);
  }
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
export function checkGroupAttach(model: Model, group: Group, domain: Domain, mode: AttachMode): Result<Domain> {
  // iommufd_hw_pagetable_attach reserves the devices' regions in the container before any driver op.
  const reserved = checkReservedRegions(model, group, domain);
  const r = reserved.ok ? checkDevices(model, group, domain, mode, false) : reserved;
  return r.ok ? ok(r.value.bound) : { ok: false, error: withIds(r.error, { groupId: group.id, domainId: domain.id }) };
}

/** What the devices of a group make of `domain`; with `mustSucceed`, a device's refusal is kept as `refused` and the next device tried. */
interface Checked {
  readonly bound: Domain;
  readonly refused: ErrnoError | null;
}

function checkDevices(model: Model, group: Group, domain: Domain, mode: AttachMode, mustSucceed: boolean): Result<Checked> {
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
  // stopping at the first refusal (a must-succeed move goes on).
  const unwinds = kernelProfile(model.host().kernelProfile).unwindsPartialAttach;
  const current = model.get("domain", group.domainId)!;
  let bound = domain;
  let refused: ErrnoError | null = null;
  for (const [i, device] of devices.entries()) {
    const r = attachDev(model, unit, device, bound, current, mode, mustSucceed);
    if (r.ok) {
      bound = r.value;
      continue;
    }
    const error = withIds(r.error, { deviceId: device.id });
    if (!mustSucceed) {
      if (unwinds || i === 0) return { ok: false, error };
      return { ok: false, error: { ...error, stranded: { domainId: domain.id, deviceIds: devices.slice(0, i).map((d) => d.id) } } };
    }
    refused ??= error;
  }
  return ok({ bound, refused });
}

/**
 * The group back on its core domain (blocking while owned, else default):
 * the result of detach, container detach and release.
 */
export interface CoreReturn {
  readonly changed: boolean;
  readonly domainId: number;
  /**
   * A refusal the move met and overrode, as the kernel WARNs and goes on
   * (the service logs it, answers it and records it on the event).
   */
  readonly warning: ErrnoError | null;
}

/**
 * __iommu_group_set_core_domain / __iommu_release_dma_ownership: both go
 * through __iommu_group_set_domain_nofail (IOMMU_SET_DOMAIN_MUST_SUCCEED).
 * It never fails: __iommu_group_set_domain_internal keeps trying the other
 * devices after a refusal and records the group on the new domain anyway,
 * and the caller WARNs. The service does the same and reports the first
 * refusal as the warning. Claims, device joins and flag changes keep a
 * group out of such a state (a requires-identity device is never in an
 * owned group), so a warning means state stored before those rules.
 */
export function returnToCoreDomain(model: Model, group: Group): CoreReturn {
  const target = model.get("domain", coreDomainId(group))!;
  if (group.domainId === target.id) return { changed: false, domainId: target.id, warning: null };
  const r = checkDevices(model, group, target, "commit", true);
  const refused = r.ok ? r.value.refused : r.error;
  move(model, group, target, r.ok ? r.value.bound : target);
  return { changed: true, domainId: target.id, warning: refused && withIds(refused, { groupId: group.id, domainId: target.id }) };
}

/**
 * __iommu_group_set_domain: move the group, all or nothing. Attaching the
 * domain the group already has is a no-op without a driver call.
 */
export function setGroupDomain(model: Model, group: Group, domain: Domain): Result<{ changed: boolean }> {
  if (group.domainId === domain.id) return ok({ changed: false });
  const checked = checkGroupAttach(model, group, domain, "commit");
  if (!checked.ok) {
    if (checked.error.stranded) strand(model, group, domain, checked.error.stranded.deviceIds);
    return checked;
  }
  move(model, group, domain, checked.value);
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

/** Put the group on `domain`, storing the domain as binding left it (`bound`). */
function move(model: Model, group: Group, domain: Domain, bound: Domain): void {
  if (bound !== domain) model.put("domain", bound);
  model.put("group", { ...group, domainId: domain.id });
  // Every device went through attach_dev: none is left elsewhere, and an
  // automatic domain only strands kept alive goes now.
  const left = new Set<number>();
  for (const device of model.devicesOf(group.id)) {
    if (device.strandedOnDomainId === null) continue;
    left.add(device.strandedOnDomainId);
    model.put("device", { ...device, strandedOnDomainId: null });
  }
  freeIfUnusedAuto(model, group.domainId);
  for (const domainId of left) freeIfUnusedAuto(model, domainId);
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

/** iommufd frees an automatic domain once nothing is attached to it (no group, no PASID, no stranded device). */
export function freeIfUnusedAuto(model: Model, domainId: number): void {
  const domain = model.get("domain", domainId);
  if (domain?.auto && model.attachedGroupCount(domainId) === 0 && model.pasidCountOfDomain(domainId) === 0 && model.strandedDeviceCount(domainId) === 0) {
    model.remove("domain", domainId);
  }
}
