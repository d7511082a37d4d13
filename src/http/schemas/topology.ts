// The topology file format, validated before it is applied.
import { Type, type Static } from "@sinclair/typebox";
import { Name } from "./common.js";
import {
  Capabilities, ContainerKind, CreateReservedRegion, DeviceFlags, DomainConfig, DriverName, HostDriverBody, KernelProfileName, MaxPasids,
} from "./resources.js";

export const TopologyFile = Type.Object({
  $schema: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  /** The host's settings (as PATCH /v1/host sets them). */
  host: Type.Optional(Type.Object({
    kernelProfile: Type.Optional(KernelProfileName),
  }, { additionalProperties: false })),
  units: Type.Array(Type.Object({
    name: Name, driver: DriverName,
    capabilities: Type.Optional(Type.Partial(Capabilities, { additionalProperties: false })),
    online: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false })),
  groups: Type.Optional(Type.Array(Type.Object({
    name: Name, unit: Name,
    devices: Type.Optional(Type.Array(Type.Object({
      name: Name, flags: Type.Optional(Type.Partial(DeviceFlags, { additionalProperties: false })),
      maxPasids: Type.Optional(MaxPasids),
      reservedRegions: Type.Optional(Type.Array(CreateReservedRegion)),
      hostDriver: Type.Optional(HostDriverBody.properties.hostDriver),
    }, { additionalProperties: false }))),
  }, { additionalProperties: false }))),
  containers: Type.Optional(Type.Array(Type.Object({
    name: Name, kind: Type.Optional(ContainerKind),
  }, { additionalProperties: false }))),
  domains: Type.Optional(Type.Array(Type.Object({
    name: Name,
    type: Type.Union([Type.Literal("paging"), Type.Literal("identity"), Type.Literal("blocked")]),
    driver: Type.Optional(DriverName), unit: Type.Optional(Name), container: Type.Optional(Name),
    config: Type.Optional(Type.Partial(DomainConfig, { additionalProperties: false })),
  }, { additionalProperties: false }))),
}, { additionalProperties: false });
export type TopologyFile = Static<typeof TopologyFile>;
