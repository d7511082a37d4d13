// iommufd device objects, as a client meets them through VFIO's device cdev:
// bind (iommufd_device_bind, VFIO_DEVICE_BIND_IOMMUFD), attach, replace and
// detach of one device (iommufd_device_attach / _replace / _detach through
// VFIO_DEVICE_ATTACH_IOMMUFD_PT and VFIO_DEVICE_DETACH_IOMMUFD_PT,
// drivers/vfio/iommufd.c) and unbind (vfio_iommufd_physical_unbind), all of
// drivers/iommu/iommufd/device.c.
//
// The group plays iommufd's igroup: while a device of it is attached, the
// domain the group is on is igroup->hwpt and the attached devices are
// igroup->device_list (IommufdDevice.domainId not null). The first device to
// attach moves the group (through the container search for a container,
// iommufd_device_auto_get_domain); the others join that domain without a
// driver call; the last to detach returns the group to its blocking domain.
import { checkCreator, checkOwner } from "./access.js";
import { returnToCoreDomain, setGroupDomain } from "./attach.js";
import type { Caller } from "./caller.js";
import { allocateAutoDomain, attachFresh, search, type Attempt, type SearchError } from "./container-attach.js";
import { IommufdDevice, type Container, type Device, type Domain, type Group } from "./entities.js";
import { recordAttempt } from "./events.js";
import { takeDmaOwnership } from "./group-moves.js";
import { hostBoundDevices } from "./host-driver.js";
import { lookup, lookupDriver } from "./lookup.js";
import type { Model } from "./model.js";
import { outcomeOf } from "./outcome.js";
import { fail, failure, ok, OK, withoutId, type ErrnoError, type Result } from "./result.js";

/**
 * iommufd's module parameters (drivers/iommu/iommufd/device.c), given by the
 * host's settings: data, as the core does no I/O.
 */
export interface IommufdParams {
  /** allow_unsafe_interrupts: bind devices whose MSIs the platform cannot isolate. */
  readonly allowUnsafeInterrupts: boolean;
}

/** The module's defaults: a device without isolated MSIs is refused. */
export const DEFAULT_IOMMUFD_PARAMS: IommufdParams = Object.freeze({ allowUnsafeInterrupts: false });

/** What a device attaches to (pt_id): a container (an IOAS: its automatic domains, searched) or one domain (a HWPT). */
export interface AttachTarget {
  readonly containerId?: number;
  readonly domainId?: number;
}

export interface IommufdBound {
  readonly iommufd: IommufdDevice;
  /** False when the device already was bound to the caller's context. */
  readonly changed: boolean;
}

export interface IommufdMoved {
  readonly iommufdId: number;
  readonly deviceId: number;
  readonly groupId: number;
  /** The domain the device (and its group) is attached to now. */
  readonly domainId: number;
  /** False when the device already was there. */
  readonly changed: boolean;
  /** A new automatic domain was allocated for it. */
  readonly allocated: boolean;
  /** The domains of a container tried, in order (empty for a domain target). */
  readonly attempts: readonly Attempt[];
}

export interface IommufdDetached {
  readonly iommufdId: number;
  readonly deviceId: number;
  readonly groupId: number;
  /** The domain the group is on now: still the shared one while another device of it is attached, else its blocking domain. */
  readonly domainId: number;
  /** False when the device was not attached. */
  readonly changed: boolean;
  /** The automatic domain freed because nothing was left on it. */
  readonly freedDomainId: number | null;
}

export interface IommufdUnbound extends IommufdDetached {
  /** The binding was the group's last: its DMA ownership went back to the kernel (the default domain). */
  readonly released: boolean;
}

interface Bound {
  readonly device: Device;
  readonly group: Group;
  readonly iommufd: IommufdDevice;
}

/** The device, its iommufd object and its group, if the caller owns the binding (or is an administrator, §4 D5). */
function boundDevice(model: Model, caller: Caller, deviceId: number): Result<Bound> {
  const found = lookup(model, "device", deviceId);
  if (!found.ok) return found;
  const device = found.value;
  const iommufd = model.iommufdDeviceOf(deviceId);
  if (!iommufd) {
    return fail("not-bound", `${device.name} is not bound to iommufd; bind it first (POST /v1/devices/${deviceId}/iommufd)`, { deviceId });
  }
  const group = model.get("group", device.groupId)!;
  const owner = checkOwner(group, caller);
  return owner.ok ? ok({ device, group, iommufd }) : owner;
}

