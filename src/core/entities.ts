// The simulated objects, each declared once (see declare.ts for the field
// kinds): the record type, the in-memory layout, the database row mapping and
// the HTTP representation all come from these declarations. Records are
// immutable: the model replaces a record to change it, which is what lets it
// keep indexes and an undo log exact.
//
// A new column is three changes (docs/recipes.md): the field here, with a
// default or nullable so that the code creating rows needs none; the same
// field in prisma/schema.prisma; and the migration Prisma generates.
import { Type, type Static } from "@sinclair/typebox";
import { bool, entity, enumText, id, int, int64, ref, shared, text, type Immutable, type RecordOf } from "./declare.js";
import type { Outcome } from "./outcome.js";
import { DEFAULT_KERNEL_PROFILE } from "./profiles.js";

export const DOMAIN_TYPES = ["paging", "identity", "blocked", "dma"] as const;
export type DomainType = (typeof DOMAIN_TYPES)[number];

const PageSize = Type.Integer({ minimum: 512, maximum: 2 ** 40, multipleOf: 512 });
const AddressWidth = Type.Integer({ minimum: 32, maximum: 64 });
const PageSizes = Type.Array(PageSize, { minItems: 1, maxItems: 16, uniqueItems: true });

// ---- value objects rows share ----------------------------------------------------

export const UnitCapabilities = Type.Object({
  /** Input address bits the unit translates (VT-d MGAW, SMMU IAS). */
  addressWidth: AddressWidth,
  /** Supported page sizes in bytes (the unit's pgsize_bitmap). */
  pageSizes: PageSizes,
  /** Can enforce cache coherency (VT-d snoop control, SMMU coherent walks). */
  snoopControl: Type.Boolean(),
  dirtyTracking: Type.Boolean(),
  nesting: Type.Boolean(),
  /**
   * The size of the unit's ID allocator: VT-d domain IDs, SMMUv3 ASIDs (the
   * range this SMMU may use of the space all share) and VMIDs, SMMUv2 context
   * banks, virtio-iommu domain IDs; AMD's one pool is as large as its
   * smallest unit's. DART and the mock take none (docs/semantics.md §3).
   */
  domainIds: Type.Integer({ minimum: 1, maximum: 1 << 24 }),
  /** PAGE_SIZE of the CPU the unit serves. */
  cpuPageSize: PageSize,
  /**
   * The MSIs of the devices behind the unit are isolated: their interrupt
   * domain sets IRQ_DOMAIN_FLAG_ISOLATED_MSI (VT-d and AMD-Vi interrupt
   * remapping, a GICv3 ITS), so a device's DMA cannot raise another's
   * interrupt (iommu_group_has_isolated_msi). iommufd binds a device
   * without it only when the host allows unsafe interrupts.
   */
  isolatedMsi: Type.Boolean(),
  /**
   * Page-table walks snoop the CPU caches (VT-d: ECAP.SMPWC in scalable mode,
   * ECAP.C in legacy mode; intel iommu_paging_structure_coherency()).
   */
  coherentWalk: Type.Boolean(),
  /** Translates through first-stage page tables (VT-d: scalable mode with ECAP.FLTS). */
  firstStage: Type.Boolean(),
  /**
   * Can let a device's DMA through untranslated, the driver's identity domain
   * (VT-d: ECAP.PT; DART: bypass support).
   */
  bypass: Type.Boolean(),
}, { additionalProperties: false });
export type UnitCapabilities = Immutable<Static<typeof UnitCapabilities>>;

export const DomainConfig = Type.Object({
  addressWidth: AddressWidth,
  pageSizes: PageSizes,
  enforceCacheCoherency: Type.Boolean(),
  dirtyTracking: Type.Boolean(),
  nestParent: Type.Boolean(),
  /**
   * The page table was built for a unit whose walks snoop the CPU caches
   * (VT-d dmar_domain->iommu_coherency, set at allocation from the unit).
   */
  coherentWalk: Type.Boolean(),
  /** A first-stage page table (VT-d dmar_domain->use_first_level, chosen at allocation). */
  firstStage: Type.Boolean(),
}, { additionalProperties: false });
export type DomainConfig = Immutable<Static<typeof DomainConfig>>;

