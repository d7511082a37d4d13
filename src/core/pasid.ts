// PASID attachments: iommu_attach_device_pasid() and
// iommu_detach_device_pasid() of drivers/iommu/iommu.c. A PASID is the
// group's (group->pasid_array): attached through one device, it is set on
// every device of the group that takes PASIDs and taken for the whole group.
import { checkCreator, checkOwner } from "./access.js";
import { consumeFault, freeIfUnusedAuto, isAnotherGroupsCoreDomain, pendingFault } from "./attach.js";
import type { Caller } from "./caller.js";
import { finaliseOn } from "./domain-alloc.js";
import type { IommuDriver } from "./driver.js";
import { PasidAttachment, type Device, type Domain, type Group, type Unit } from "./entities.js";
import { isErrnoName } from "./errno.js";
import { recordAttempt } from "./events.js";
import { lookup, lookupDriver } from "./lookup.js";
import type { Model } from "./model.js";
import { driverFailure, fail, ok, withIds, type Result } from "./result.js";

/** IOMMU_NO_PASID: the device's requests without a PASID, which the group's own domain translates. */
export const NO_PASID = 0;

/** The device, its group, if the caller may change the group (an owned group's PASIDs are its owner's, §4 D5). */
function ownedDevice(model: Model, caller: Caller, deviceId: number): Result<{ device: Device; group: Group }> {
  const device = lookup(model, "device", deviceId);
  if (!device.ok) return device;
  const group = model.get("group", device.value.groupId)!;
  const owner = checkOwner(group, caller);
  return owner.ok ? ok({ device: device.value, group }) : owner;
}

/** The group's attachment of `pasid`, if any (xa_load on group->pasid_array). */
export function groupPasid(model: Model, groupId: number, pasid: number): PasidAttachment | undefined {
  return model.pasidAttachmentsOfGroup(groupId).find((a) => a.pasid === pasid);
}

function attach(model: Model, caller: Caller, deviceId: number, pasid: number, domainId: number): Result<PasidAttachment> {
  const found = ownedDevice(model, caller, deviceId);
  if (!found.ok) return found;
  const { group } = found.value;
  const domain = lookup(model, "domain", domainId);
  if (!domain.ok) return domain;
  const usable = checkCreator("domain", domain.value, caller);
  if (!usable.ok) return usable;
  const unit = model.get("unit", group.unitId)!;
  const driver = lookupDriver(model, unit.driver);
  if (!driver.ok) return driver;
  const d = domain.value;

  // !domain->ops->set_dev_pasid (the domain's driver's ops for its type) ||
  // !ops->blocked_domain->ops->set_dev_pasid (the device's driver) → -EOPNOTSUPP
  const domainDriver = lookupDriver(model, d.driver);
  if (!domainDriver.ok) return domainDriver;
  const opsType = d.type === "dma" ? "paging" : d.type;
  const domainOps = domainDriver.value.pasid;
  const deviceOps = driver.value.pasid;
  const unsupported = !domainOps ? `${d.driver} has no PASID support (no set_dev_pasid)`
    : !domainOps.domainTypes.includes(opsType) ? `${opsType} domains of ${d.driver} have no set_dev_pasid`
      : !deviceOps?.domainTypes.includes("blocked") ? `${unit.driver} has no PASID support (no set_dev_pasid)` : null;
  if (unsupported) return fail("unsupported", `${unsupported}: domain ${d.id} cannot be attached to a PASID`, { domainId });
  // !domain_iommu_ops_compatible(ops, domain) || pasid == IOMMU_NO_PASID → -EINVAL
  if (d.driver !== unit.driver) {
    return fail("different-driver", `domain ${d.id} belongs to ${d.driver}; group ${group.name} is behind ${unit.driver} unit ${unit.name}`, { domainId });
  }
  if (pasid === NO_PASID) {
    return fail("pasid-out-of-range", "PASID 0 is IOMMU_NO_PASID, the device's requests without a PASID: attach the device to a domain instead");
  }
  if (isAnotherGroupsCoreDomain(model, group, d)) {
    return fail("domain-not-attachable", `domain ${d.id} is the ${d.type === "dma" ? "default" : "blocking"} domain of another group`, { domainId });
  }
  // Each device that takes PASIDs must take this one; a device that takes
  // none never issues a PASID and is skipped (since v6.15).
  const devices = model.devicesOf(group.id);
  for (const device of devices) {
    if (device.maxPasids > 0 && pasid >= device.maxPasids) {
      return fail("pasid-out-of-range", `${device.name} takes PASIDs below ${device.maxPasids} (max_pasids), not ${pasid}`, { deviceId: device.id });
    }
  }
  // xa_insert() on group->pasid_array: an entry present → -EBUSY
  const taken = groupPasid(model, group.id, pasid);
  if (taken) {
    return fail("pasid-attached", `PASID ${pasid} of group ${group.name} is attached to domain ${taken.domainId}; detach it first`, { domainId: taken.domainId });
  }
  // __iommu_set_group_pasid(): set_dev_pasid on each device that takes PASIDs.
  const groupDomain = model.get("domain", group.domainId)!;
  let bound = d;
  for (const device of devices) {
    if (device.maxPasids === 0) continue;
    const r = setDevPasid(model, driver.value, unit, device, bound, groupDomain, pasid);
    if (!r.ok) return { ok: false, error: withIds(r.error, { deviceId: device.id }) };
    bound = r.value;
  }
  if (bound !== d) model.put("domain", bound);
  const attachment = PasidAttachment.make({ id: model.allocateId("pasid"), deviceId, pasid, domainId });
  model.put("pasid", attachment);
  return ok(attachment);
}