/** The error with the device it concerns, unless it already names one (the host-bound device of a refused claim). */
function aboutDevice(error: ErrnoError, deviceId: number): ErrnoError {
  return { ...error, ids: { deviceId, ...error.ids } };
}

// ---- bind and unbind ------------------------------------------------------------

/**
 * iommu_device_claim_dma_owner() for an iommufd context owned by `owner`:
 * while owner_cnt is held, the same owner only counts one more (another
 * device of the group bound to its context), any other is EPERM: another
 * client's context, a group claim (owned by a vfio_group in the kernel,
 * never an iommufd context), a host driver (owner NULL). With owner_cnt at
 * 0 the group's ownership is taken (__iommu_take_dma_ownership).
 */
function claimDevice(model: Model, g: Group, owner: string): Result<void> {
  const groupId = g.id;
  const bound = model.iommufdDevicesOfGroup(groupId);
  if (bound.length > 0) {
    return bound[0]!.owner === owner ? OK
      : fail("owned-by-other", `group ${g.name} is owned by ${bound[0]!.owner}'s iommufd context`, { groupId });
  }
  if (g.owner !== null) {
    return g.owner !== owner ? fail("owned-by-other", `group ${g.name} is owned by ${g.owner}`, { groupId })
      : fail("group-claimed", `group ${g.name} is claimed by ${owner} as a whole (a group claim), which is not an iommufd context; release the group, then bind its devices`, { groupId });
  }
  const hosts = hostBoundDevices(model, groupId);
  if (hosts.length > 0) {
    return fail("host-driver-bound", `${hosts[0]!.name} of group ${g.name} is bound to host driver ${hosts[0]!.hostDriver}; unbind it first`, { groupId, deviceId: hosts[0]!.id });
  }
  const taken = takeDmaOwnership(model, g, owner);
  return taken.ok ? OK : taken;
}

/**
 * iommufd_device_bind(): a device whose IOMMU cannot keep DMA cache
 * coherent is EINVAL (iommufd always maps with IOMMU_CACHE); one whose MSIs
 * the platform cannot isolate is EPERM unless the host allows unsafe
 * interrupts (allow_unsafe_interrupts); then the device claims its group's
 * DMA ownership for the client's context. Binding a device to the context
 * it is bound to again changes nothing (a lost answer can be retried).
 */
function bind(model: Model, caller: Caller, deviceId: number, params: IommufdParams): Result<IommufdBound> {
  const owner = caller.owner;
  if (owner === null) return fail("invalid-argument", "binding a device to iommufd needs an owner: the client whose iommufd context it joins");
  const found = lookup(model, "device", deviceId);
  if (!found.ok) return found;
  const device = found.value;
  const already = model.iommufdDeviceOf(deviceId);
  if (already?.owner === owner) return ok({ iommufd: already, changed: false });
  const group = model.get("group", device.groupId)!;
  const unit = model.get("unit", group.unitId)!;
  const driver = lookupDriver(model, unit.driver);
  if (!driver.ok) return driver;
  // device_iommu_capable(dev, IOMMU_CAP_CACHE_COHERENCY): false for a driver without the op.
  if (!(driver.value.capable?.({ unit, device }, "cache-coherency") ?? false)) {
    return fail("not-cache-coherent", `${unit.name} (${unit.driver}) cannot keep ${device.name}'s DMA cache coherent (no IOMMU_CAP_CACHE_COHERENCY), and iommufd always maps with IOMMU_CACHE`, { deviceId });
  }
  // iommu_group_has_isolated_msi(): every device of the group is behind the unit.
  if (!unit.capabilities.isolatedMsi && !params.allowUnsafeInterrupts) {
    return fail("msi-not-isolated", `${device.name}'s MSIs cannot be isolated behind ${unit.name} (no interrupt remapping or ITS), and the host does not allow unsafe interrupts (--allow-unsafe-interrupts)`, { deviceId, groupId: group.id });
  }
  const claimed = claimDevice(model, group, owner);
  if (!claimed.ok) return { ok: false, error: aboutDevice(claimed.error, deviceId) };
  const iommufd = IommufdDevice.make({ id: model.allocateId("iommufd"), deviceId, owner, domainId: null });
  model.put("iommufd", iommufd);
  return ok({ iommufd, changed: true });
}

