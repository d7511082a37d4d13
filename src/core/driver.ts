// The driver contract: this project's include/linux/iommu.h. A simulated
// IOMMU driver fills an IommuDriver (the part of struct iommu_ops and
// struct iommu_domain_ops that decides attach outcomes) and is listed in the
// driver table the core is handed at construction (new Model(drivers)); the
// core never imports a driver, as drivers/iommu/iommu.c never includes one.
//
// Everything a driver does is side-effect free: it answers, and the core
// applies what a successful op implies (binding a domain to an instance),
// which is what lets the same code serve the dry run. A driver sees what it
// needs through a narrow read-only view (UnitUsage), never the model.
import type { Device, Domain, DomainConfig, DomainType, Unit, UnitCapabilities } from "./entities.js";
import type { Result } from "./result.js";

// Everything a driver uses, from the contract's one place: the objects it
// reads, and how it answers (a Result; a failure names a catalogue reason).
export type { Device, DeviceFlags, Domain, DomainConfig, DomainType, Unit, UnitCapabilities } from "./entities.js";
export { fail, OK, type Result } from "./result.js";
export type { FixedReason } from "./reasons.js";

/**
 * The domain-allocation flags a driver can honour (IOMMU_HWPT_ALLOC_* of
 * include/uapi/linux/iommufd.h). Data, not code: the core refuses a request
 * for a flag the driver lacks, or the unit lacks, with EOPNOTSUPP, as each
 * driver's domain_alloc_paging_flags() does (see core/domain-alloc.ts).
 */
export interface DomainAllocFlags {
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING, where the unit also has dirty tracking. */
  readonly dirtyTracking: boolean;
  /** IOMMU_HWPT_ALLOC_NEST_PARENT, where the unit also can nest. */
  readonly nestParent: boolean;
}

/**
 * What a driver may know about the ID spaces its kernel driver allocates
 * from, read-only and derived from the model (never stored): the counts its
 * domain IDs, ASIDs, VMIDs and context banks are checked against. A default
 * (dma) domain counts once its group has a device: the kernel allocates it
 * for the group's first device and frees it with the last. Blocking and
 * identity domains count nothing (the drivers' are static). Every read is
 * O(1) but unitsOf, O(units).
 */
export interface UnitUsage {
  /** The units of a driver, for an ID space the driver shares across them. */
  unitsOf(driver: string): readonly Unit[];
  /** Paging domains finalised on the unit (bound to it). */
  pagingDomainsBoundTo(unitId: number): number;
  /** Of those, the nesting parents (stage-2 domains). */
  nestParentsBoundTo(unitId: number): number;
  /** Paging domains of the driver, bound or not (each allocated one). */
  pagingDomainsOf(driver: string): number;
  /** Default domains of the unit's groups that have a device (allocated, and finalised on the unit). */
  defaultDomainsOn(unitId: number): number;
  /** Distinct paging and default domains with a device of the unit attached (VT-d domain IDs in use). */
  domainsAttachedOn(unitId: number): number;
  /** Devices of the unit attached to the domain (the refcount of its VT-d domain ID there; 0: none). */
  devicesAttachedOn(unitId: number, domainId: number): number;
  /**
   * The PASIDs set on the device: its group's PASID attachments, when the
   * device takes PASIDs (maxPasids > 0; the core skips the others), each with
   * the type of the domain it is attached to.
   */
  pasidsOn(deviceId: number): readonly PasidInUse[];
}

/** One PASID set on a device, as a driver sees it. */
export interface PasidInUse {
  readonly pasid: number;
  readonly domainType: DomainType;
}

/**
 * domain_alloc_paging(_flags) of a paging domain: for the device of `unit`,
 * or with no unit (the domain is then finalised at its first attach).
 */
export interface AllocContext {
  readonly unit: Unit | null;
  readonly config: DomainConfig;
  readonly usage: UnitUsage;
}

