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
import { bool, entity, enumText, id, int, ref, shared, text, type Immutable, type RecordOf } from "./declare.js";
import type { Outcome } from "./outcome.js";

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
  /** Domain IDs, ASIDs/VMIDs or context banks the unit has. */
  domainIds: Type.Integer({ minimum: 1, maximum: 1 << 24 }),
  /** PAGE_SIZE of the CPU the unit serves. */
  cpuPageSize: PageSize,
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
  /** PASIDs are in use on the device (SMMUv3 refuses a stage-2 domain). */
  pasid: Type.Boolean(),
  /**
   * External-facing (PCI pdev->untrusted: a Thunderbolt or hot-plug port):
   * never let through untranslated.
   */
  untrusted: Type.Boolean(),
}, { additionalProperties: false });
export type DeviceFlags = Immutable<Static<typeof DeviceFlags>>;

export const ContainerConfig = Type.Object({
  /** Ask for domains that enforce cache coherency (VFIO/iommufd enforce_cc). */
  enforceCacheCoherency: Type.Boolean(),
  dirtyTracking: Type.Boolean(),
}, { additionalProperties: false });
export type ContainerConfig = Immutable<Static<typeof ContainerConfig>>;

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

/** A set of domains groups are attached through (iommufd IOAS / VFIO container). */
export const Container = entity("Container", "objects", {
  id: id(),
  name: text({ unique: true }),
  /** Given to the domains the container search allocates. */
  config: shared(ContainerConfig),
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
  /** Allocated by the container search (iommufd's automatic domain). */
  auto: bool({ default: false }),
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

/** Every entity by kind, parent kinds first: inserts go this way, deletes the other way. */
export const ENTITIES = {
  unit: Unit, container: Container, domain: Domain, group: Group, device: Device, fault: Fault,
} as const;
export type Kind = keyof typeof ENTITIES;
export const KINDS = Object.keys(ENTITIES) as readonly Kind[];
export type Entities = { [K in Kind]: RecordOf<(typeof ENTITIES)[K]> };

export type EventOp =
  | "attach-device" | "detach-device" | "attach-group" | "replace-group" | "detach-group"
  | "claim" | "release" | "container-attach" | "container-detach";

/** An attempt as the core records it; the store stamps seq and time (and stores no soft: it is derived). */
export interface EventDraft extends Outcome {
  readonly op: EventOp;
  readonly owner: string | null;
  readonly groupId: number | null;
  readonly deviceId: number | null;
  readonly domainId: number | null;
  readonly containerId: number | null;
}

export interface EventRecord extends EventDraft {
  readonly seq: number;
  readonly at: Date;
}

export const DEFAULT_DEVICE_FLAGS: DeviceFlags = Object.freeze({
  noDirty: false, canwbs: false, requiresIdentity: false, pasid: false, untrusted: false,
});