/**
 * The device leaves its group's device_list (iommufd_hw_pagetable_detach);
 * the last one to leave detaches the group, which returns to its core
 * domain (the blocking one while owned), and frees an automatic domain
 * left empty. A device not attached changes nothing, as
 * vfio_iommufd_physical_detach_ioas() returns.
 */
function detachBound(model: Model, b: Bound): Result<IommufdDetached> {
  const { device, group, iommufd } = b;
  const ids = { iommufdId: iommufd.id, deviceId: device.id, groupId: group.id };
  if (iommufd.domainId === null) return ok({ ...ids, domainId: group.domainId, changed: false, freedDomainId: null });
  model.put("iommufd", { ...iommufd, domainId: null });
  if (model.iommufdDevicesOfGroup(group.id).some((i) => i.domainId !== null)) {
    return ok({ ...ids, domainId: group.domainId, changed: true, freedDomainId: null });
  }
  const left = group.domainId;
  // iommu_detach_group() cannot fail (a refusal stored before today's rules is overridden, attach.ts).
  const back = returnToCoreDomain(model, group);
  return ok({ ...ids, domainId: back.domainId, changed: true, freedDomainId: model.get("domain", left) ? null : left });
}

/**
 * vfio_iommufd_physical_unbind(): an attached device is detached first,
 * then iommufd_device_unbind() destroys the object, whose
 * iommu_device_release_dma_owner() gives back one count of owner_cnt; the
 * last one releases the group to its default domain. Neither can fail in
 * the kernel; with PASIDs still attached the release would WARN and keep
 * the ownership, which here is EBUSY (§4 D17).
 */
function unbind(model: Model, caller: Caller, deviceId: number): Result<IommufdUnbound> {
  const found = boundDevice(model, caller, deviceId);
  if (!found.ok) return found;
  const { group, iommufd } = found.value;
  const last = model.iommufdDevicesOfGroup(group.id).length === 1;
  if (last && model.groupHasPasids(group.id)) {
    return fail("pasid-in-use", `group ${group.name} has PASIDs attached; detach them before unbinding its last device from iommufd`, { deviceId, groupId: group.id });
  }
  const detached = detachBound(model, found.value);
  if (!detached.ok) return detached;
  model.remove("iommufd", iommufd.id);
  if (!last) return ok({ ...detached.value, released: false });
  const released: Group = { ...model.get("group", group.id)!, owner: null };
  model.put("group", released);
  const back = returnToCoreDomain(model, released);
  return ok({ ...detached.value, domainId: back.domainId, released: true });
}

// ---- attach, replace, detach --------------------------------------------------------

type Target = { readonly container: Container; readonly domain?: never } | { readonly domain: Domain; readonly container?: never };

/** pt_id: exactly one of a container and a domain, each one the caller may use. */
function resolveTarget(model: Model, caller: Caller, target: AttachTarget): Result<Target> {
  if ((target.containerId === undefined) === (target.domainId === undefined)) {
    return fail("invalid-argument", "name exactly one of containerId and domainId");
  }
  if (target.containerId !== undefined) {
    const container = lookup(model, "container", target.containerId);
    if (!container.ok) return container;
    const usable = checkCreator("container", container.value, caller);
    if (!usable.ok) return usable;
    // iommufd_device_change_pt(): a pt_id that is no IOAS is -EINVAL; a VFIO
    // type1 container is not an iommufd object at all.
    if (container.value.kind !== "iommufd") {
      return fail("invalid-argument", `container ${container.value.name} is a VFIO type1 container; iommufd attaches to an IOAS or a domain`, { containerId: container.value.id });
    }
    return ok({ container: container.value });
  }
  const domain = lookup(model, "domain", target.domainId!);
  if (!domain.ok) return domain;
  const usable = checkCreator("domain", domain.value, caller);
  if (!usable.ok) return usable;
  // iommufd_device_change_pt(): a pt_id names an IOAS or a hw_pagetable (a
  // paging domain iommufd allocated); any other object is -EINVAL.
  if (domain.value.type !== "paging") {
    return fail("domain-not-attachable", `domain ${domain.value.id} is a ${domain.value.type === "dma" ? "default" : domain.value.type} domain; iommufd attaches paging domains only`, { domainId: domain.value.id });
  }
  return ok({ domain: domain.value });
}

