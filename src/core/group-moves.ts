// The attach / replace / detach / ownership entry points, with the checks
// drivers/iommu/iommu.c makes before it touches a driver.
import { checkCreator, checkOwner } from "./access.js";
import { isOnCoreDomain, returnToCoreDomain, setGroupDomain } from "./attach.js";
import type { Caller } from "./caller.js";
import { Domain, type Group } from "./entities.js";
import { recordAttempt } from "./events.js";
import { hostBoundDevices } from "./host-driver.js";
import { checkNotBoundToIommufd } from "./iommufd-bindings.js";
import { lookup } from "./lookup.js";
import type { Model } from "./model.js";
import { fail, ok, withoutId, withoutStrands, type ErrnoError, type Result } from "./result.js";

export interface Moved {
  readonly groupId: number;
  readonly domainId: number;
  /** False when the group already was where it was asked to go. */
  readonly changed: boolean;
  /** Detach and release only: a refusal the move overrode (attach.ts CoreReturn). */
  readonly warning?: ErrnoError;
}

/** The move's warning, for the event (recordAttempt). */
const warningOf = (r: Result<Moved>): ErrnoError | undefined => (r.ok ? r.value.warning : undefined);

export { checkOwner };

/** The group, if it exists and the caller may move it. */
export function movableGroup(model: Model, caller: Caller, groupId: number): Result<Group> {
  const group = lookup(model, "group", groupId);
  if (!group.ok) return group;
  const owner = checkOwner(group.value, caller);
  return owner.ok ? group : owner;
}

/** The group the caller may move and the domain it names. */
function groupAndDomain(model: Model, caller: Caller, groupId: number, domainId: number): Result<{ group: Group; domain: Domain }> {
  const group = lookup(model, "group", groupId);
  if (!group.ok) return group;
  const domain = lookup(model, "domain", domainId);
  if (!domain.ok) return domain;
  const owner = checkOwner(group.value, caller);
  if (!owner.ok) return owner;
  const usable = checkCreator("domain", domain.value, caller);
  if (!usable.ok) return usable;
  const managed = checkNotBoundToIommufd(model, group.value);
  return managed.ok ? ok({ group: group.value, domain: domain.value }) : managed;
}

/** iommu_attach_group: EBUSY when the group is on a domain of someone's choosing. */
function attach(model: Model, caller: Caller, groupId: number, domainId: number): Result<Moved> {
  const found = groupAndDomain(model, caller, groupId, domainId);
  if (!found.ok) return found;
  const g = found.value.group;
  if (g.domainId === domainId) return ok({ groupId, domainId, changed: false });
  if (!isOnCoreDomain(g)) {
    return fail("group-attached", `group ${g.name} is attached to domain ${g.domainId}; use replace`, { groupId, domainId: g.domainId });
  }
  return moved(setGroupDomain(model, g, found.value.domain), groupId, domainId);
}

/** iommu_group_replace_domain: no EBUSY, any domain to any domain. */
function replace(model: Model, caller: Caller, groupId: number, domainId: number): Result<Moved> {
  const found = groupAndDomain(model, caller, groupId, domainId);
  if (!found.ok) return found;
  return moved(setGroupDomain(model, found.value.group, found.value.domain), groupId, domainId);
}

/** iommu_detach_group: back to the core domain; another domain changes nothing. */
function detach(model: Model, caller: Caller, groupId: number, domainId: number): Result<Moved> {
  const group = movableGroup(model, caller, groupId);
  if (!group.ok) return group;
  const g = group.value;
  const managed = checkNotBoundToIommufd(model, g);
  if (!managed.ok) return managed;
  if (g.domainId !== domainId) return ok({ groupId, domainId: g.domainId, changed: false });
  return backToCore(model, g);
}

function backToCore(model: Model, group: Group): Result<Moved> {
  const { changed, domainId, warning } = returnToCoreDomain(model, group);
  return ok(warning ? { groupId: group.id, domainId, changed, warning } : { groupId: group.id, domainId, changed });
}

function moved(r: Result<{ changed: boolean }>, groupId: number, domainId: number): Result<Moved> {
  return r.ok ? ok({ groupId, domainId, changed: r.value.changed }) : r;
}

export function attachGroup(model: Model, caller: Caller, groupId: number, domainId: number): Result<Moved> {
  return recordAttempt(model, "attach-group", caller, { groupId, domainId }, attach(model, caller, groupId, domainId));
}

export function replaceDomain(model: Model, caller: Caller, groupId: number, domainId: number): Result<Moved> {
  return recordAttempt(model, "replace-group", caller, { groupId, domainId }, replace(model, caller, groupId, domainId));
}

export function detachGroup(model: Model, caller: Caller, groupId: number, domainId: number): Result<Moved> {
  const result = detach(model, caller, groupId, domainId);
  return recordAttempt(model, "detach-group", caller, { groupId, domainId }, result, undefined, warningOf(result));
}

/** iommu_attach_device: only for a device alone in its group. */
function soleDeviceGroup(model: Model, deviceId: number): Result<number> {
  const device = lookup(model, "device", deviceId);
  if (!device.ok) return device;
  const n = model.devicesOf(device.value.groupId).length;
  if (n !== 1) {
    return fail("group-has-multiple-devices", `${device.value.name} shares group ${device.value.groupId} with ${n - 1} other device(s); attach the group`, { deviceId, groupId: device.value.groupId });
  }
  return ok(device.value.groupId);
}

