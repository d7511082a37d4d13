// Host (kernel) drivers and DMA ownership: iommu_device_use_default_domain()
// and iommu_device_unuse_default_domain() of drivers/iommu/iommu.c, which the
// driver core calls around binding a driver that does DMA through the DMA
// API (one whose driver_managed_dma is not set; VFIO's binding is the claim).
// Each bound driver holds one count of the group's owner_cnt, as a DMA
// ownership claim does (group-moves.ts): the two exclude each other.
import type { Caller } from "./caller.js";
import type { Device, Group } from "./entities.js";
import { recordAttempt } from "./events.js";
import { lookup } from "./lookup.js";
import type { Model } from "./model.js";
import { fail, ok, OK, withIds, type Result } from "./result.js";

export interface HostDriverChange {
  readonly deviceId: number;
  /** False when the device already was bound so (or unbound). */
  readonly changed: boolean;
}

/** The devices of the group bound to a host driver: their part of owner_cnt. */
export function hostBoundDevices(model: Model, groupId: number): Device[] {
  return model.devicesOf(groupId).filter((d) => d.hostDriver !== null);
}

/**
 * iommu_device_use_default_domain(): while owner_cnt is held (a claim or
 * another bound driver), a new driver is refused with -EBUSY if the group
 * is off its default domain, owned, or has PASIDs attached. With owner_cnt
 * at 0 nothing is checked. Binding another driver to a bound device is the
 * driver core's -EBUSY (__driver_probe_device); binding the same one again
 * changes nothing, so a lost answer can be retried.
 */
function bind(model: Model, deviceId: number, hostDriver: string): Result<HostDriverChange> {
  const found = lookup(model, "device", deviceId);
  if (!found.ok) return found;
  const device = found.value;
  if (device.hostDriver === hostDriver) return ok({ deviceId, changed: false });
  if (device.hostDriver !== null) {
    return fail("device-has-driver", `${device.name} is bound to ${device.hostDriver}; unbind it before binding ${hostDriver}`, { deviceId });
  }
  const group = model.get("group", device.groupId)!;
  const free = checkOwnerCount(model, group);
  if (!free.ok) return { ok: false, error: withIds(free.error, { deviceId }) };
  model.put("device", { ...device, hostDriver });
  return ok({ deviceId, changed: true });
}

/** What iommu_device_use_default_domain() refuses while the group's owner_cnt is held. */
function checkOwnerCount(model: Model, g: Group): Result<void> {
  const bound = hostBoundDevices(model, g.id);
  if (g.owner === null && bound.length === 0) return OK;
  const ids = { groupId: g.id };
  if (g.owner !== null) return fail("group-owned", `group ${g.name} is owned by ${g.owner}; its DMA is not the kernel's`, ids);
  const holder = `${bound[0]!.name} is bound to ${bound[0]!.hostDriver}`;
  if (g.domainId !== g.defaultDomainId) {
    return fail("group-not-default", `group ${g.name} is on domain ${g.domainId}, not its default domain, and ${holder}`, { ...ids, domainId: g.domainId });
  }
  if (model.groupHasPasids(g.id)) return fail("pasid-in-use", `group ${g.name} has PASIDs attached, and ${holder}`, ids);
  return OK;
}

/**
 * iommu_device_unuse_default_domain(): never refused by the kernel, which
 * WARNs and keeps the group's owner_cnt (for good) if PASIDs are still
 * attached; here that is EBUSY, so that the count stays true (§4 D17).
 * Unbinding an unbound device changes nothing.
 */
function unbind(model: Model, deviceId: number): Result<HostDriverChange> {
  const found = lookup(model, "device", deviceId);
  if (!found.ok) return found;
  const device = found.value;
  if (device.hostDriver === null) return ok({ deviceId, changed: false });
  const group = model.get("group", device.groupId)!;
  if (model.groupHasPasids(group.id)) {
    return fail("pasid-in-use", `group ${group.name} has PASIDs attached; detach them before unbinding ${device.hostDriver} from ${device.name}`, { deviceId, groupId: group.id });
  }
  model.put("device", { ...device, hostDriver: null });
  return ok({ deviceId, changed: true });
}

export function bindHostDriver(model: Model, caller: Caller, deviceId: number, hostDriver: string): Result<HostDriverChange> {
  return recordAttempt(model, "bind-host-driver", caller, { deviceId, groupId: model.get("device", deviceId)?.groupId }, bind(model, deviceId, hostDriver));
}

export function unbindHostDriver(model: Model, caller: Caller, deviceId: number): Result<HostDriverChange> {
  return recordAttempt(model, "unbind-host-driver", caller, { deviceId, groupId: model.get("device", deviceId)?.groupId }, unbind(model, deviceId));
}
