// Attaching a group through a container: the container finds the group a
// domain, the way the kernel (or QEMU) does. Three searches, one trace
// (`attempts`: every domain tried, in order, with its outcome):
//
// - An iommufd IOAS, policy "kernel" (the default): iommufd_device_auto_get_domain()
//   (drivers/iommu/iommufd/device.c). Walk the IOAS's automatic domains in
//   allocation order; EINVAL means "incompatible, try the next"; any other
//   error ends the search; if none fits, allocate a paging domain for the
//   device with flags 0 (iommufd_hwpt_paging_alloc), attach it, and free it
//   again if that attach fails. Page tables allocated any other way are
//   never tried (`if (!hwpt_paging->auto_domain) continue`).
// - An iommufd IOAS, policy "qemu": QEMU's iommufd_cdev_autodomains_get()
//   (hw/vfio/iommufd.c). The same walk over the page tables QEMU allocated
//   for the container, newest first; if none fits, allocate one with
//   IOMMU_HWPT_ALLOC_DIRTY_TRACKING when the device's IOMMU reports dirty
//   tracking, attach it, free it if that fails. To the kernel these are user
//   page tables, so the kernel policy never tries them, and QEMU never tries
//   the kernel's automatic domains (they are not in its list).
// - A VFIO type1 container: vfio_iommu_type1_attach_group(), see attachType1.
import { checkCreator } from "./access.js";
import { isOnCoreDomain, returnToCoreDomain, setGroupDomain } from "./attach.js";
import { deviceIommuCapable, domainCanEnforceCoherency } from "./capable.js";
import type { Caller } from "./caller.js";
import { allocatePaging } from "./domain-alloc.js";
import { shapedConfig } from "./domain-config.js";
import { Domain, type Container, type Group, type SearchPolicy } from "./entities.js";
import { recordAttempt } from "./events.js";
import { movableGroup } from "./group-moves.js";
import { interned } from "./intern.js";
import { checkDomainJoin } from "./iova.js";
import { lookup, lookupDriver } from "./lookup.js";
import type { Model } from "./model.js";
import { outcomeOf, type Outcome } from "./outcome.js";
import { asKernelAnswers, kernelProfile } from "./profiles.js";
import { fail, ok, withoutId, withoutStrands, type ErrnoError, type Result } from "./result.js";

/** One domain the search tried, and how that went. */
export interface Attempt extends Outcome {
  readonly domainId: number;
  readonly allocated: boolean;
  /**
   * The domain was allocated by this search and freed again (the search
   * failed, or VFIO type1 moved the group to an existing domain): its id
   * names nothing now, and is never handed out again.
   */
  readonly freed: boolean;
}

export interface SearchOutcome {
  readonly groupId: number;
  readonly domainId: number;
  readonly allocated: boolean;
  readonly attempts: readonly Attempt[];
}

/** A failed search still tells the client what it tried. */
export interface SearchError extends ErrnoError {
  readonly attempts: readonly Attempt[];
}

function attempt(domainId: number, allocated: boolean, error: ErrnoError | null): Attempt {
  return { domainId, allocated, freed: false, ...outcomeOf(error) };
}

/** The attempts with those on the domain this search allocated and freed marked so. */
function freedIn(attempts: readonly Attempt[], domainId: number): Attempt[] {
  return attempts.map((a) => (a.domainId === domainId ? { ...a, freed: true } : a));
}

function searchFailed(error: ErrnoError, attempts: readonly Attempt[]): Result<never> {
  const withAttempts: SearchError = { ...error, attempts };
  return { ok: false, error: withAttempts };
}

/**
 * The search failed after allocating `domainId`: the rollback frees it, so
 * the answer names it only in the trace, marked freed.
 */
function failedAfterAllocating(error: ErrnoError, attempts: readonly Attempt[], domainId: number): Result<never> {
  return searchFailed(withoutId(error, "domainId"), freedIn(attempts, domainId));
}

/**
 * Move the group onto the domain the search just allocated. The failed
 * search frees that domain again; a kernel without the unwind would leave
 * the devices that passed on it, but the service cannot point them at
 * nothing, so they stay where they were (docs/semantics.md §4 D28) and the
 * answer names no strands.
 */
export function attachFresh(model: Model, groupId: number, domain: Domain): Result<{ changed: boolean }> {
  const before = model.devicesOf(groupId);
  const r = setGroupDomain(model, model.get("group", groupId)!, domain);
  if (r.ok || !r.error.stranded) return r;
  const left = r.error.stranded.deviceIds;
  for (const device of before) if (left.includes(device.id)) model.putSurvivingRollback("device", device, device.id);
  return { ok: false, error: withoutStrands(r.error) };
}