export const DeviceFlags = Type.Object({
  /** iommufd mock: the device cannot track dirty pages. */
  noDirty: Type.Boolean(),
  /** SMMUv3: the device's writes are coherent with the CPU caches (CANWBS). */
  canwbs: Type.Boolean(),
  /** Firmware-reserved regions (Intel RMRR): cannot be blocked. */
  requiresIdentity: Type.Boolean(),
  /**
   * External-facing (PCI pdev->untrusted: a Thunderbolt or hot-plug port):
   * never let through untranslated.
   */
  untrusted: Type.Boolean(),
}, { additionalProperties: false });
export type DeviceFlags = Immutable<Static<typeof DeviceFlags>>;

/**
 * What a container is: an iommufd IOAS (the default), whose domains are
 * found by the container search or attached by id, or a VFIO type1
 * container, whose domains VFIO allocates and merges itself
 * (vfio_iommu_type1_attach_group). Set at creation, never changed.
 */
export const CONTAINER_KINDS = ["iommufd", "type1"] as const;
export type ContainerKind = (typeof CONTAINER_KINDS)[number];

/**
 * The policy of a container search, and which search a domain belongs to:
 * "kernel" is iommufd_device_auto_get_domain (or, in a type1 container,
 * vfio_iommu_type1_attach_group); "qemu" is QEMU's
 * iommufd_cdev_autodomains_get (hw/vfio/iommufd.c), whose page tables the
 * kernel sees as user-allocated ones.
 */
export const SEARCH_POLICIES = ["kernel", "qemu"] as const;
export type SearchPolicy = (typeof SEARCH_POLICIES)[number];

const CREATOR = "The client that created it; null: an administrator's (every client may use it)";

// ---- the entities, parent kinds before child kinds -----------------------------

/** An IOMMU hardware instance (a DMAR unit, an SMMU, a DART, ...). */
export const Unit = entity("Unit", "objects", {
  id: id(),
  name: text({ unique: true }),
  /** The name of a driver in the model's driver table (src/core/driver.ts). */
  driver: enumText(),
  capabilities: shared(UnitCapabilities),
  online: bool({ default: true }),
});
export type Unit = RecordOf<typeof Unit>;

/**
 * A set of domains groups are attached through (iommufd IOAS / VFIO type1
 * container). Like an IOAS it carries no domain settings: a domain's
 * configuration comes from the device it is allocated for.
 */
export const Container = entity("Container", "objects", {
  id: id(),
  name: text({ unique: true }),
  kind: enumText(CONTAINER_KINDS, { default: "iommufd", description: "iommufd: an IOAS; type1: a VFIO type1 container (set at creation)" }),
  /** The client that created it; null: an administrator (usable by every client). */
  owner: text({ nullable: true, description: CREATOR }),
});
export type Container = RecordOf<typeof Container>;

export const Domain = entity("Domain", "columns", {
  id: id(),
  /** Mostly null: a group's default domain is unnamed. */
  name: text({ nullable: true }),
  type: enumText(DOMAIN_TYPES),
  driver: enumText(),
  /** The unit the domain is finalised on; null until its first attach. */
  unitId: ref({ nullable: true, description: "Unit the domain is finalised on" }),
  /** Interned: the domains of one unit share one object. */
  config: shared(DomainConfig),
  /** Allocated by a container search (see search); freed when its last group leaves. */
  auto: bool({ default: false }),
  /**
   * The search that allocated it and may try it again: "kernel" (iommufd's
   * automatic domain, or VFIO type1's), "qemu" (QEMU's search: a user page
   * table to the kernel); "none": allocated by a client or the service.
   */
  search: enumText(["none", ...SEARCH_POLICIES], { default: "none", description: "The container search that allocated it (kernel, qemu) or none" }),
  containerId: ref({ nullable: true }),
  /**
   * The client that created it (its automatic domains: the container's); null:
   * an administrator or the service. Mostly null.
   */
  owner: text({ nullable: true, description: CREATOR }),
});
export type Domain = RecordOf<typeof Domain>;