/**
 * iommu_setup_default_domain for a group's first device: its default domain
 * is allocated for the device (and finalised on the unit) and, when the group
 * sits on it, attached.
 */
export interface DefaultDomainContext {
  readonly unit: Unit;
  readonly device: Device;
  readonly domain: Domain;
  /** The group is on its default domain (not owned, on its blocking domain). */
  readonly attached: boolean;
  readonly usage: UnitUsage;
}

/** A paging domain of this driver, not yet bound, about to be finalised on `unit`. */
export interface FinaliseContext {
  readonly unit: Unit;
  readonly domain: Domain;
  readonly usage: UnitUsage;
}

/**
 * The questions iommu_ops.capable() answers for a device (enum iommu_cap,
 * include/linux/iommu.h), those the core asks:
 * - "cache-coherency": IOMMU_CAP_CACHE_COHERENCY, the IOMMU keeps DMA
 *   coherent with the CPU caches (iommufd_device_bind refuses a device without it);
 * - "enforce-cache-coherency": IOMMU_CAP_ENFORCE_CACHE_COHERENCY, it can also
 *   block no-snoop DMA (iommufd_device_bind records it as
 *   idev->enforce_cache_coherency; a domain allocated for the device then enforces it);
 * - "dirty-tracking": IOMMU_CAP_DIRTY_TRACKING, it can track dirty pages
 *   (IOMMU_HWPT_ALLOC_DIRTY_TRACKING needs it; IOMMU_GET_HW_INFO reports it
 *   as IOMMU_HW_CAP_DIRTY_TRACKING).
 */
export const IOMMU_CAPS = ["cache-coherency", "enforce-cache-coherency", "dirty-tracking"] as const;
export type IommuCap = (typeof IOMMU_CAPS)[number];

/** device_iommu_capable(dev, cap): the device and the unit it is behind. */
export interface CapableContext {
  readonly unit: Unit;
  readonly device: Device;
}

/** A paging domain and every device attached to it, each with the unit it is behind. */
export interface DomainDevicesContext {
  readonly domain: Domain;
  readonly attached: readonly { readonly unit: Unit; readonly device: Device }[];
}

/** attach_dev of one device behind `unit` to a paging domain bound to it (or of a driver that does not bind). */
export interface AttachContext {
  readonly unit: Unit;
  readonly device: Device;
  readonly domain: Domain;
  /** The domain the device is on now (its group's): attach_dev leaves it first (VT-d gives its ID back). */
  readonly current: Domain;
  readonly usage: UnitUsage;
}

/** When a binding driver finalises a paging domain allocated for a unit. */
export type FinaliseTiming =
  /** At allocation (domain_alloc_paging(dev) of SMMUv3, DART, virtio-iommu); else at its first attach. */
  | "allocation"
  /** Only at its first attach, even when allocated for a device (SMMUv2's arm_smmu_init_domain_context). */
  | "first-attach";

/** attach_dev of one device behind `unit` to one of the driver's static domains. */
export interface StaticAttachContext {
  readonly unit: Unit;
  readonly device: Device;
}

/**
 * One of the driver's static domains (struct iommu_ops.identity_domain,
 * .blocked_domain): a single domain the driver owns, shared by every unit
 * and group, never allocated or freed. Present when the driver has one;
 * `attachDev` present when attaching it can be refused.
 */
export interface StaticDomain {
  attachDev?(ctx: StaticAttachContext): Result<void>;
}