/** igroup->hwpt: the domain the group's attached devices share, if any device of it is attached. */
function groupPageTable(model: Model, group: Group): number | null {
  return model.iommufdDevicesOfGroup(group.id).find((i) => i.domainId !== null)?.domainId ?? null;
}

function attempt(domainId: number, allocated: boolean, error: ErrnoError | null, freed = false): Attempt {
  return { domainId, allocated, freed, ...outcomeOf(error) };
}

function searchFailed<T>(error: ErrnoError, attempts: readonly Attempt[]): Result<T> {
  const withAttempts: SearchError = { ...error, attempts };
  return { ok: false, error: withAttempts };
}

/** The moved device and its group's attached devices now on `domainId`. */
function settle(model: Model, b: Bound, domainId: number, changed: boolean, allocated: boolean, attempts: readonly Attempt[]): Result<IommufdMoved> {
  for (const i of model.iommufdDevicesOfGroup(b.group.id)) {
    if (i.domainId !== null && i.domainId !== domainId) model.put("iommufd", { ...i, domainId });
  }
  const now = model.get("iommufd", b.iommufd.id)!;
  if (now.domainId !== domainId) model.put("iommufd", { ...now, domainId });
  return ok({ iommufdId: b.iommufd.id, deviceId: b.device.id, groupId: b.group.id, domainId, changed, allocated, attempts });
}

/**
 * iommufd_hw_pagetable_attach() of a device whose group's other devices are
 * attached to `hwpt`: the same domain joins them without a driver call;
 * any other is -EINVAL. Through a container, every automatic domain before
 * theirs is refused so; without theirs among them iommufd allocates a new
 * one, whose immediate attach is refused the same way, and frees it.
 */
function join(model: Model, b: Bound, target: Target, hwpt: number): Result<IommufdMoved> {
  const other = (domainId: number) => failure("group-on-another-domain",
    `the devices of group ${b.group.name} attached through iommufd are on domain ${hwpt}, not domain ${domainId}; attach ${b.device.name} there, or detach them first`,
    { deviceId: b.device.id, groupId: b.group.id, domainId: hwpt });
  if (target.domain) {
    if (target.domain.id !== hwpt) return { ok: false, error: other(target.domain.id) };
    return settle(model, b, hwpt, true, false, []);
  }
  const attempts: Attempt[] = [];
  for (const domain of model.domainsOf(target.container.id)) {
    if (domain.search !== "kernel") continue; // the kernel search's automatic domains only
    if (domain.id === hwpt) {
      attempts.push(attempt(hwpt, false, null));
      return settle(model, b, hwpt, true, false, attempts);
    }
    attempts.push(attempt(domain.id, false, other(domain.id)));
  }
  const fresh = allocateAutoDomain(model, b.group, target.container.id);
  if (!fresh.ok) return searchFailed(withoutId(fresh.error, "domainId"), attempts);
  attempts.push(attempt(fresh.value.id, true, other(fresh.value.id), true));
  return searchFailed(other(fresh.value.id), attempts);
}

/**
 * The first device of the group to attach attaches the group
 * (iommufd_hwpt_attach_device → iommu_attach_group_handle), from its
 * blocking domain: to the domain named, or through the container search.
 */
function attachFirst(model: Model, caller: Caller, b: Bound, target: Target): Result<IommufdMoved> {
  if (target.domain) {
    const r = setGroupDomain(model, b.group, target.domain);
    return r.ok ? settle(model, b, target.domain.id, true, false, []) : r;
  }
  const r = search(model, caller, target.container.id, b.group.id);
  return r.ok ? settle(model, b, r.value.domainId, true, r.value.allocated, r.value.attempts) : r;
}

/**
 * iommufd_device_do_replace(): the device must be attached; the current
 * domain again changes nothing; any other moves the whole group and every
 * attached device of it (iommu_replace_group_handle, no EBUSY). Through a
 * container the search runs with replace as its attach: the automatic
 * domains in order, the current one included (where it stops, unchanged),
 * EINVAL moving on, then a new one.
 */
