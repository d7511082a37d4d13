// Representations of the simulated objects, one schema per resource: the
// entity as declared in src/core/entities.ts plus what the representation
// adds (its version, the ids or counts of related rows).
import { Type, type Static, type TObject, type TProperties, type TSchema } from "@sinclair/typebox";
import type { Entity } from "../../core/declare.js";
import * as E from "../../core/entities.js";
import { DRIVER_NAMES } from "../../drivers/index.js";
import { ERRNO_VALUES } from "../../core/errno.js";
import { MAX_UINT64_EXACT } from "../../core/declare.js";
import { KERNEL_PROFILE_NAMES } from "../../core/profiles.js";
import { Attempt, Id, MAX_ID, Name, Outcome, Owner, Version, Warning } from "./common.js";

/** A string enum: one "must be equal to one of the allowed values" error, not one per value. */
const literalUnion = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...(description ? { description } : {}) });

export const DriverName = literalUnion(DRIVER_NAMES, "Simulated IOMMU driver");
export const KernelProfileName = literalUnion(KERNEL_PROFILE_NAMES,
  "Kernel-version profile: 6.1 (codes before the EINVAL contract, no unwind), 6.2 (v6.2-v6.4: the contract, no unwind), 6.5+ (today's rules)");
export const ErrnoName = literalUnion(Object.keys(ERRNO_VALUES) as (keyof typeof ERRNO_VALUES)[], "A Linux errno name");

