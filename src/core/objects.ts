// Creating and removing units, groups, devices, domains, containers and
// injected faults, with the rules that keep the topology consistent.
import { checkCreator, creatorOf } from "./access.js";
import { isOnCoreDomain } from "./attach.js";
import { ANONYMOUS, type Caller } from "./caller.js";
import { allocatePaging } from "./domain-alloc.js";
import { shapedConfig } from "./domain-config.js";
import {
  Container, DEFAULT_DEVICE_FLAGS, Device, Domain, Fault, Group, Unit, type Host,
  type ContainerKind, type DeviceFlags, type DomainConfig, type DomainType, type UnitCapabilities,
} from "./entities.js";
import type { ErrnoName } from "./errno.js";
import { interned } from "./intern.js";
import { recordTopology } from "./events.js";
import { checkDomainJoin } from "./iova.js";
import { lookup, lookupDriver } from "./lookup.js";
import type { Model } from "./model.js";
import type { KernelProfileName } from "./profiles.js";
import { checkFaultQuota, checkObjectQuota, NO_QUOTAS, type Quotas } from "./quota.js";
import { fail, ok, withIds, type Result } from "./result.js";
import { isStaticDomain, staticDomain } from "./static-domains.js";

function nameFree(model: Model, kind: "unit" | "group" | "device" | "container", name: string): Result<void> {
  return model.idByName(kind, name) === undefined
    ? ok(undefined)
    : fail("name-taken", `a ${kind} named ${name} exists`, { [`${kind}Id`]: model.idByName(kind, name)! });
}

// ---- units ---------------------------------------------------------------

export interface UnitSpec {
  readonly name: string;
  /** A driver of the model's driver table. */
  readonly driver: string;
  readonly capabilities?: Partial<UnitCapabilities>;
  readonly online?: boolean;
}

export function createUnit(model: Model, spec: UnitSpec): Result<Unit> {
  const free = nameFree(model, "unit", spec.name);
  if (!free.ok) return free;
  const driver = lookupDriver(model, spec.driver);
  if (!driver.ok) return driver;
  const unit = Unit.make({
    id: model.allocateId("unit"), name: spec.name, driver: spec.driver,
    capabilities: interned({ ...driver.value.defaults, ...spec.capabilities }),
    online: spec.online,
  });
  model.put("unit", unit);
  recordTopology(model, "create", "unit", unit.id);
  return ok(unit);
}

export function updateUnit(model: Model, id: number, patch: { online?: boolean }): Result<Unit> {
  const unit = lookup(model, "unit", id);
  if (!unit.ok) return unit;
  const next: Unit = { ...unit.value, online: patch.online ?? unit.value.online };
  model.put("unit", next);
  recordTopology(model, "update", "unit", id);
  return ok(next);
}

export function deleteUnit(model: Model, id: number): Result<void> {
  const unit = lookup(model, "unit", id);
  if (!unit.ok) return unit;
  const groups = model.groupCountOnUnit(id);
  const domains = model.domainCountBoundTo(id);
  if (groups > 0 || domains > 0) {
    return fail("unit-in-use", `${unit.value.name} still has ${groups} group(s) and ${domains} domain(s)`, { unitId: id });
  }
  for (const f of model.faultsOn({ unitId: id })) model.remove("fault", f.id);
  model.remove("unit", id);
  recordTopology(model, "delete", "unit", id);
  return ok(undefined);
}

// ---- groups --------------------------------------------------------------

export function createGroup(model: Model, spec: { name: string; unitId: number }): Result<Group> {
  const unit = lookup(model, "unit", spec.unitId);
  if (!unit.ok) return unit;
  const free = nameFree(model, "group", spec.name);
  if (!free.ok) return free;
  const domainId = model.allocateId("domain");
  // Unnamed: defaultDomainId names it, and 100,000 "-default" strings are MBs.
  model.put("domain", Domain.make({
    id: domainId, type: "dma", driver: unit.value.driver, unitId: unit.value.id, config: shapedConfig(unit.value.capabilities),
  }));
  const group = Group.make({
    id: model.allocateId("group"), name: spec.name, unitId: unit.value.id, domainId, defaultDomainId: domainId,
  });
  model.put("group", group);
  recordTopology(model, "create", "group", group.id);
  return ok(group);
}