/** What the search asks of a domain it allocates (IOMMU_HWPT_ALLOC_* and the coherency iommufd sets itself). */
interface Wanted {
  readonly dirtyTracking: boolean;
  /** Enforce cache coherency from the start (iommufd, for a device whose IOMMU can). */
  readonly enforceCoherency: boolean;
}

/**
 * A paging domain for the group's unit, allocated for its device as the
 * kernel does (domain_alloc_paging_flags(dev) / iommu_paging_domain_alloc(dev)):
 * shaped like the unit, finalised there, never a nesting parent. It belongs
 * to no search yet (auto false): the caller marks it once it keeps it
 * (`hwpt_paging->auto_domain = true` comes last in the kernel too), so
 * moving the group off it meanwhile does not free it.
 */
function allocateFor(model: Model, group: Group, container: Container, wanted: Wanted): Result<Domain> {
  const unit = model.get("unit", group.unitId)!;
  const driver = lookupDriver(model, unit.driver);
  if (!driver.ok) return driver;
  const shape = shapedConfig(unit.capabilities, { dirtyTracking: wanted.dirtyTracking });
  const made = allocatePaging(model, driver.value, Domain.make({
    id: model.allocateId("domain"), type: "paging", driver: unit.driver, unitId: null,
    config: shape, containerId: container.id,
    // The container's creator owns what it allocates: another client cannot attach to it directly.
    owner: container.owner,
  }), unit);
  // iommufd allocates and finalises the domain for the device it attaches:
  // a refusal is answered as the host's kernel answers it.
  if (!made.ok) return { ok: false, error: asKernelAnswers(kernelProfile(model.host().kernelProfile), unit.driver, made.error) };
  const domain = made.value;
  // iommufd_hwpt_paging_alloc: iommufd_hwpt_paging_enforce_cc() before
  // anything is attached. A driver that reports the capability accepts it on
  // a new domain (the driver contract; the kernel WARNs otherwise).
  const enforced = wanted.enforceCoherency && domainCanEnforceCoherency(model, domain);
  const allocated = enforced ? { ...domain, config: interned({ ...shape, enforceCacheCoherency: true }) } : domain;
  model.put("domain", allocated);
  return ok(allocated);
}

/** The search keeps the domain it allocated: from now on it is the search's to try, and freed with its last group. */
function keep(model: Model, domainId: number, search: SearchPolicy): void {
  const domain = model.get("domain", domainId)!;
  model.put("domain", { ...domain, auto: true, search });
}

/**
 * The device whose IOMMU capabilities shape the new domain: iommufd asks the
 * device being attached (idev); a container here attaches a whole group, so
 * its first device stands for it (as type1's representative device does).
 */
function deviceOf(model: Model, group: Group) {
  return model.devicesOf(group.id)[0];
}

/**
 * Try each candidate in order: EINVAL means "incompatible, try the next";
 * any other error ends the search. The domain that took the group, or null
 * when none did.
 */
function tryInOrder(model: Model, groupId: number, candidates: readonly Domain[], attempts: Attempt[]): Result<Domain | null> {
  for (const domain of candidates) {
    const r = setGroupDomain(model, model.get("group", groupId)!, domain);
    attempts.push(attempt(domain.id, false, r.ok ? null : r.error));
    if (r.ok) return ok(domain);
    if (r.error.errno !== "EINVAL") return r;
  }
  return ok(null);
}

/** What a search asks of the domain it allocates for the group's device. */
function wantedBy(model: Model, group: Group, policy: SearchPolicy): Wanted {
  const unit = model.get("unit", group.unitId)!;
  const device = deviceOf(model, group);
  const capable = (cap: "enforce-cache-coherency" | "dirty-tracking") => device !== undefined && deviceIommuCapable(model, unit, device, cap);
  return {
    // The kernel allocates with flags 0; QEMU asks for dirty tracking when
    // IOMMU_GET_HW_INFO reports IOMMU_HW_CAP_DIRTY_TRACKING for the device.
    dirtyTracking: policy === "qemu" && capable("dirty-tracking"),
    // idev->enforce_cache_coherency, either way (the kernel allocates both).
    enforceCoherency: capable("enforce-cache-coherency"),
  };
}

/**
 * iommufd's automatic domain for the group's device, allocated as
 * iommufd_device_auto_get_domain() allocates it (flags 0, coherency as the
 * device's IOMMU can) and kept as the kernel search's: the iommufd device
 * paths (iommufd-device.ts) attach it themselves.
 */
export function allocateAutoDomain(model: Model, group: Group, containerId: number): Result<Domain> {
  const container = model.get("container", containerId)!;
  const allocated = allocateFor(model, group, container, wantedBy(model, group, "kernel"));
  if (!allocated.ok) return allocated;
  keep(model, allocated.value.id, "kernel");
  return ok(model.get("domain", allocated.value.id)!);
}