export const { UnitCapabilities: Capabilities, DeviceFlags, DomainConfig } = E;
export const ContainerKind = literalUnion(E.CONTAINER_KINDS, "iommufd: an IOAS (default); type1: a VFIO type1 container. Set at creation, never changed");
export const SearchPolicy = literalUnion(E.SEARCH_POLICIES, "kernel (default): iommufd_device_auto_get_domain; qemu: QEMU's iommufd_cdev_autodomains_get (iommufd containers only)");

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
/** dev->iommu->max_pasids: at most 1 << 20 (PCIe PASIDs are 20 bits). */
export const MaxPasids = Type.Integer({ minimum: 0, maximum: 1 << 20, description: "PASIDs 1..maxPasids-1 may be attached (the smaller of the device's and its IOMMU's PASID width); 0, the default: none" });
export const CreateDevice = Type.Object({
  name: Name, groupId: Id, flags: Type.Optional(Type.Partial(DeviceFlags, { additionalProperties: false })),
  maxPasids: Type.Optional(MaxPasids),
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
export const CreateContainer = Type.Object({ name: Name, kind: Type.Optional(ContainerKind) }, { additionalProperties: false });

export const Fault = representation(E.Fault, {}, { version: Version });
export const CreateFault = Type.Object({
  unitId: Type.Optional(Id), deviceId: Type.Optional(Id), errno: ErrnoName,
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
}, { additionalProperties: false });

export const PasidAttachment = representation(E.PasidAttachment, {}, { version: Version });
/**
 * A 64-bit address or length as a request gives it: exact up to 2^53 - 1
 * (beyond, a 400 naming the field; the kernel's go to 2^64 - 1).
 */
const Uint64 = (description: string) => Type.Integer({ minimum: 0, maximum: MAX_UINT64_EXACT, description });

export const Mapping = representation(E.Mapping, {}, { version: Version });
export const CreateMapping = Type.Object({
  iova: Type.Optional(Uint64("IOVA to map at (IOMMU_IOAS_MAP_FIXED_IOVA); left out, the service picks one")),
  length: Uint64("Bytes to map (0 is refused with EINVAL, as the kernel does)"),
}, { additionalProperties: false });
export const UnmapBody = Type.Object({
  iova: Type.Optional(Uint64("First IOVA of the range to unmap")),
  length: Type.Optional(Uint64("Bytes in the range; with iova. Both left out: unmap everything")),
}, { additionalProperties: false });
export const Unmapped = Type.Object({
  unmapped: Type.Integer({ description: "Bytes unmapped" }),
  mappings: Type.Array(Mapping, { description: "The mappings removed, in IOVA order" }),
});

export const ReservedRegion = representation(E.ReservedRegion, {}, { version: Version });
export const CreateReservedRegion = Type.Object({
  start: Uint64("First address of the region"),
  length: Uint64("Bytes in the region (0 is refused)"),
  type: literalUnion(E.RESERVED_REGION_TYPES, "enum iommu_resv_type: direct, direct-relaxable, reserved, msi, sw-msi"),
}, { additionalProperties: false });

export const IommufdDevice = representation(E.IommufdDevice, {}, { version: Version });
export const Host = representation(E.Host, { kernelProfile: KernelProfileName }, { version: Version });
/** The settings a PATCH may change; each left out keeps its value. */
export const PatchHost = Type.Object({
  kernelProfile: Type.Optional(KernelProfileName),
}, { additionalProperties: false, minProperties: 1 });

export const Event = Type.Composite([Type.Object({
  seq: Type.Integer(), at: Type.String({ format: "date-time" }), op: Type.String(),
  owner: Type.Union([Type.String(), Type.Null()]),
  groupId: Type.Union([Type.Integer(), Type.Null()]), deviceId: Type.Union([Type.Integer(), Type.Null()]),
  domainId: Type.Union([Type.Integer(), Type.Null()]), containerId: Type.Union([Type.Integer(), Type.Null()]),
  kind: Type.Union([literalUnion(E.KINDS, "The kind of object a create / update / delete changed"), Type.Null()], { description: "Null on attempts" }),
  objectId: Type.Union([Type.Integer(), Type.Null()], { description: "The id of the object a create / update / delete changed; null on attempts" }),
}), Outcome]);

// ---- operation bodies and answers ----------------------------------------

export const DomainTarget = Type.Object({ domainId: Id, owner: Type.Optional(Owner) }, { additionalProperties: false });
export type DomainTarget = Static<typeof DomainTarget>;
/** Claim / release: the owner is required in open mode (checked by the auth hook), refused with a token. */
export const OwnerBody = Type.Object({ owner: Type.Optional(Owner) }, { additionalProperties: false });
export const GroupTarget = Type.Object({ groupId: Id, owner: Type.Optional(Owner) }, { additionalProperties: false });
/** Container attach: the group, and in an iommufd container the search policy. */
export const ContainerAttachBody = Type.Object({
  groupId: Id, owner: Type.Optional(Owner), policy: Type.Optional(SearchPolicy),
}, { additionalProperties: false });

/** A host driver's name, as the driver core knows it ("nvme", "mlx5_core"). */
export const HostDriverBody = Type.Object({
  hostDriver: Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_.+-]+$", description: "The host (kernel) driver's name" }),
}, { additionalProperties: false });
export const HostDriverChanged = Type.Object({
  changed: Type.Boolean({ description: "False when the device already was bound so (or unbound)" }),
  device: Device,
});

/** A PASID value (ioasid_t); 0 is IOMMU_NO_PASID, refused by the attach. */
export const Pasid = Type.Integer({ minimum: 0, maximum: MAX_ID, description: "The PASID" });
export const PasidTarget = Type.Object({ pasid: Pasid, domainId: Id, owner: Type.Optional(Owner) }, { additionalProperties: false });
export const PasidParams = Type.Object({ id: Id, pasid: Pasid }, { additionalProperties: false });

export const Moved = Type.Object({
  changed: Type.Boolean({ description: "False when the group already was there" }),
  group: Group,
  domain: Domain,
  warning: Type.Optional(Warning),
});

/** pt_id of VFIO_DEVICE_ATTACH_IOMMUFD_PT: a container (searched, as an IOAS) or a domain (a HWPT); the core wants exactly one. */
export const IommufdTarget = Type.Object({
  containerId: Type.Optional(Id),
  domainId: Type.Optional(Id),
  owner: Type.Optional(Owner),
}, { additionalProperties: false, description: "Exactly one of containerId (its automatic domains are searched) and domainId" });

/** The answer to an iommufd attach or replace: the device, the group and the domain they are on. */
export const IommufdMoved = Type.Object({
  changed: Type.Boolean({ description: "False when the device already was there" }),
  iommufdDevice: IommufdDevice,
  group: Group,
  domain: Domain,
  allocated: Type.Boolean({ description: "A new automatic domain was allocated" }),
  attempts: Type.Array(Attempt, { description: "The container's domains tried, in order; empty for a domain" }),
});

export const IommufdDetached = Type.Object({
  changed: Type.Boolean({ description: "False when the device was not attached" }),
  iommufdDevice: IommufdDevice,
  group: Group,
  domain: Domain,
  freedDomainId: Type.Union([Id, Type.Null()], { description: "The automatic domain freed because nothing was left on it" }),
});
