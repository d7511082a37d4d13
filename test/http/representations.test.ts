// Every resource's representation is its declared entity, fields in declared
// order, followed by what the representation adds: a field declared in
// src/core/entities.ts reaches clients with nothing else to change.
import { describe, expect, it } from "vitest";
import { ENTITIES, type Kind } from "../../src/core/entities.js";
import * as Resources from "../../src/http/schemas/resources.js";
import { clientForFile, type ContainerView, type DomainView, type SearchView } from "../helpers/http.js";

const c = clientForFile();

const EXTRAS: Record<Kind, string[]> = {
  unit: ["version"], container: ["domainIds", "version"], domain: ["attachedGroupCount", "version"],
  group: ["deviceIds", "version"], device: ["version"], fault: ["version"], pasid: ["version"], iommufd: ["version"],
  mapping: ["version"], region: ["version"], host: ["version"],
};
const SCHEMAS = {
  unit: Resources.Unit, container: Resources.Container, domain: Resources.Domain,
  group: Resources.Group, device: Resources.Device, fault: Resources.Fault, pasid: Resources.PasidAttachment,
  mapping: Resources.Mapping, region: Resources.ReservedRegion,
  iommufd: Resources.IommufdDevice, host: Resources.Host,
} as const;
const fieldsOf = (kind: Kind) => [...ENTITIES[kind].fields.map((f) => f.name), ...EXTRAS[kind]];

describe("representations", () => {
  it.each(Object.keys(SCHEMAS) as Kind[])("%s: the schema is the declared fields, then the representation's own", (kind) => {
    expect(Object.keys(SCHEMAS[kind].properties)).toEqual(fieldsOf(kind));
  });

  it("a client gets each resource with its fields in that order", async () => {
    const unit = await c.unit();
    const { group, devices } = await c.groupWith(unit.id);
    const container = await c.container();
    const domain = await c.domain({ unitId: unit.id, containerId: container.id });
    const fault = await c.fault({ deviceId: devices[0]!.id, errno: "EIO" });
    const pasidDevice = await c.expect<{ id: number }>(201, "POST", "/v1/devices", { name: `pasid-${unit.id}`, groupId: (await c.group(unit.id)).id, maxPasids: 16 });
    await c.expect(201, "POST", `/v1/devices/${pasidDevice.id}/pasids`, { pasid: 3, domainId: (await c.domain({ unitId: unit.id })).id });
    const mapping = await c.mapping(container.id, { iova: 2 ** 40, length: 2 ** 21 });
    const region = await c.region(devices[0]!.id, { start: 0xfee00000, length: 0x100000, type: "msi" });
    const bound = await c.groupWith(unit.id);
    await c.expect(201, "POST", `/v1/devices/${bound.devices[0]!.id}/iommufd`, { owner: "vmm" });
    const bodies: Record<Kind, object> = {
      unit: await c.read(`/v1/units/${unit.id}`), group: await c.read(`/v1/groups/${group.id}`),
      device: await c.read(`/v1/devices/${devices[0]!.id}`), container: await c.read(`/v1/containers/${container.id}`),
      domain: await c.read(`/v1/domains/${domain.id}`), fault,
      pasid: (await c.read<{ items: object[] }>(`/v1/devices/${pasidDevice.id}/pasids`)).items[0]!,
      mapping: await c.read(`/v1/containers/${container.id}/mappings/${mapping.id}`),
      region: await c.read(`/v1/devices/${devices[0]!.id}/reserved-regions/${region.id}`),
      iommufd: await c.read(`/v1/devices/${bound.devices[0]!.id}/iommufd`),
      host: await c.read("/v1/host"),
    };
    for (const [kind, body] of Object.entries(bodies) as [Kind, object][]) expect(Object.keys(body), kind).toEqual(fieldsOf(kind));
  });

  it("a container says its kind, a domain which container search allocated it", async () => {
    const unit = await c.unit({ driver: "mock" });
    const type1 = await c.container({ kind: "type1" });
    const ioas = await c.container();
    expect([(await c.read<ContainerView>(`/v1/containers/${type1.id}`)).kind, (await c.read<ContainerView>(`/v1/containers/${ioas.id}`)).kind]).toEqual(["type1", "iommufd"]);
    const searched = async (containerId: number, policy?: string) => {
      const { group } = await c.groupWith(unit.id);
      const r = await c.ok<SearchView>("POST", `/v1/containers/${containerId}/attach`, { groupId: group.id, ...(policy ? { policy } : {}) });
      return (await c.read<DomainView>(`/v1/domains/${r.domain.id}`)).search;
    };
    expect([await searched(ioas.id), await searched(ioas.id, "qemu"), await searched(type1.id)]).toEqual(["kernel", "qemu", "kernel"]);
    expect((await c.domain({ unitId: unit.id, containerId: ioas.id })).search).toBe("none");
  });
});