export function deleteGroup(model: Model, id: number): Result<void> {
  const group = lookup(model, "group", id);
  if (!group.ok) return group;
  const g = group.value;
  const devices = model.devicesOf(id).length;
  if (devices > 0) return fail("group-has-devices", `group ${g.name} still has ${devices} device(s)`, { groupId: id });
  if (g.owner !== null) return fail("group-not-default", `group ${g.name} is owned by ${g.owner}`, { groupId: id });
  if (g.domainId !== g.defaultDomainId) {
    return fail("group-not-default", `group ${g.name} is attached to domain ${g.domainId}`, { groupId: id, domainId: g.domainId });
  }
  model.remove("group", id);
  model.remove("domain", g.defaultDomainId);
  if (g.blockingDomainId !== null) model.remove("domain", g.blockingDomainId);
  recordTopology(model, "delete", "group", id);
  return ok(undefined);
}

// ---- devices -------------------------------------------------------------

/**
 * The flags a device is probed with decide which of its group's domains it
 * can be on; a device whose flags its group's domains refuse does not join
 * (iommu_probe_device fails). `was`: the flags it had, for a device changing
 * them (only a flag turned on is judged, so a stored device keeps working).
 *
 * - Needs identity mappings (IOMMU_RESV_DIRECT): __iommu_probe_device puts a
 *   joining device on the group's domain through __iommu_device_set_domain,
 *   which refuses a blocked domain; an owned group is on its blocking domain,
 *   or returns there on detach, which must not fail.
 * - Untrusted: never on an identity domain (iommu_get_default_domain_type).
 */
function checkJoin(model: Model, group: Group, name: string, flags: DeviceFlags, was?: DeviceFlags): Result<void> {
  const domain = model.get("domain", group.domainId)!;
  if (flags.requiresIdentity && !was?.requiresIdentity && (group.owner !== null || domain.type === "blocked")) {
    const why = group.owner !== null ? `is owned by ${group.owner} and cannot return to its blocking domain` : `is on blocked domain ${domain.id}`;
    return fail("requires-identity", `${name} needs a 1:1 mapping for firmware-reserved regions; group ${group.name} ${why}`, { groupId: group.id });
  }
  if (flags.untrusted && !was?.untrusted && domain.type === "identity") {
    return fail("untrusted-device", `${name} is untrusted; group ${group.name} is on identity domain ${domain.id}`, { groupId: group.id });
  }
  return ok(undefined);
}

export function createDevice(model: Model, spec: { name: string; groupId: number; flags?: Partial<DeviceFlags>; maxPasids?: number }): Result<Device> {
  const group = lookup(model, "group", spec.groupId);
  if (!group.ok) return group;
  const free = nameFree(model, "device", spec.name);
  if (!free.ok) return free;
  if (!isOnCoreDomain(group.value)) {
    return fail("group-attached", `group ${group.value.name} is attached to domain ${group.value.domainId}; a device can join it only on its core domain`, { groupId: spec.groupId });
  }
  const flags = interned({ ...DEFAULT_DEVICE_FLAGS, ...spec.flags });
  const joins = checkJoin(model, group.value, spec.name, flags);
  if (!joins.ok) return joins;
  const device = Device.make({
    id: model.allocateId("device"), name: spec.name, groupId: spec.groupId, flags, maxPasids: spec.maxPasids,
  });
  const setUp = setupDefaultDomain(model, group.value, device);
  if (!setUp.ok) return { ok: false, error: withIds(setUp.error, { groupId: group.value.id, domainId: group.value.defaultDomainId }) };
  model.put("device", device);
  recordTopology(model, "create", "device", device.id);
  return ok(device);
}

