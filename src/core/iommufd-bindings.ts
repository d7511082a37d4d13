// What iommufd's DMA ownership means for the group-level routes. While a
// device of a group is bound to iommufd, the group's owner_cnt is held by
// the client's iommufd context (iommu_device_claim_dma_owner), not by a
// group claim: in the kernel the two are different owners (an
// iommufd_ctx, a vfio_group), so a group claim is EPERM, and the group's
// domain changes only through iommufd's own attach (igroup->hwpt).
import type { Group } from "./entities.js";
import type { Model } from "./model.js";
import { fail, OK, type Result } from "./result.js";

/**
 * Refuses a group-level claim, release or move of a group whose DMA
 * ownership its iommufd bindings hold: iommu_group_claim_dma_owner() is
 * EPERM while owner_cnt is held, and a move behind iommufd's back would
 * leave its attached devices naming a domain the group left.
 */
export function checkNotBoundToIommufd(model: Model, group: Group): Result<void> {
  const bound = model.iommufdDevicesOfGroup(group.id);
  if (bound.length === 0) return OK;
  const first = model.get("device", bound[0]!.deviceId)!;
  return fail("iommufd-bound",
    `${first.name}${bound.length > 1 ? ` and ${bound.length - 1} more device(s)` : ""} of group ${group.name} ${bound.length > 1 ? "are" : "is"} bound to ${bound[0]!.owner}'s iommufd context, which holds the group's DMA ownership; use /v1/devices/{id}/iommufd`,
    { groupId: group.id, deviceId: first.id });
}
