// Applying a topology description (a host's units, groups and devices, and
// optional containers and domains) to the model. Objects are matched by name:
// one that is missing is created, one that is present and agrees with the
// file is left alone, one that is present but disagrees (another driver or
// unit, a device in another group, a device that cannot join a group attached
// elsewhere, ...) is a conflict. All or nothing: with any conflict, nothing
// the file would create is kept, and every conflict is reported, not only the
// first.
//
// Only what the API cannot change is compared (a device's PASID width is):
// a unit's online flag, a device's flags, host driver and reserved regions
// and a group's attachment are the service's state, not the host's
// description. A device's reserved regions come with the device when the
// file creates it. The host's settings (its kernel profile) are not
// objects: a file that names them sets them.
import type { ContainerKind, DeviceFlags, DomainConfig, UnitCapabilities } from "./entities.js";
import type { Caller } from "./caller.js";
import { bindHostDriver } from "./host-driver.js";
import { createReservedRegion, type RegionSpec } from "./iova.js";
import type { Model } from "./model.js";
import { createContainer, createDevice, createDomain, createGroup, createUnit, updateHost, type HostSettings } from "./objects.js";
import { isStaticDomain } from "./static-domains.js";

/** The host itself applies the file: an administrator's act, no client's. */
const HOST: Caller = { owner: null, admin: true };

export interface TopologySpec {
  readonly description?: string;
  readonly host?: HostSettings;
  readonly units: readonly { name: string; driver: string; capabilities?: Partial<UnitCapabilities>; online?: boolean }[];
  readonly groups?: readonly {
    name: string; unit: string;
    devices?: readonly {
      name: string; flags?: Partial<DeviceFlags>; maxPasids?: number; reservedRegions?: readonly RegionSpec[];
      /** A host (kernel) driver bound at probe, as the host's driver core binds it. */
      hostDriver?: string;
    }[];
  }[];
  readonly containers?: readonly { name: string; kind?: ContainerKind }[];
  readonly domains?: readonly {
    name: string; type: "paging" | "identity" | "blocked"; driver?: string; unit?: string; container?: string;
    config?: Partial<DomainConfig>;
  }[];
}

export const TOPOLOGY_KINDS = ["units", "groups", "devices", "containers", "domains"] as const;
export type TopologyKind = (typeof TOPOLOGY_KINDS)[number];
export type TopologyCounts = Record<TopologyKind, number>;

export interface TopologyReport {
  /** Created by the file (with conflicts: what it would have created; nothing was kept). */
  readonly created: TopologyCounts;
  /** Already in the model, agreeing with the file. */
  readonly present: TopologyCounts;
  /** One sentence per disagreement; non-empty means the model is unchanged. */
  readonly conflicts: readonly string[];
  /** The kernel profile the file sets (null: it names none), and whether that changed the host's. */
  readonly kernelProfile: { readonly name: string; readonly changed: boolean } | null;
}

