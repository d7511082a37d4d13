// Representations of the simulated objects, one schema per resource.
import { Type, type Static } from "@sinclair/typebox";
import { DOMAIN_TYPES } from "../../core/entities.js";
import { DRIVER_NAMES } from "../../drivers/index.js";
import { ERRNO_VALUES } from "../../core/errno.js";
import { Id, Name, Outcome, Owner, Version } from "./common.js";

/** A string enum: one "must be equal to one of the allowed values" error, not one per value. */
const literalUnion = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...(description ? { description } : {}) });

export const DriverName = literalUnion(DRIVER_NAMES, "Simulated IOMMU driver");
export const ErrnoName = literalUnion(Object.keys(ERRNO_VALUES) as (keyof typeof ERRNO_VALUES)[], "A Linux errno name");

const PageSize = Type.Integer({ minimum: 512, maximum: 2 ** 40, multipleOf: 512 });

export const Capabilities = Type.Object({
  addressWidth: Type.Integer({ minimum: 32, maximum: 64 }),
  pageSizes: Type.Array(PageSize, { minItems: 1, maxItems: 16, uniqueItems: true }),
  snoopControl: Type.Boolean(),
  dirtyTracking: Type.Boolean(),
  nesting: Type.Boolean(),
  domainIds: Type.Integer({ minimum: 1, maximum: 1 << 24 }),
  cpuPageSize: PageSize,
}, { additionalProperties: false });

export const Unit = Type.Object({
  id: Id, name: Type.String(), driver: DriverName, capabilities: Capabilities, online: Type.Boolean(), version: Version,
});
export const CreateUnit = Type.Object({
  name: Name, driver: DriverName,
  capabilities: Type.Optional(Type.Partial(Capabilities, { additionalProperties: false })),
  online: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export const PatchUnit = Type.Object({ online: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 });

export const DeviceFlags = Type.Object({
  noDirty: Type.Boolean(), canwbs: Type.Boolean(), requiresIdentity: Type.Boolean(), pasid: Type.Boolean(),
}, { additionalProperties: false });
export const Device = Type.Object({
  id: Id, name: Type.String(), groupId: Id, flags: DeviceFlags, faulty: Type.Boolean(), version: Version,
});
export const CreateDevice = Type.Object({
  name: Name, groupId: Id, flags: Type.Optional(Type.Partial(DeviceFlags, { additionalProperties: false })),
}, { additionalProperties: false });
export const PatchDevice = Type.Object({
  flags: Type.Optional(Type.Partial(DeviceFlags, { additionalProperties: false })),
  faulty: Type.Optional(Type.Boolean()),
}, { additionalProperties: false, minProperties: 1 });

export const Group = Type.Object({
  id: Id, name: Type.String(), unitId: Id, domainId: Id, defaultDomainId: Id,
  blockingDomainId: Type.Union([Id, Type.Null()]), owner: Type.Union([Type.String(), Type.Null()]),
  deviceIds: Type.Array(Id), version: Version,
});
export const CreateGroup = Type.Object({ name: Name, unitId: Id }, { additionalProperties: false });

export const DomainConfig = Type.Object({
  addressWidth: Type.Integer({ minimum: 32, maximum: 64 }),
  pageSizes: Type.Array(PageSize, { minItems: 1, maxItems: 16, uniqueItems: true }),
  enforceCacheCoherency: Type.Boolean(),
  dirtyTracking: Type.Boolean(),
  nestParent: Type.Boolean(),
}, { additionalProperties: false });
export const Domain = Type.Object({
  id: Id, name: Type.Union([Type.String(), Type.Null()]),
  type: literalUnion(DOMAIN_TYPES), driver: DriverName,
  unitId: Type.Union([Id, Type.Null()], { description: "Unit the domain is finalised on" }),
  config: DomainConfig, auto: Type.Boolean(), containerId: Type.Union([Id, Type.Null()]),
  owner: Type.Union([Type.String(), Type.Null()], { description: "The client that created it; null: an administrator's (every client may use it)" }),
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

export const ContainerConfig = Type.Object({
  enforceCacheCoherency: Type.Boolean(), dirtyTracking: Type.Boolean(),
}, { additionalProperties: false });
export const Container = Type.Object({
  id: Id, name: Type.String(), config: ContainerConfig,
  owner: Type.Union([Type.String(), Type.Null()], { description: "The client that created it; null: an administrator's (every client may use it)" }),
  domainIds: Type.Array(Id), version: Version,
});
export const CreateContainer = Type.Object({
  name: Name, config: Type.Optional(Type.Partial(ContainerConfig, { additionalProperties: false })),
}, { additionalProperties: false });

export const Fault = Type.Object({
  id: Id, unitId: Type.Union([Id, Type.Null()]), deviceId: Type.Union([Id, Type.Null()]),
  errno: Type.String(), remaining: Type.Integer(), version: Version,
});
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
});