function replaceBound(model: Model, b: Bound, target: Target): Result<IommufdMoved> {
  const current = b.group.domainId;
  if (target.domain) {
    if (target.domain.id === current) return settle(model, b, current, false, false, []);
    const r = setGroupDomain(model, b.group, target.domain);
    return r.ok ? settle(model, b, target.domain.id, true, false, []) : r;
  }
  const attempts: Attempt[] = [];
  for (const domain of model.domainsOf(target.container.id)) {
    if (domain.search !== "kernel") continue; // the kernel search's automatic domains only
    const r = setGroupDomain(model, b.group, domain);
    attempts.push(attempt(domain.id, false, r.ok ? null : r.error));
    if (r.ok) return settle(model, b, domain.id, r.value.changed, false, attempts);
    if (r.error.errno !== "EINVAL") return searchFailed(r.error, attempts);
  }
  const fresh = allocateAutoDomain(model, b.group, target.container.id);
  if (!fresh.ok) return searchFailed(withoutId(fresh.error, "domainId"), attempts);
  // The failed replace frees the new domain again: no device may be left on it (attachFresh).
  const r = attachFresh(model, b.group.id, fresh.value);
  attempts.push(attempt(fresh.value.id, true, r.ok ? null : r.error, !r.ok));
  if (!r.ok) return searchFailed(withoutId(r.error, "domainId"), attempts);
  return settle(model, b, fresh.value.id, true, true, attempts);
}

/**
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT: iommufd_device_attach() for a device not
 * attached yet, iommufd_device_replace() for one that is
 * (vfio_iommufd_physical_attach_ioas).
 */
function attach(model: Model, caller: Caller, deviceId: number, target: AttachTarget): Result<IommufdMoved> {
  const found = boundDevice(model, caller, deviceId);
  if (!found.ok) return found;
  const resolved = resolveTarget(model, caller, target);
  if (!resolved.ok) return resolved;
  const b = found.value;
  if (b.iommufd.domainId !== null) return replaceBound(model, b, resolved.value);
  const hwpt = groupPageTable(model, b.group);
  return hwpt !== null ? join(model, b, resolved.value, hwpt) : attachFirst(model, caller, b, resolved.value);
}

/** iommufd_device_replace(): -EINVAL for a device not attached (igroup->hwpt NULL, or not on its device_list). */
function replace(model: Model, caller: Caller, deviceId: number, target: AttachTarget): Result<IommufdMoved> {
  const found = boundDevice(model, caller, deviceId);
  if (!found.ok) return found;
  const resolved = resolveTarget(model, caller, target);
  if (!resolved.ok) return resolved;
  const b = found.value;
  if (b.iommufd.domainId === null) {
    return fail("device-not-attached", `${b.device.name} is not attached through iommufd; attach it first`, { deviceId });
  }
  return replaceBound(model, b, resolved.value);
}

function detach(model: Model, caller: Caller, deviceId: number): Result<IommufdDetached> {
  const found = boundDevice(model, caller, deviceId);
  return found.ok ? detachBound(model, found.value) : found;
}

// ---- entry points: each attempt is logged ---------------------------------------------

function subject(model: Model, deviceId: number, target: AttachTarget = {}) {
  return { deviceId, groupId: model.get("device", deviceId)?.groupId, containerId: target.containerId, domainId: target.domainId };
}

export function bindIommufd(model: Model, caller: Caller, deviceId: number, params: IommufdParams = DEFAULT_IOMMUFD_PARAMS): Result<IommufdBound> {
  const result = bind(model, caller, deviceId, params);
  return recordAttempt(model, "bind-iommufd", caller, subject(model, deviceId), result);
}

export function unbindIommufd(model: Model, caller: Caller, deviceId: number): Result<IommufdUnbound> {
  const result = unbind(model, caller, deviceId);
  return recordAttempt(model, "unbind-iommufd", caller, subject(model, deviceId), result, result.ok ? result.value.domainId : undefined);
}

export function attachIommufd(model: Model, caller: Caller, deviceId: number, target: AttachTarget): Result<IommufdMoved> {
  const result = attach(model, caller, deviceId, target);
  return recordAttempt(model, "attach-iommufd", caller, subject(model, deviceId, target), result, result.ok ? result.value.domainId : undefined);
}

export function replaceIommufd(model: Model, caller: Caller, deviceId: number, target: AttachTarget): Result<IommufdMoved> {
  const result = replace(model, caller, deviceId, target);
  return recordAttempt(model, "replace-iommufd", caller, subject(model, deviceId, target), result, result.ok ? result.value.domainId : undefined);
}

export function detachIommufd(model: Model, caller: Caller, deviceId: number): Result<IommufdDetached> {
  const result = detach(model, caller, deviceId);
  return recordAttempt(model, "detach-iommufd", caller, subject(model, deviceId), result, result.ok ? result.value.domainId : undefined);
}