/**
 * iommu_setup_default_domain, for a group's first device: the kernel has no
 * empty groups, so a group's default domain is allocated (and finalised) for
 * its first device and attached to it, taking whatever ID its driver spends
 * on one; the device's probe fails when that is refused. Later devices join a
 * default domain that already holds its ID (VT-d's is refcounted per device,
 * counted by the model).
 */
function setupDefaultDomain(model: Model, group: Group, device: Device): Result<void> {
  if (model.deviceCountOf(group.id) > 0) return ok(undefined);
  const unit = model.get("unit", group.unitId)!;
  const driver = lookupDriver(model, unit.driver);
  if (!driver.ok) return driver;
  if (!driver.value.setupDefaultDomain) return ok(undefined);
  const domain = model.get("domain", group.defaultDomainId)!;
  return driver.value.setupDefaultDomain({
    unit, device, domain, attached: group.domainId === group.defaultDomainId, usage: model.usage,
  });
}

export function updateDevice(model: Model, id: number, patch: { flags?: Partial<DeviceFlags>; faulty?: boolean }): Result<Device> {
  const device = lookup(model, "device", id);
  if (!device.ok) return device;
  const flags = patch.flags ? interned({ ...device.value.flags, ...patch.flags }) : device.value.flags;
  const stays = checkJoin(model, model.get("group", device.value.groupId)!, device.value.name, flags, device.value.flags);
  if (!stays.ok) return { ok: false, error: withIds(stays.error, { deviceId: id }) };
  const next: Device = { ...device.value, flags, faulty: patch.faulty ?? device.value.faulty };
  model.put("device", next);
  recordTopology(model, "update", "device", id);
  return ok(next);
}

export function deleteDevice(model: Model, id: number): Result<void> {
  const device = lookup(model, "device", id);
  if (!device.ok) return device;
  const group = model.get("group", device.value.groupId)!;
  if (!isOnCoreDomain(group)) {
    return fail("group-attached", `group ${group.name} is attached to domain ${group.domainId}; detach it before removing ${device.value.name}`, { deviceId: id, groupId: group.id });
  }
  if (device.value.hostDriver !== null) {
    return fail("device-has-driver", `${device.value.name} is bound to host driver ${device.value.hostDriver}; unbind it before removing the device`, { deviceId: id });
  }
  const iommufd = model.iommufdDeviceOf(id);
  if (iommufd) {
    return fail("device-has-driver", `${device.value.name} is bound to ${iommufd.owner}'s iommufd context; unbind it before removing the device`, { deviceId: id });
  }
  const pasids = model.pasidCountOfDevice(id);
  if (pasids > 0) {
    return fail("pasid-in-use", `${pasids} PASID(s) were attached through ${device.value.name}; detach them before removing the device`, { deviceId: id });
  }
  for (const f of model.faultsOn({ deviceId: id })) model.remove("fault", f.id);
  for (const r of model.regionsOf(id)) model.remove("region", r.id);
  model.remove("device", id);
  recordTopology(model, "delete", "device", id);
  return ok(undefined);
}

// ---- domains -------------------------------------------------------------

export interface DomainSpec {
  readonly name?: string | null;
  readonly type: Exclude<DomainType, "dma">;
  readonly driver?: string;
  readonly unitId?: number;
  readonly containerId?: number;
  readonly config?: Partial<DomainConfig>;
}

/**
 * domain_alloc_paging(_flags): with a unit the domain is allocated for that
 * unit's device and, on drivers that finalise at allocation, finalised there
 * at once (core/domain-alloc.ts). A client is recorded as its creator and may
 * put it only in a container it may use.
 * An identity or blocked domain is the driver's static one (static-domains.ts).
 */