/** The kernel's search for a group (iommufd's first device of a group, iommufd-device.ts). */
export function search(model: Model, caller: Caller, containerId: number, groupId: number): Result<SearchOutcome> {
  return attachThrough(model, caller, containerId, groupId, "kernel");
}

/** An iommufd IOAS: the kernel's automatic-domain search, or QEMU's. */
function searchIoas(model: Model, group: Group, container: Container, policy: SearchPolicy): Result<SearchOutcome> {
  const groupId = group.id;
  const pool = model.domainsOf(container.id).filter((d) => d.search === policy);
  // The kernel appends to ioas->hwpt_list (list_add_tail); QEMU inserts at
  // the head of its container->hwpt_list (QLIST_INSERT_HEAD): newest first.
  const candidates = policy === "qemu" ? pool.reverse() : pool;
  const attempts: Attempt[] = [];
  const found = tryInOrder(model, groupId, candidates, attempts);
  if (!found.ok) return searchFailed(found.error, attempts);
  if (found.value) return ok({ groupId, domainId: found.value.id, allocated: false, attempts });

  const allocated = allocateFor(model, group, container, wantedBy(model, group, policy));
  if (!allocated.ok) return searchFailed(allocated.error, attempts);
  const domainId = allocated.value.id;
  const attached = attachFresh(model, groupId, allocated.value);
  // iommufd_hwpt_paging_alloc: after the immediate attach the domain joins the IOAS (iopt_table_add_domain).
  const r = attached.ok ? checkDomainJoin(model, model.get("domain", domainId)!) : attached;
  attempts.push(attempt(domainId, true, r.ok ? null : r.error));
  if (!r.ok) return failedAfterAllocating(r.error, attempts, domainId);
  keep(model, domainId, policy);
  return ok({ groupId, domainId, allocated: true, attempts });
}

/**
 * A VFIO type1 container: vfio_iommu_type1_attach_group()
 * (drivers/vfio/vfio_iommu_type1.c). Allocate a new domain for the group
 * (iommu_paging_domain_alloc) and attach the group to it: a failure is the
 * answer, the domain freed. Ask the new domain whether it can enforce cache
 * coherency now (ops->enforce_cache_coherency). Then try each domain of the
 * container, newest first (list_add puts a kept domain at the head of
 * domain_list), whose driver and coherency equal the new one's: detach the
 * group from the new domain and attach it there; success frees the new
 * domain; any failure, whatever its errno, re-attaches the new domain (a
 * failure of that is the answer) and goes on. When none took the group, the
 * container keeps the new domain.
 */
function attachType1(model: Model, group: Group, container: Container): Result<SearchOutcome> {
  const groupId = group.id;
  const existing = model.domainsOf(container.id).filter((d) => d.search === "kernel").reverse();
  const attempts: Attempt[] = [];
  const allocated = allocateFor(model, group, container, { dirtyTracking: false, enforceCoherency: false });
  if (!allocated.ok) return searchFailed(allocated.error, attempts);
  const domainId = allocated.value.id;
  const attachNew = (): Result<unknown> => {
    const r = attachFresh(model, groupId, model.get("domain", domainId)!);
    attempts.push(attempt(domainId, true, r.ok ? null : r.error));
    return r;
  };
  const first = attachNew();
  if (!first.ok) return failedAfterAllocating(first.error, attempts, domainId);

  const enforced = domainCanEnforceCoherency(model, model.get("domain", domainId)!);
  if (enforced) {
    const domain = model.get("domain", domainId)!;
    model.put("domain", { ...domain, config: interned({ ...domain.config, enforceCacheCoherency: true }) });
  }
  const driver = allocated.value.driver;
  for (const d of existing) {
    if (d.driver !== driver || d.config.enforceCacheCoherency !== enforced) continue;
    // iommu_detach_group(new): the group goes back to its core domain.
    // iommu_detach_group(new): the group goes back to its core domain (it cannot fail).
    returnToCoreDomain(model, model.get("group", groupId)!);
    const moved = setGroupDomain(model, model.get("group", groupId)!, model.get("domain", d.id)!);
    attempts.push(attempt(d.id, false, moved.ok ? null : moved.error));
    if (moved.ok) {
      model.remove("domain", domainId);
      return ok({ groupId, domainId: d.id, allocated: false, attempts: freedIn(attempts, domainId) });
    }
    const again = attachNew();
    if (!again.ok) return failedAfterAllocating(again.error, attempts, domainId);
  }
  keep(model, domainId, "kernel");
  return ok({ groupId, domainId, allocated: true, attempts });
}

/** The container, if the caller may use it, and the group the caller may move through it. */
function containerGroup(model: Model, caller: Caller, containerId: number, groupId: number): Result<{ container: Container; group: Group }> {
  const container = lookup(model, "container", containerId);
  if (!container.ok) return container;
  const group = movableGroup(model, caller, groupId);
  if (!group.ok) return group;
  const usable = checkCreator("container", container.value, caller);
  return usable.ok ? ok({ container: container.value, group: group.value }) : usable;
}

