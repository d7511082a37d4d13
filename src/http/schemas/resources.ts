// Representations of the simulated objects, one schema per resource: the
// entity as declared in src/core/entities.ts plus what the representation
// adds (its version, the ids or counts of related rows).
import { Type, type Static, type TObject, type TProperties, type TSchema } from "@sinclair/typebox";
import type { Entity } from "../../core/declare.js";
import * as E from "../../core/entities.js";
import { DRIVER_NAMES } from "../../drivers/index.js";
import { ERRNO_VALUES } from "../../core/errno.js";
import { Id, Name, Outcome, Owner, Version, Warning } from "./common.js";

/** A string enum: one "must be equal to one of the allowed values" error, not one per value. */
const literalUnion = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...(description ? { description } : {}) });

export const DriverName = literalUnion(DRIVER_NAMES, "Simulated IOMMU driver");
export const ErrnoName = literalUnion(Object.keys(ERRNO_VALUES) as (keyof typeof ERRNO_VALUES)[], "A Linux errno name");

export const { UnitCapabilities: Capabilities, DeviceFlags, DomainConfig, ContainerConfig } = E;

/**
 * An entity's representation: its declared fields in order, some given a
 * narrower schema for clients (`narrowed`, e.g. the registered driver
 * names), then the representation's own fields (`extra`).
 */
function representation<P extends TProperties, N extends { [K in keyof P]?: TSchema }, X extends TProperties>(
  entity: Entity<P>, narrowed: N, extra: X,
) {
  return Type.Object({ ...entity.schema.properties, ...narrowed, ...extra } as Omit<P, keyof N> & N & X) as TObject<Omit<P, keyof N> & N & X>;
}

const withDriver = { driver: DriverName };

export const Unit = representation(E.Unit, withDriver, { version: Version });
export const CreateUnit = Type.Object({
  name: Name, driver: DriverName,
  capabilities: Type.Optional(Type.Partial(Capabilities, { additionalProperties: false })),
  online: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export const PatchUnit = Type.Object({ online: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 });

export const Device = representation(E.Device, {}, { version: Version });
export const CreateDevice = Type.Object({
  name: Name, groupId: Id, flags: Type.Optional(Type.Partial(DeviceFlags, { additionalProperties: false })),
}, { additionalProperties: false });
export const PatchDevice = Type.Object({
  flags: Type.Optional(Type.Partial(DeviceFlags, { additionalProperties: false })),
  faulty: Type.Optional(Type.Boolean()),
}, { additionalProperties: false, minProperties: 1 });

export const Group = representation(E.Group, {}, { deviceIds: Type.Array(Id), version: Version });
export const CreateGroup = Type.Object({ name: Name, unitId: Id }, { additionalProperties: false });

export const Domain = representation(E.Domain, withDriver, {
  attachedGroupCount: Type.Integer({ description: "Groups attached now (list them with GET /v1/groups?domainId=)" }),
  version: Version,
});
export const CreateDomain = Type.Object({
  name: Type.Optional(Name),
  type: literalUnion(["paging", "identity", "blocked"] as const),
  driver: Type.Optional(DriverName),
  unitId: Type.Optional(Id),
  containerId: Type.Optional(Id),
  config: Type.Optional(Type.Partial(DomainConfig, { additionalProperties: false })),
}, { additionalProperties: false });

export const Container = representation(E.Container, {}, { domainIds: Type.Array(Id), version: Version });
export const CreateContainer = Type.Object({
  name: Name, config: Type.Optional(Type.Partial(ContainerConfig, { additionalProperties: false })),
}, { additionalProperties: false });

export const Fault = representation(E.Fault, {}, { version: Version });
export const CreateFault = Type.Object({
  unitId: Type.Optional(Id), deviceId: Type.Optional(Id), errno: ErrnoName,
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
}, { additionalProperties: false });

export const Event = Type.Composite([Type.Object({
  seq: Type.Integer(), at: Type.String({ format: "date-time" }), op: Type.String(),
  owner: Type.Union([Type.String(), Type.Null()]),
  groupId: Type.Union([Type.Integer(), Type.Null()]), deviceId: Type.Union([Type.Integer(), Type.Null()]),
  domainId: Type.Union([Type.Integer(), Type.Null()]), containerId: Type.Union([Type.Integer(), Type.Null()]),
}), Outcome]);

// ---- operation bodies and answers ----------------------------------------

export const DomainTarget = Type.Object({ domainId: Id, owner: Type.Optional(Owner) }, { additionalProperties: false });
export type DomainTarget = Static<typeof DomainTarget>;
/** Claim / release: the owner is required in open mode (checked by the auth hook), refused with a token. */
export const OwnerBody = Type.Object({ owner: Type.Optional(Owner) }, { additionalProperties: false });
export const GroupTarget = Type.Object({ groupId: Id, owner: Type.Optional(Owner) }, { additionalProperties: false });

export const Moved = Type.Object({
  changed: Type.Boolean({ description: "False when the group already was there" }),
  group: Group,
  domain: Domain,
  warning: Type.Optional(Warning),
});