export function createDomain(model: Model, spec: DomainSpec, caller: Caller = ANONYMOUS, quotas: Quotas = NO_QUOTAS): Result<Domain> {
  let unit: Unit | null = null;
  if (spec.unitId !== undefined) {
    const found = lookup(model, "unit", spec.unitId);
    if (!found.ok) return found;
    unit = found.value;
  }
  if (spec.containerId !== undefined) {
    const found = lookup(model, "container", spec.containerId);
    if (!found.ok) return found;
    const usable = checkCreator("container", found.value, caller);
    if (!usable.ok) return usable;
    // VFIO type1 has no page table a user allocates: its domains are the
    // ones vfio_iommu_type1_attach_group() allocates.
    if (found.value.kind === "type1") {
      return fail("invalid-argument", `container ${found.value.name} is a VFIO type1 container; only its own search allocates its domains`, { containerId: spec.containerId });
    }
  }
  const driverName = spec.driver ?? unit?.driver;
  if (!driverName) return fail("invalid-argument", "a domain needs a driver or a unitId");
  if (unit && unit.driver !== driverName) {
    return fail("driver-mismatch", `unit ${unit.name} is ${unit.driver}, not ${driverName}`, { unitId: unit.id });
  }
  const found = lookupDriver(model, driverName);
  if (!found.ok) return found;
  const driver = found.value;
  // The driver's, not the caller's: it counts against no quota.
  if (spec.type !== "paging") {
    const existed = model.staticDomainId(driver.name, spec.type) !== undefined;
    const made = staticDomain(model, driver, spec.type, spec);
    if (made.ok && !existed) recordTopology(model, "create", "domain", made.value.id);
    return made;
  }
  const quota = checkObjectQuota(model, creatorOf(caller), quotas);
  if (!quota.ok) return quota;
  const config: DomainConfig = shapedConfig(unit?.capabilities ?? driver.defaults, spec.config);
  const domain = Domain.make({
    id: model.allocateId("domain"), name: spec.name ?? null, type: spec.type, driver: driverName,
    unitId: unit?.id ?? null, config, containerId: spec.containerId ?? null, owner: creatorOf(caller),
  });
  const allocated = spec.type === "paging" ? allocatePaging(model, driver, domain, unit) : ok(domain);
  if (!allocated.ok) return allocated;
  if (spec.type === "paging") {
    // IOMMU_HWPT_ALLOC on an IOAS: the new page table joins it (iopt_table_add_domain).
    const joined = checkDomainJoin(model, allocated.value);
    if (!joined.ok) return joined;
  }
  model.put("domain", allocated.value);
  recordTopology(model, "create", "domain", allocated.value.id, creatorOf(caller));
  return ok(allocated.value);
}

export function deleteDomain(model: Model, id: number, caller: Caller = ANONYMOUS): Result<void> {
  const domain = lookup(model, "domain", id);
  if (!domain.ok) return domain;
  const mine = checkCreator("domain", domain.value, caller);
  if (!mine.ok) return mine;
  const attached = model.attachedGroupCount(id);
  if (attached > 0) return fail("domain-in-use", `domain ${id} is attached to ${attached} group(s)`, { domainId: id });
  const stranded = model.strandedDeviceCount(id);
  if (stranded > 0) {
    return fail("domain-in-use", `domain ${id} still translates ${stranded} device(s) a partial group attach left on it`, { domainId: id });
  }
  if (model.isCoreDomainOfAGroup(id)) {
    return fail("domain-in-use", `domain ${id} is a group's default or blocking domain`, { domainId: id });
  }
  if (isStaticDomain(domain.value)) {
    return fail("domain-in-use", `domain ${id} is the static ${domain.value.type} domain of ${domain.value.driver}, which lives as long as its driver`, { domainId: id });
  }
  const pasids = model.pasidCountOfDomain(id);
  if (pasids > 0) return fail("domain-in-use", `domain ${id} is attached to ${pasids} PASID(s)`, { domainId: id });
  model.remove("domain", id);
  recordTopology(model, "delete", "domain", id, creatorOf(caller));
  return ok(undefined);
}