export function attachDevice(model: Model, caller: Caller, deviceId: number, domainId: number): Result<Moved> {
  const group = soleDeviceGroup(model, deviceId);
  const result = group.ok ? attach(model, caller, group.value, domainId) : group;
  return recordAttempt(model, "attach-device", caller, { deviceId, domainId, groupId: model.get("device", deviceId)?.groupId }, result);
}

export function detachDevice(model: Model, caller: Caller, deviceId: number, domainId: number): Result<Moved> {
  const group = soleDeviceGroup(model, deviceId);
  const result = group.ok ? detach(model, caller, group.value, domainId) : group;
  return recordAttempt(model, "detach-device", caller, { deviceId, domainId, groupId: model.get("device", deviceId)?.groupId }, result, undefined, warningOf(result));
}

/**
 * iommu_group_claim_dma_owner: EPERM if someone else owns the group, EBUSY if
 * it is not on its default domain; success moves it to its blocking domain
 * (allocated on first claim). Claiming again as the same owner is a no-op, so
 * a client may retry a claim whose answer it lost.
 */
export function claimOwnership(model: Model, caller: Caller, groupId: number): Result<Moved> {
  const result = ((): Result<Moved> => {
    if (caller.owner === null) return fail("invalid-argument", "a claim needs an owner");
    const found = lookup(model, "group", groupId);
    if (!found.ok) return found;
    const g = found.value;
    // owner_cnt held by iommufd bindings: another owner (the iommufd context), whoever the client is.
    const managed = checkNotBoundToIommufd(model, g);
    if (!managed.ok) return managed;
    if (g.owner === caller.owner) return ok({ groupId, domainId: g.domainId, changed: false });
    if (g.owner !== null) return fail("owned-by-other", `group ${g.name} is owned by ${g.owner}`, { groupId });
    // owner_cnt also counts the host drivers bound to its devices.
    const bound = hostBoundDevices(model, groupId);
    if (bound.length > 0) {
      return fail("host-driver-bound", `${bound[0]!.name} of group ${g.name} is bound to host driver ${bound[0]!.hostDriver}; unbind it first`, { groupId, deviceId: bound[0]!.id });
    }
    return takeDmaOwnership(model, g, caller.owner);
  })();
  return recordAttempt(model, "claim", caller, { groupId }, result, result.ok ? result.value.domainId : undefined);
}

/**
 * __iommu_take_dma_ownership(): with owner_cnt at 0, EBUSY unless the group
 * is on its default domain without PASIDs; then it moves to its blocking
 * domain (allocated on the first claim) and `owner` holds it. Shared by the
 * group claim and iommufd's device claim (iommu_device_claim_dma_owner).
 */
export function takeDmaOwnership(model: Model, g: Group, owner: string): Result<Moved> {
  const groupId = g.id;
  if (g.domainId !== g.defaultDomainId) {
    return fail("group-not-default", `group ${g.name} is on domain ${g.domainId}, not its default domain`, { groupId, domainId: g.domainId });
  }
  // !xa_empty(&group->pasid_array) → -EBUSY
  if (model.groupHasPasids(groupId)) {
    return fail("pasid-in-use", `group ${g.name} has PASIDs attached; detach them first`, { groupId });
  }
  let blockingDomainId = g.blockingDomainId;
  const allocatesBlocking = blockingDomainId === null;
  if (blockingDomainId === null) {
    blockingDomainId = model.allocateId("domain");
    const unit = model.get("unit", g.unitId)!;
    const dma = model.get("domain", g.defaultDomainId)!;
    model.put("domain", Domain.make({
      id: blockingDomainId, name: `${g.name}-blocking`, type: "blocked", driver: unit.driver,
      unitId: unit.id, config: dma.config,
    }));
  }
  const withOwner: Group = { ...g, owner, blockingDomainId };
  model.put("group", withOwner);
  const devices = model.devicesOf(groupId);
  const r = setGroupDomain(model, withOwner, model.get("domain", blockingDomainId)!);
  // A blocking domain allocated by a claim that failed goes with the
  // claim's rollback: the answer must not name it, and no device can be
  // left on it (a kernel without the unwind would leave the earlier ones
  // there, docs/semantics.md §4 D28): they stay where they were.
  if (!r.ok && allocatesBlocking) {
    const left = r.error.stranded?.deviceIds ?? [];
    for (const before of devices) if (left.includes(before.id)) model.putSurvivingRollback("device", before, before.id);
    return { ok: false, error: withoutId(withoutStrands(r.error), "domainId") };
  }
  return moved(r, groupId, blockingDomainId);
}

/** iommu_group_release_dma_owner: only the owner may; back to the default domain. */
export function releaseOwnership(model: Model, caller: Caller, groupId: number): Result<Moved> {
  const result = ((): Result<Moved> => {
    const found = lookup(model, "group", groupId);
    if (!found.ok) return found;
    const g = found.value;
    const managed = checkNotBoundToIommufd(model, g);
    if (!managed.ok) return managed;
    if (g.owner === null) return fail("not-owned", `group ${g.name} has no DMA owner`, { groupId });
    const owner = checkOwner(g, caller);
    if (!owner.ok) return owner;
    // __iommu_release_dma_ownership() WARNs and keeps the ownership while
    // PASIDs are attached; here that is EBUSY (§4 D17).
    if (model.groupHasPasids(groupId)) {
      return fail("pasid-in-use", `group ${g.name} has PASIDs attached; detach them before releasing it`, { groupId });
    }
    const released: Group = { ...g, owner: null };
    model.put("group", released);
    return backToCore(model, released);
  })();
  return recordAttempt(model, "release", caller, { groupId }, result, result.ok ? result.value.domainId : undefined, warningOf(result));
}