const zero = (): TopologyCounts => ({ units: 0, groups: 0, devices: 0, containers: 0, domains: 0 });

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function applyTopology(model: Model, spec: TopologySpec): TopologyReport {
  const savepoint = model.savepoint();
  const eventMark = model.eventCount();
  const created = zero();
  const present = zero();
  const conflicts: string[] = [];
  const nameOf = (kind: "unit" | "group" | "container", id: number | null) => (id === null ? null : model.get(kind, id)?.name ?? null);

  for (const u of spec.units) {
    const id = model.idByName("unit", u.name);
    if (id === undefined) {
      const r = createUnit(model, u);
      if (r.ok) created.units++;
      else conflicts.push(`unit ${u.name}: ${r.error.detail}`);
      continue;
    }
    const unit = model.get("unit", id)!;
    const differs = unit.driver !== u.driver ? [`driver ${unit.driver}, the file says ${u.driver}`] : [];
    for (const [key, value] of Object.entries(u.capabilities ?? {})) {
      const stored = unit.capabilities[key as keyof UnitCapabilities];
      if (!same(stored, value)) differs.push(`${key} ${JSON.stringify(stored)}, the file says ${JSON.stringify(value)}`);
    }
    if (differs.length > 0) conflicts.push(`unit ${u.name} exists with ${differs.join("; ")}`);
    else present.units++;
  }

  for (const g of spec.groups ?? []) {
    let groupId = model.idByName("group", g.name);
    if (groupId === undefined) {
      const unitId = model.idByName("unit", g.unit);
      if (unitId === undefined) {
        conflicts.push(`group ${g.name} names unit ${g.unit}, which neither the database nor the file defines`);
        continue;
      }
      const r = createGroup(model, { name: g.name, unitId });
      if (!r.ok) {
        conflicts.push(`group ${g.name}: ${r.error.detail}`);
        continue;
      }
      groupId = r.value.id;
      created.groups++;
    } else {
      const onUnit = nameOf("unit", model.get("group", groupId)!.unitId);
      if (onUnit !== g.unit) {
        conflicts.push(`group ${g.name} exists on unit ${onUnit}, the file puts it on ${g.unit}`);
        continue;
      }
      present.groups++;
    }
    for (const d of g.devices ?? []) {
      const deviceId = model.idByName("device", d.name);
      if (deviceId === undefined) {
        const r = createDevice(model, { name: d.name, groupId, flags: d.flags, maxPasids: d.maxPasids });
        if (!r.ok) {
          conflicts.push(`device ${d.name}: ${r.error.detail}`);
          continue;
        }
        created.devices++;
        for (const region of d.reservedRegions ?? []) {
          const made = createReservedRegion(model, r.value.id, region);
          if (!made.ok) conflicts.push(`device ${d.name}: ${made.error.detail}`);
        }
        if (d.hostDriver !== undefined) {
          // iommu_device_use_default_domain() at probe: the binding is an event like any other.
          const bound = bindHostDriver(model, HOST, r.value.id, d.hostDriver);
          if (!bound.ok) conflicts.push(`device ${d.name}: ${bound.error.detail}`);
        }
        continue;
      }
      const device = model.get("device", deviceId)!;
      const inGroup = nameOf("group", device.groupId);
      if (inGroup !== g.name) conflicts.push(`device ${d.name} exists in group ${inGroup}, the file puts it in ${g.name}`);
      else if (d.maxPasids !== undefined && d.maxPasids !== device.maxPasids) {
        conflicts.push(`device ${d.name} exists with maxPasids ${device.maxPasids}, the file says ${d.maxPasids}`);
      } else present.devices++;
    }
  }

  for (const c of spec.containers ?? []) {
    const id = model.idByName("container", c.name);
    if (id !== undefined) {
      const kind = model.get("container", id)!.kind;
      if (kind !== (c.kind ?? "iommufd")) conflicts.push(`container ${c.name} exists with kind ${kind}, the file says ${c.kind ?? "iommufd"}`);
      else present.containers++;
      continue;
    }
    const r = createContainer(model, c);
    if (r.ok) created.containers++;
    else conflicts.push(`container ${c.name}: ${r.error.detail}`);
  }

  const domains = new Map<string, number>();
  for (const d of model.all("domain")) if (d.name !== null) domains.set(d.name, d.id);
  for (const d of spec.domains ?? []) {
    const existing = domains.get(d.name);
    if (existing !== undefined) {
      const domain = model.get("domain", existing)!;
      const differs: string[] = [];
      if (domain.type !== d.type) differs.push(`type ${domain.type}, the file says ${d.type}`);
      if (d.driver !== undefined && domain.driver !== d.driver) differs.push(`driver ${domain.driver}, the file says ${d.driver}`);
      // A static domain is bound to no unit: a unit in the file only names its driver.
      // A domain allocated for a unit whose driver finalises only at its first
      // attach (SMMUv2) is unbound until then: the unit's driver is all that can differ.
      const fileUnitId = d.unit === undefined ? undefined : model.idByName("unit", d.unit);
      const unitDriver = fileUnitId === undefined ? undefined : model.get("unit", fileUnitId)?.driver;
      if (d.unit !== undefined && isStaticDomain(domain)) {
        if (unitDriver !== domain.driver) differs.push(`driver ${domain.driver}, the file's unit ${d.unit} is ${unitDriver ?? "not defined"}`);
      } else {
        const unbound = domain.unitId === null && unitDriver === domain.driver;
        if (d.unit !== undefined && !unbound && nameOf("unit", domain.unitId) !== d.unit) differs.push(`unit ${nameOf("unit", domain.unitId)}, the file says ${d.unit}`);
      }
      if (d.container !== undefined && nameOf("container", domain.containerId) !== d.container) {
        differs.push(`container ${nameOf("container", domain.containerId)}, the file says ${d.container}`);
      }
      if (differs.length > 0) conflicts.push(`domain ${d.name} exists with ${differs.join("; ")}`);
      else present.domains++;
      continue;
    }
    const unitId = d.unit === undefined ? undefined : model.idByName("unit", d.unit);
    const containerId = d.container === undefined ? undefined : model.idByName("container", d.container);
    if (d.unit !== undefined && unitId === undefined) {
      conflicts.push(`domain ${d.name} names unit ${d.unit}, which neither the database nor the file defines`);
      continue;
    }
    if (d.container !== undefined && containerId === undefined) {
      conflicts.push(`domain ${d.name} names container ${d.container}, which neither the database nor the file defines`);
      continue;
    }
    const r = createDomain(model, { name: d.name, type: d.type, driver: d.driver, unitId, containerId, config: d.config });
    if (!r.ok) {
      conflicts.push(`domain ${d.name}: ${r.error.detail}`);
      continue;
    }
    domains.set(d.name, r.value.id);
    created.domains++;
  }

  let kernelProfile: TopologyReport["kernelProfile"] = null;
  if (spec.host?.kernelProfile !== undefined) {
    const changed = model.host().kernelProfile !== spec.host.kernelProfile;
    if (changed) updateHost(model, { kernelProfile: spec.host.kernelProfile });
    kernelProfile = { name: spec.host.kernelProfile, changed };
  }

  if (conflicts.length > 0) {
    // What it created, set and bound is undone, so the events saying so are
    // dropped too (the caller's perform() sees a success: the report).
    model.rollbackTo(savepoint);
    model.forgetEventsAfter(eventMark);
  }
  return { created, present, conflicts, kernelProfile };
}

/** The report as lines for a person: one per kind, then one per conflict. */
export function describeTopologyReport(report: TopologyReport): string[] {
  const applied = report.conflicts.length === 0;
  const lines = TOPOLOGY_KINDS.map((kind) =>
    `${kind.padEnd(11)} ${report.created[kind]} ${applied ? "created" : "would be created"}, ${report.present[kind]} already present`);
  if (report.kernelProfile !== null) {
    const { name, changed } = report.kernelProfile;
    lines.push(`${"host".padEnd(11)} kernel profile ${name} ${changed ? (applied ? "set" : "would be set") : "already set"}`);
  }
  for (const conflict of report.conflicts) lines.push(`conflict: ${conflict}`);
  lines.push(applied ? "applied" : `not applied: ${report.conflicts.length} conflict(s); the database is unchanged`);
  return lines;
}