/**
 * One device's set_dev_pasid, with what the core adds around a driver op:
 * the simulated hardware state (§4 D10) and, on a driver that binds its
 * domains, the instance check and finalisation attach_dev would make.
 * Returns the domain as binding leaves it.
 */
function setDevPasid(
  model: Model, driver: IommuDriver, unit: Unit, device: Device, domain: Domain, groupDomain: Domain, pasid: number,
): Result<Domain> {
  if (!unit.online) return fail("unit-offline", `${unit.name} is offline`);
  if (device.faulty) return fail("device-faulty", `${device.name} is faulty`);
  const fault = pendingFault(model, unit, device);
  if (fault) {
    consumeFault(model, fault);
    const raw = isErrnoName(fault.errno) ? fault.errno : "ENODEV";
    return driverFailure(raw, "injected-fault", `injected ${fault.errno} on ${fault.deviceId !== null ? device.name : unit.name}`);
  }
  let bound = domain;
  if (domain.type === "paging" && driver.finalise) {
    if (domain.unitId !== null && domain.unitId !== unit.id) {
      const other = model.get("unit", domain.unitId);
      return fail("different-instance", `domain ${domain.id} is finalised on ${other?.name ?? `unit ${domain.unitId}`}, ${device.name} is behind ${unit.name}`);
    }
    if (domain.unitId === null) {
      const finalised = finaliseOn(model, driver, domain, unit);
      if (!finalised.ok) return finalised;
      bound = { ...domain, unitId: unit.id };
    }
  }
  // The device's RID stays where it is: a PASID attach leaves no domain, so
  // `current` is the domain itself (VT-d's domain_add_dev_pasid then takes a
  // domain ID for it like attach_dev would, none when it holds one there).
  const r = driver.pasid!.setDevPasid({ unit, device, domain: bound, current: bound, usage: model.usage, pasid, groupDomain });
  return r.ok ? ok(bound) : r;
}

/**
 * iommu_detach_device_pasid(): never fails in the kernel once the PASID is
 * attached; the PASID leaves every device of the group. A PASID the group
 * does not have is ENOENT (the kernel's callers never ask).
 */
function detach(model: Model, caller: Caller, deviceId: number, pasid: number): Result<PasidAttachment> {
  const found = ownedDevice(model, caller, deviceId);
  if (!found.ok) return found;
  const { device, group } = found.value;
  const attachment = groupPasid(model, group.id, pasid);
  if (!attachment) return fail("no-such-pasid", `PASID ${pasid} is not attached on ${device.name}'s group ${group.name}`);
  model.remove("pasid", attachment.id);
  // iommufd frees an automatic domain with its last user, a PASID's too.
  freeIfUnusedAuto(model, attachment.domainId);
  return ok(attachment);
}

export function attachPasid(model: Model, caller: Caller, deviceId: number, pasid: number, domainId: number): Result<PasidAttachment> {
  const result = attach(model, caller, deviceId, pasid, domainId);
  return recordAttempt(model, "attach-pasid", caller, { deviceId, domainId, groupId: model.get("device", deviceId)?.groupId }, result);
}

export function detachPasid(model: Model, caller: Caller, deviceId: number, pasid: number): Result<PasidAttachment> {
  const result = detach(model, caller, deviceId, pasid);
  return recordAttempt(model, "detach-pasid", caller, { deviceId, groupId: model.get("device", deviceId)?.groupId }, result,
    result.ok ? result.value.domainId : undefined);
}
