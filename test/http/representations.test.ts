// Every resource's representation is its declared entity, fields in declared
// order, followed by what the representation adds: a field declared in
// src/core/entities.ts reaches clients with nothing else to change.
import { describe, expect, it } from "vitest";
import { ENTITIES, type Kind } from "../../src/core/entities.js";
import * as Resources from "../../src/http/schemas/resources.js";
import { clientForFile } from "../helpers/http.js";

const c = clientForFile();

const EXTRAS: Record<Kind, string[]> = {
  unit: ["version"], container: ["domainIds", "version"], domain: ["attachedGroupCount", "version"],
  group: ["deviceIds", "version"], device: ["version"], fault: ["version"], host: ["version"],
};
const SCHEMAS = {
  unit: Resources.Unit, container: Resources.Container, domain: Resources.Domain,
  group: Resources.Group, device: Resources.Device, fault: Resources.Fault, host: Resources.Host,
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
    const bodies: Record<Kind, object> = {
      unit: await c.read(`/v1/units/${unit.id}`), group: await c.read(`/v1/groups/${group.id}`),
      device: await c.read(`/v1/devices/${devices[0]!.id}`), container: await c.read(`/v1/containers/${container.id}`),
      domain: await c.read(`/v1/domains/${domain.id}`), fault, host: await c.read("/v1/host"),
    };
    for (const [kind, body] of Object.entries(bodies) as [Kind, object][]) expect(Object.keys(body), kind).toEqual(fieldsOf(kind));
  });
});