interface DriverOps {
  /** The name units and domains carry (Unit.driver); the driver's key in the table. */
  readonly name: string;
  /** Capabilities a unit gets for every field its definition leaves out. */
  readonly defaults: UnitCapabilities;
  /** struct iommu_ops.domain_alloc_paging_flags, as the flags it accepts. */
  readonly allocFlags: DomainAllocFlags;
  /**
   * Optional: what domain_alloc_paging(_flags) itself checks or takes, for
   * every paging domain allocated (AMD's global domain-ID pool; DART's page
   * size, for a device). Absent: allocation takes nothing that can run out.
   */
  allocPaging?(ctx: AllocContext): Result<void>;
  /**
   * Optional: what a group's default domain takes when the group's first
   * device is probed (an ID that can run out); the device cannot join when
   * it is refused. Absent: default domains take nothing countable.
   */
  setupDefaultDomain?(ctx: DefaultDomainContext): Result<void>;
  /** struct iommu_domain_ops.attach_dev for a paging domain. */
  attachDev(ctx: AttachContext): Result<void>;
  /**
   * Optional: struct iommu_ops.capable. Absent, every answer is false, as
   * device_iommu_capable() answers for a driver without the op.
   */
  capable?(ctx: CapableContext, cap: IommuCap): boolean;
  /**
   * Optional: struct iommu_domain_ops.enforce_cache_coherency. Can the domain,
   * with the devices attached to it now, block no-snoop DMA from here on? A
   * true answer is kept by the caller in the domain's config
   * (enforceCacheCoherency); the op does not change the domain itself.
   * Absent: never. A driver whose capable() says "enforce-cache-coherency"
   * must answer true for a domain with nothing attached (the kernel WARNs
   * otherwise, iommufd_hwpt_paging_alloc).
   */
  enforceCacheCoherency?(ctx: DomainDevicesContext): boolean;
  /** Optional: set_dev_pasid, present on the drivers that have it (see PasidOps). */
  readonly pasid?: PasidOps;
  /** ops->identity_domain: absent where the driver has none (iommufd selftest mock). */
  identityDomain?: StaticDomain;
  /**
   * ops->blocked_domain: absent where the driver has none (virtio-iommu; a
   * group's blocking domain is then an empty paging domain the driver never
   * refuses, see __iommu_group_alloc_blocking_domain).
   */
  blockedDomain?: StaticDomain;
}

/** set_dev_pasid of one device (that takes PASIDs) of the group, for `domain`, bound as far as attach_dev would bind it. */
export interface PasidContext extends AttachContext {
  readonly pasid: number;
  /** The domain the device's RID (its group) is attached to now. */
  readonly groupDomain: Domain;
}

/**
 * PASID support (struct iommu_domain_ops.set_dev_pasid): present on the
 * drivers whose kernel driver implements it, for the domain types whose ops
 * have it; iommu_attach_device_pasid() answers EOPNOTSUPP for any other
 * domain, and for every domain of a driver without it (it also needs the
 * driver's blocked domain to have set_dev_pasid, to take a PASID back: every
 * driver here that has the op has that too).
 */
export interface PasidOps {
  /** The domain types whose ops have set_dev_pasid; "paging" covers the default DMA domains too (same ops). */
  readonly domainTypes: readonly ("paging" | "identity" | "blocked")[];
  /** What the driver's set_dev_pasid refuses (the core has checked the PASID and the domain's driver). */
  setDevPasid(ctx: PasidContext): Result<void>;
}

/**
 * Present on drivers that bind a paging domain to one hardware instance
 * (SMMU, DART, virtio-iommu), absent on those that do not. The kernel drivers
 * do this inside attach_dev on the first attach (arm_smmu_domain_finalise,
 * arm_smmu_init_domain_context, apple_dart_finalize_domain,
 * viommu_domain_finalise) or at allocation for a device (finaliseAt); here it
 * is its own op so the core can record the binding. Called once per domain,
 * on the unit it is allocated for or first attached behind; a device behind
 * any other instance then gets a soft EINVAL from the core.
 */
type Binding =
  | { readonly finalise?: undefined; readonly finaliseAt?: undefined }
  | { finalise(ctx: FinaliseContext): Result<void>; readonly finaliseAt: FinaliseTiming };

export type IommuDriver = DriverOps & Binding;

/** The drivers the core runs, by name (each key equals its driver's name). */
export type DriverTable = Readonly<Record<string, IommuDriver>>;