// ---- containers ----------------------------------------------------------

/** An iommufd IOAS unless `kind` says type1; the kind never changes. */
export function createContainer(
  model: Model, spec: { name: string; kind?: ContainerKind }, caller: Caller = ANONYMOUS, quotas: Quotas = NO_QUOTAS,
): Result<Container> {
  const free = nameFree(model, "container", spec.name);
  if (!free.ok) return free;
  const quota = checkObjectQuota(model, creatorOf(caller), quotas);
  if (!quota.ok) return quota;
  const container = Container.make({
    id: model.allocateId("container"), name: spec.name, kind: spec.kind, owner: creatorOf(caller),
  });
  model.put("container", container);
  recordTopology(model, "create", "container", container.id, creatorOf(caller));
  return ok(container);
}

export function deleteContainer(model: Model, id: number, caller: Caller = ANONYMOUS): Result<void> {
  const container = lookup(model, "container", id);
  if (!container.ok) return container;
  const mine = checkCreator("container", container.value, caller);
  if (!mine.ok) return mine;
  const domains = model.domainsOf(id);
  if (domains.length > 0) {
    return fail("container-in-use", `container ${container.value.name} still holds ${domains.length} domain(s)`, { containerId: id });
  }
  // iommufd_ioas_destroy unmaps whatever is still mapped (iopt_unmap_all).
  for (const m of model.mappingsOf(id)) model.remove("mapping", m.id);
  model.remove("container", id);
  recordTopology(model, "delete", "container", id, creatorOf(caller));
  return ok(undefined);
}

// ---- injected faults -----------------------------------------------------

export function injectFault(
  model: Model, spec: { unitId?: number; deviceId?: number; errno: ErrnoName; count: number }, quotas: Quotas = NO_QUOTAS,
): Result<Fault> {
  if ((spec.unitId === undefined) === (spec.deviceId === undefined)) {
    return fail("invalid-argument", "name exactly one of unitId and deviceId");
  }
  if (spec.unitId !== undefined) {
    const unit = lookup(model, "unit", spec.unitId);
    if (!unit.ok) return unit;
  }
  if (spec.deviceId !== undefined) {
    const device = lookup(model, "device", spec.deviceId);
    if (!device.ok) return device;
  }
  const quota = checkFaultQuota(model, spec.count, quotas);
  if (!quota.ok) return quota;
  const fault = Fault.make({
    id: model.allocateId("fault"), unitId: spec.unitId ?? null, deviceId: spec.deviceId ?? null,
    errno: spec.errno, remaining: spec.count,
  });
  model.put("fault", fault);
  recordTopology(model, "create", "fault", fault.id);
  return ok(fault);
}

export function deleteFault(model: Model, id: number): Result<void> {
  const fault = lookup(model, "fault", id);
  if (!fault.ok) return fault;
  model.remove("fault", id);
  recordTopology(model, "delete", "fault", id);
  return ok(undefined);
}

export function clearFaults(model: Model): Result<{ cleared: number }> {
  const ids = [...model.all("fault")].map((f) => f.id);
  for (const id of ids) {
    model.remove("fault", id);
    recordTopology(model, "delete", "fault", id);
  }
  return ok({ cleared: ids.length });
}

// ---- the host's settings -------------------------------------------------

export interface HostSettings {
  /** A name of src/core/profiles.ts KERNEL_PROFILES. */
  readonly kernelProfile?: KernelProfileName;
}

/** Stores the host's settings; what the patch leaves out keeps its value. */
export function updateHost(model: Model, patch: HostSettings): Result<Host> {
  const host: Host = { ...model.host(), ...patch };
  model.put("host", host);
  recordTopology(model, "update", "host", host.id);
  return ok(host);
}
