// Applying a topology description (a host's units, groups and devices, and
// optional containers and domains) to the model. Objects are matched by name
// and created only when missing, so loading the same file at every start is
// harmless and state built since is kept.
import type { ContainerConfig, DeviceFlags, DomainConfig, DriverName, UnitCapabilities } from "./entities.js";
import type { Topology } from "./model.js";
import { createContainer, createDevice, createDomain, createGroup, createUnit } from "./objects.js";
import { fail, ok, type Result } from "./result.js";

export interface TopologySpec {
  readonly description?: string;
  readonly units: readonly { name: string; driver: DriverName; capabilities?: Partial<UnitCapabilities>; online?: boolean }[];
  readonly groups?: readonly { name: string; unit: string; devices?: readonly { name: string; flags?: Partial<DeviceFlags> }[] }[];
  readonly containers?: readonly { name: string; config?: Partial<ContainerConfig> }[];
  readonly domains?: readonly {
    name: string; type: "paging" | "identity" | "blocked"; driver?: DriverName; unit?: string; container?: string;
    config?: Partial<DomainConfig>;
  }[];
}

export interface TopologySummary {
  readonly created: { units: number; groups: number; devices: number; containers: number; domains: number };
}

export function applyTopology(model: Topology, spec: TopologySpec): Result<TopologySummary> {
  const created = { units: 0, groups: 0, devices: 0, containers: 0, domains: 0 };
  const need = (kind: "unit" | "group" | "container", name: string, where: string): Result<number> => {
    const id = model.idByName(kind, name);
    return id === undefined ? fail("ENOENT", `no-such-${kind}`, `${where} names ${kind} ${name}, which the topology does not define`) : ok(id);
  };
  for (const u of spec.units) {
    if (model.idByName("unit", u.name) !== undefined) continue;
    const r = createUnit(model, u);
    if (!r.ok) return r;
    created.units++;
  }
  for (const g of spec.groups ?? []) {
    let groupId = model.idByName("group", g.name);
    if (groupId === undefined) {
      const unitId = need("unit", g.unit, `group ${g.name}`);
      if (!unitId.ok) return unitId;
      const r = createGroup(model, { name: g.name, unitId: unitId.value });
      if (!r.ok) return r;
      groupId = r.value.id;
      created.groups++;
    }
    for (const d of g.devices ?? []) {
      if (model.idByName("device", d.name) !== undefined) continue;
      const r = createDevice(model, { name: d.name, groupId, flags: d.flags });
      if (!r.ok) return r;
      created.devices++;
    }
  }
  for (const c of spec.containers ?? []) {
    if (model.idByName("container", c.name) !== undefined) continue;
    const r = createContainer(model, c);
    if (!r.ok) return r;
    created.containers++;
  }
  const domainNames = new Set<string>();
  for (const d of model.all("domain")) if (d.name !== null) domainNames.add(d.name);
  for (const d of spec.domains ?? []) {
    if (domainNames.has(d.name)) continue;
    const unitId = d.unit === undefined ? ok(undefined) : need("unit", d.unit, `domain ${d.name}`);
    if (!unitId.ok) return unitId;
    const containerId = d.container === undefined ? ok(undefined) : need("container", d.container, `domain ${d.name}`);
    if (!containerId.ok) return containerId;
    const r = createDomain(model, { name: d.name, type: d.type, driver: d.driver, unitId: unitId.value, containerId: containerId.value, config: d.config });
    if (!r.ok) return r;
    domainNames.add(d.name);
    created.domains++;
  }
  return ok({ created });
}