export const Group = entity("Group", "columns", {
  id: id(),
  name: text({ unique: true }),
  unitId: ref(),
  domainId: ref(),
  defaultDomainId: ref(),
  /** Allocated on the first DMA-ownership claim, as the kernel does. */
  blockingDomainId: ref({ nullable: true }),
  /** The DMA owner (iommu_group_claim_dma_owner); null when unowned. */
  owner: text({ nullable: true }),
});
export type Group = RecordOf<typeof Group>;

export const Device = entity("Device", "columns", {
  id: id(),
  name: text({ unique: true }),
  groupId: ref(),
  /** Interned: nearly every device shares one object. */
  flags: shared(DeviceFlags),
  faulty: bool({ default: false }),
  /**
   * dev->iommu->max_pasids: the device takes PASIDs 1..maxPasids-1 (the
   * smaller of its own PASID width and its IOMMU's); 0: it takes none.
   */
  maxPasids: int({ default: 0, description: "PASIDs 1..maxPasids-1 may be attached (dev->iommu->max_pasids); 0: the device takes no PASID" }),
  /**
   * The kernel driver bound to it that does DMA through the DMA API
   * (iommu_device_use_default_domain holds the group's owner_cnt); null: none.
   */
  hostDriver: text({ nullable: true, description: "The host (kernel) driver bound to the device, using the DMA API; null: none" }),
  /**
   * The domain the device is left attached to when it is not its group's: a
   * group attach that failed on a later device, on a kernel profile without
   * the unwind (before v6.5), leaves the devices before it on the new domain
   * while the group stays where it was. Null: the device is on its group's
   * domain. Cleared by the group's next move that reaches every device.
   */
  strandedOnDomainId: ref({ nullable: true, description: "Domain the device is left on by a partial group attach (no unwind before Linux 6.5); null: its group's" }),
});
export type Device = RecordOf<typeof Device>;

/** An injected failure: the next `remaining` driver attach ops on the unit or device fail with `errno`. */
export const Fault = entity("Fault", "objects", {
  id: id(),
  unitId: ref({ nullable: true }),
  deviceId: ref({ nullable: true }),
  /** Any Linux errno name; codes outside the contract exercise the ENODEV rule. */
  errno: text(),
  remaining: int(),
});
export type Fault = RecordOf<typeof Fault>;

/**
 * A PASID attached to a domain (iommu_attach_device_pasid). The PASID is the
 * group's, as the kernel keeps it in group->pasid_array: set on every device
 * of the group that takes PASIDs, and taken for the whole group.
 */
export const PasidAttachment = entity("PasidAttachment", "objects", {
  id: id(),
  /** The device the attach named. */
  deviceId: ref(),
  pasid: int({ description: "The PASID (1..the device's maxPasids - 1)" }),
  domainId: ref(),
});
export type PasidAttachment = RecordOf<typeof PasidAttachment>;

/**
 * The kernel's reserved region types (enum iommu_resv_type, include/linux/iommu.h):
 * IOMMU_RESV_DIRECT, _DIRECT_RELAXABLE, _RESERVED, _MSI, _SW_MSI.
 */
export const RESERVED_REGION_TYPES = ["direct", "direct-relaxable", "reserved", "msi", "sw-msi"] as const;
export type ReservedRegionType = (typeof RESERVED_REGION_TYPES)[number];

/**
 * An IOVA range mapped in a container (IOMMU_IOAS_MAP; an iopt_area): the
 * range only, no memory behind it. Counted in its creator's object quota.
 */
export const Mapping = entity("IovaMapping", "objects", {
  id: id(),
  containerId: ref(),
  iova: int64({ description: "First IOVA of the range" }),
  length: int64({ minimum: 1, description: "Bytes mapped" }),
  owner: text({ nullable: true, description: CREATOR }),
});
export type Mapping = RecordOf<typeof Mapping>;