/**
 * May a group that is not on its core domain be attached through `container`?
 * - Attached through another iommufd IOAS, to an IOAS: yes, as a replace.
 *   VFIO's cdev attach of an attached device is iommufd_device_replace()
 *   (vfio_iommufd_physical_attach_ioas), whose search replaces the page
 *   table (iommufd_device_do_replace) and frees an automatic one left empty.
 * - Attached through another VFIO type1 container, to a type1 container:
 *   VFIO_GROUP_SET_CONTAINER refuses a group that has one
 *   (vfio_group_ioctl_set_container: vfio_group_has_iommu → -EINVAL).
 * - Through type1 to an IOAS, or through an IOAS to type1: the group is
 *   open through VFIO's other interface (vfio_device_block_group,
 *   vfio_group_fops_open → -EBUSY).
 * - Attached by anyone else (not through a container): VFIO and iommufd
 *   must first take DMA ownership, which refuses a group off its default
 *   domain (__iommu_take_dma_ownership → -EBUSY).
 */
function checkAttachedElsewhere(model: Model, group: Group, container: Container): Result<void> {
  if (isOnCoreDomain(group)) return ok(undefined);
  const current = model.get("domain", group.domainId)!;
  const through = current.containerId === null ? undefined : model.get("container", current.containerId);
  if (through?.kind === container.kind) {
    if (container.kind === "iommufd") return ok(undefined);
    return fail("in-other-container", `group ${group.name} is attached through container ${through.name}; detach it there first`, { groupId: group.id, containerId: through.id });
  }
  const how = through ? `through ${through.kind} container ${through.name}` : `to domain ${group.domainId}`;
  return fail("group-attached", `group ${group.name} is attached ${how}; detach it first`, { groupId: group.id, domainId: group.domainId });
}

function attachThrough(model: Model, caller: Caller, containerId: number, groupId: number, policy: SearchPolicy): Result<SearchOutcome> {
  const found = containerGroup(model, caller, containerId, groupId);
  if (!found.ok) return found;
  const { container, group } = found.value;
  if (container.kind === "type1" && policy !== "kernel") {
    return fail("invalid-argument", `container ${container.name} is a VFIO type1 container: VFIO chooses its domains, there is no ${policy} policy`, { containerId });
  }
  const current = model.get("domain", group.domainId)!;
  // Already there: nothing to do, whichever of the container's domains it is (§4 D1).
  if (current.containerId === containerId) return ok({ groupId, domainId: current.id, allocated: false, attempts: [] });
  const free = checkAttachedElsewhere(model, group, container);
  if (!free.ok) return free;
  return container.kind === "type1" ? attachType1(model, group, container) : searchIoas(model, group, container, policy);
}

/** Attach a group through a container; `policy` chooses the search in an iommufd IOAS. */
export function containerAttach(
  model: Model, caller: Caller, containerId: number, groupId: number, policy: SearchPolicy = "kernel",
): Result<SearchOutcome> {
  const result = attachThrough(model, caller, containerId, groupId, policy);
  return recordAttempt(model, "container-attach", caller, { containerId, groupId }, result, result.ok ? result.value.domainId : undefined);
}

/**
 * Detach through the container: the group returns to its core domain, and a
 * domain a search allocated is freed when its last group leaves
 * (iommufd_hw_pagetable_put of an automatic domain; QEMU's
 * iommufd_cdev_autodomains_put; vfio_iommu_type1_detach_group).
 */
export interface Detached {
  readonly groupId: number;
  readonly domainId: number;
  readonly freedDomainId: number | null;
  /** A refusal the must-succeed move overrode (attach.ts CoreReturn). */
  readonly warning?: ErrnoError;
}

export function containerDetach(model: Model, caller: Caller, containerId: number, groupId: number): Result<Detached> {
  const result = ((): Result<Detached> => {
    const found = containerGroup(model, caller, containerId, groupId);
    if (!found.ok) return found;
    const { group } = found.value;
    const current = model.get("domain", group.domainId)!;
    if (current.containerId !== containerId) {
      return fail("not-in-container", `group ${group.name} is not attached through container ${containerId}`, { groupId, containerId });
    }
    const { domainId, warning } = returnToCoreDomain(model, group);
    const freedDomainId = model.get("domain", current.id) ? null : current.id;
    return ok(warning ? { groupId, domainId, freedDomainId, warning } : { groupId, domainId, freedDomainId });
  })();
  const warning = result.ok ? result.value.warning : undefined;
  return recordAttempt(model, "container-detach", caller, { containerId, groupId }, result, result.ok ? result.value.domainId : undefined, warning);
}
