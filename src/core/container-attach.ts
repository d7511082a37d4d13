// The retry-on-EINVAL policy run by the service: iommufd's
// iommufd_device_auto_get_domain(). Walk the container's automatic domains
// in order; EINVAL means "incompatible, try the next"; any other error ends
// the search; if none fits, allocate a fresh paging domain for the group's
// unit, attach it, and free it again if that attach fails.
import { checkCreator } from "./access.js";
import { isOnCoreDomain, returnToCoreDomain, setGroupDomain } from "./attach.js";
import type { Caller } from "./caller.js";
import { checkAllocFlags, finaliseOn } from "./domain-alloc.js";
import { shapedConfig } from "./domain-config.js";
import { Domain, type DomainConfig, type Group } from "./entities.js";
import { recordAttempt } from "./events.js";
import { lookup, lookupDriver } from "./lookup.js";
import type { Model } from "./model.js";
import { movableGroup } from "./group-moves.js";
import { outcomeOf, type Outcome } from "./outcome.js";
import { fail, ok, withoutId, type ErrnoError, type Result } from "./result.js";

/** One domain the search tried, and how that went. */
export interface Attempt extends Outcome {
  readonly domainId: number;
  readonly allocated: boolean;
  /**
   * The domain was allocated for this attempt and freed again when the
   * search failed: its id names nothing now (and is never handed out again).
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

/** The configuration iommufd asks for when it allocates for a device. */
function autoDomainConfig(model: Model, group: Group, containerId: number): DomainConfig {
  const unit = model.get("unit", group.unitId)!;
  const container = model.get("container", containerId)!;
  return shapedConfig(unit.capabilities, {
    enforceCacheCoherency: container.config.enforceCacheCoherency,
    dirtyTracking: container.config.dirtyTracking,
  });
}

/** Allocate the domain for the group's unit, finalised there as iommufd does. */
function allocateAutoDomain(model: Model, group: Group, containerId: number): Result<Domain> {
  const unit = model.get("unit", group.unitId)!;
  const driver = lookupDriver(model, unit.driver);
  if (!driver.ok) return driver;
  const config = autoDomainConfig(model, group, containerId);
  const allowed = checkAllocFlags(driver.value, config, unit);
  if (!allowed.ok) return allowed;
  const domain = Domain.make({
    id: model.allocateId("domain"), type: "paging", driver: unit.driver,
    unitId: unit.id, config, auto: true, containerId,
    // The container's creator owns what it allocates: another client cannot attach to it directly.
    owner: model.get("container", containerId)!.owner,
  });
  const finalised = finaliseOn(model, driver.value, domain, unit);
  if (!finalised.ok) return finalised;
  model.put("domain", domain);
  return ok(domain);
}

/** The container, if the caller may use it, and the group the caller may move through it. */
function containerGroup(model: Model, caller: Caller, containerId: number, groupId: number): Result<Group> {
  const container = lookup(model, "container", containerId);
  if (!container.ok) return container;
  const group = movableGroup(model, caller, groupId);
  if (!group.ok) return group;
  const usable = checkCreator("container", container.value, caller);
  return usable.ok ? group : usable;
}

function search(model: Model, caller: Caller, containerId: number, groupId: number): Result<SearchOutcome> {
  const found = containerGroup(model, caller, containerId, groupId);
  if (!found.ok) return found;
  const group = found.value;
  const current = model.get("domain", group.domainId)!;
  if (current.containerId === containerId) {
    return ok({ groupId, domainId: current.id, allocated: false, attempts: [] });
  }
  if (!isOnCoreDomain(group)) {
    return fail("group-attached", `group ${group.name} is attached to domain ${group.domainId}; detach it first`, { groupId, domainId: group.domainId });
  }
  const attempts: Attempt[] = [];
  for (const domain of model.domainsOf(containerId)) {
    if (!domain.auto) continue; // manually created domains are not candidates
    const r = setGroupDomain(model, group, domain);
    attempts.push(attempt(domain.id, false, r.ok ? null : r.error));
    if (r.ok) return ok({ groupId, domainId: domain.id, allocated: false, attempts });
    if (r.error.errno !== "EINVAL") return searchFailed(r.error, attempts);
  }
  const allocated = ((): Result<Domain> => {
    const domain = allocateAutoDomain(model, group, containerId);
    if (!domain.ok) return domain;
    const r = setGroupDomain(model, group, domain.value);
    attempts.push(attempt(domain.value.id, true, r.ok ? null : r.error));
    return r.ok ? ok(domain.value) : r;
  })();
  if (!allocated.ok) {
    // The failed search is undone, the domain allocated for it with it: the
    // answer must not name it as if it existed (the trace says it was freed).
    const tried = attempts.map((a) => (a.allocated ? { ...a, freed: true } : a));
    return searchFailed(withoutId(allocated.error, "domainId"), tried);
  }
  return ok({ groupId, domainId: allocated.value.id, allocated: true, attempts });
}

function searchFailed(error: ErrnoError, attempts: Attempt[]): Result<SearchOutcome> {
  const withAttempts: SearchError = { ...error, attempts };
  return { ok: false, error: withAttempts };
}

export function containerAttach(model: Model, caller: Caller, containerId: number, groupId: number): Result<SearchOutcome> {
  const result = search(model, caller, containerId, groupId);
  return recordAttempt(model, "container-attach", caller, { containerId, groupId }, result, result.ok ? result.value.domainId : undefined);
}

export interface Detached {
  readonly groupId: number;
  readonly domainId: number;
  readonly freedDomainId: number | null;
  /** A refusal the must-succeed move overrode (attach.ts CoreReturn). */
  readonly warning?: ErrnoError;
}

/** Detach through the container (iommufd_device_detach → iommu_detach_group); an automatic domain left empty is freed. */
export function containerDetach(model: Model, caller: Caller, containerId: number, groupId: number): Result<Detached> {
  const result = ((): Result<Detached> => {
    const found = containerGroup(model, caller, containerId, groupId);
    if (!found.ok) return found;
    const group = found.value;
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