/**
 * A range of IOVA a device must never have mapped (iommu_get_resv_regions: an
 * RMRR, the MSI window, ...), reserved in a container's address space while
 * the device is attached through it.
 */
export const ReservedRegion = entity("ReservedRegion", "objects", {
  id: id(),
  deviceId: ref(),
  start: int64({ description: "First address of the region" }),
  length: int64({ minimum: 1, description: "Bytes reserved" }),
  type: enumText(RESERVED_REGION_TYPES),
});
export type ReservedRegion = RecordOf<typeof ReservedRegion>;

/**
 * An iommufd device object (struct iommufd_device): a device bound to a
 * client's iommufd context (iommufd_device_bind, VFIO_DEVICE_BIND_IOMMUFD).
 * Each one holds a count of its group's DMA ownership (owner_cnt) for that
 * client, who is the group's owner while any device of it is bound.
 */
export const IommufdDevice = entity("IommufdDevice", "objects", {
  id: id(),
  /** The bound device (one binding each). */
  deviceId: ref(),
  owner: text({ description: "The client whose iommufd context the device is bound to" }),
  /**
   * The domain (hw_pagetable) the device is attached to: its group's domain,
   * shared by every attached device of the group (igroup->hwpt); null: not
   * attached (not on igroup->device_list).
   */
  domainId: ref({ nullable: true, description: "The domain the device is attached to through iommufd; null: not attached" }),
});
export type IommufdDevice = RecordOf<typeof IommufdDevice>;

/** The one id the host's settings row has. */
export const HOST_ID = 1;

/**
 * Settings of the host the service stands for, one row (HOST_ID). Absent
 * until something sets one: the model answers the defaults then (Model.host).
 */
export const Host = entity("Host", "objects", {
  id: id(),
  /** The kernel-version profile (src/core/profiles.ts): which kernel's codes and group-attach unwind answer. */
  kernelProfile: text({ default: DEFAULT_KERNEL_PROFILE, description: "Kernel-version profile the answers follow" }),
});
export type Host = RecordOf<typeof Host>;

/** Every entity by kind, parent kinds first: inserts go this way, deletes the other way. */
export const ENTITIES = {
  unit: Unit, container: Container, domain: Domain, group: Group, device: Device, fault: Fault,
  pasid: PasidAttachment, iommufd: IommufdDevice,
  mapping: Mapping, region: ReservedRegion, host: Host,
} as const;
export type Kind = keyof typeof ENTITIES;
export const KINDS = Object.keys(ENTITIES) as readonly Kind[];
export type Entities = { [K in Kind]: RecordOf<(typeof ENTITIES)[K]> };

export type EventOp =
  | "attach-device" | "detach-device" | "attach-group" | "replace-group" | "detach-group"
  | "claim" | "release" | "container-attach" | "container-detach"
  | "bind-host-driver" | "unbind-host-driver" | "attach-pasid" | "detach-pasid"
  | "container-map" | "container-unmap" | "region-add" | "region-remove"
  | "bind-iommufd" | "unbind-iommufd" | "attach-iommufd" | "replace-iommufd" | "detach-iommufd"
  // Topology changes: an object of `kind` created, changed or deleted (only successful ones are recorded).
  | TopologyOp;

export const TOPOLOGY_OPS = ["create", "update", "delete"] as const;
export type TopologyOp = (typeof TOPOLOGY_OPS)[number];

/** An attempt as the core records it; the store stamps seq and time (and stores no soft: it is derived). */
export interface EventDraft extends Outcome {
  readonly op: EventOp;
  readonly owner: string | null;
  readonly groupId: number | null;
  readonly deviceId: number | null;
  readonly domainId: number | null;
  readonly containerId: number | null;
  /** A topology change's object: its kind and id (null on attempts). */
  readonly kind?: Kind | null;
  readonly objectId?: number | null;
}

export interface EventRecord extends EventDraft {
  readonly seq: number;
  readonly at: Date;
}

export const DEFAULT_DEVICE_FLAGS: DeviceFlags = Object.freeze({
  noDirty: false, canwbs: false, requiresIdentity: false, untrusted: false,
});
