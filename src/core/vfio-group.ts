// A group attached through a container as a whole: VFIO's group path
// (drivers/vfio/container.c vfio_container_attach_group, for
// VFIO_GROUP_SET_CONTAINER), which claims the group's DMA ownership
// (iommu_group_claim_dma_owner, owned by the vfio_group) before the IOMMU
// backend attaches it, and releases it after the detach
// (vfio_group_detach_container → iommu_group_release_dma_owner). The
// claim's refusals are the kernel's answer to the attach; the ownership
// itself is not kept here (docs/semantics.md §5 K10): an unclaimed group is
// attached from, and detached back to, its default domain, where VFIO's
// release also leaves it.
import { checkCreator, checkOwner } from "./access.js";
import type { Caller } from "./caller.js";
import { containerAttach, containerDetach, type SearchOutcome } from "./container-attach.js";
import type { SearchPolicy } from "./entities.js";
import { recordAttempt } from "./events.js";
import { hostBoundDevices } from "./host-driver.js";
import { checkNotBoundToIommufd } from "./iommufd-bindings.js";
import type { Model } from "./model.js";
import { fail, OK, type Result } from "./result.js";

/**
 * What iommu_group_claim_dma_owner() would refuse for a group that nobody
 * has claimed and that is on its default domain: a host driver holding
 * owner_cnt (EPERM), PASIDs (EBUSY, __iommu_take_dma_ownership), a device
 * that cannot be blocked (EINVAL, __iommu_device_set_domain). Devices bound
 * to iommufd hold owner_cnt for their context: EPERM, claimed or not.
 */
function checkClaimable(model: Model, caller: Caller, containerId: number, groupId: number): Result<void> {
  const group = model.get("group", groupId);
  const container = model.get("container", containerId);
  // A missing object, or one the caller may not use: the search answers as it does.
  if (!group || !container || !checkOwner(group, caller).ok || !checkCreator("container", container, caller).ok) return OK;
  const managed = checkNotBoundToIommufd(model, group);
  if (!managed.ok) return managed;
  // Claimed already, or attached elsewhere (the search answers EBUSY, or nothing for its own container).
  if (group.owner !== null || group.domainId !== group.defaultDomainId) return OK;
  const hosts = hostBoundDevices(model, groupId);
  if (hosts.length > 0) {
    return fail("host-driver-bound", `${hosts[0]!.name} of group ${group.name} is bound to host driver ${hosts[0]!.hostDriver}: VFIO cannot claim the group; unbind it first`, { groupId, deviceId: hosts[0]!.id });
  }
  if (model.groupHasPasids(groupId)) {
    return fail("pasid-in-use", `group ${group.name} has PASIDs attached: VFIO cannot claim the group; detach them first`, { groupId });
  }
  const direct = model.devicesOf(groupId).find((d) => d.flags.requiresIdentity);
  if (direct) {
    return fail("requires-identity", `${direct.name} has firmware-reserved regions and needs a 1:1 mapping: VFIO cannot claim group ${group.name}, whose claim blocks its DMA`, { groupId, deviceId: direct.id });
  }
  return OK;
}

/** VFIO_GROUP_SET_CONTAINER: the claim's checks, then the container search. */
export function setContainer(
  model: Model, caller: Caller, containerId: number, groupId: number, policy: SearchPolicy = "kernel",
): Result<SearchOutcome> {
  const claimable = checkClaimable(model, caller, containerId, groupId);
  if (claimable.ok) return containerAttach(model, caller, containerId, groupId, policy);
  return recordAttempt(model, "container-attach", caller, { containerId, groupId }, { ok: false, error: claimable.error });
}

/** VFIO_GROUP_UNSET_CONTAINER; a group whose devices are bound to iommufd moves only through iommufd. */
export function unsetContainer(model: Model, caller: Caller, containerId: number, groupId: number): ReturnType<typeof containerDetach> {
  const group = model.get("group", groupId);
  const container = model.get("container", containerId);
  const usable = group && container && checkOwner(group, caller).ok && checkCreator("container", container, caller).ok;
  const managed = usable ? checkNotBoundToIommufd(model, group) : OK;
  if (managed.ok) return containerDetach(model, caller, containerId, groupId);
  return recordAttempt(model, "container-detach", caller, { containerId, groupId }, { ok: false, error: managed.error });
}
