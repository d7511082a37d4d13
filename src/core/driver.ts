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
import type { Device, Domain, DomainType, Unit, UnitCapabilities } from "./entities.js";
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
 * What a driver may know about the units' resources, read-only: the counts
 * its ASIDs, context banks and domain IDs are checked against.
 */
export interface UnitUsage {
  /** Paging domains finalised on the unit (ASIDs / VMIDs / context banks in use). */
  pagingDomainsBoundTo(unitId: number): number;
  /** Distinct paging domains attached to groups of the unit (domain IDs in use). */
  pagingDomainsAttachedOn(unitId: number): number;
  /** Is the paging domain attached to some group of the unit (it holds a domain ID there)? */
  isPagingDomainAttachedOn(unitId: number, domainId: number): boolean;
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

/** A paging domain of this driver, not yet bound, about to be finalised on `unit`. */
export interface FinaliseContext {
  readonly unit: Unit;
  readonly domain: Domain;
  readonly usage: UnitUsage;
}

/**
 * The capabilities device_iommu_capable() asks a driver about (enum
 * iommu_cap of include/linux/iommu.h), as far as the service models them.
 */
export type IommuCap = "cache-coherency" | "enforce-cache-coherency" | "dirty-tracking";

/** attach_dev of one device behind `unit` to a paging domain bound to it (or of a driver that does not bind). */
export interface AttachContext {
  readonly unit: Unit;
  readonly device: Device;
  readonly domain: Domain;
  readonly usage: UnitUsage;
}

export interface IommuDriver {
  /** The name units and domains carry (Unit.driver); the driver's key in the table. */
  readonly name: string;
  /** Capabilities a unit gets for every field its definition leaves out. */
  readonly defaults: UnitCapabilities;
  /** struct iommu_ops.domain_alloc_paging_flags, as the flags it accepts. */
  readonly allocFlags: DomainAllocFlags;
  /**
   * Optional: present on drivers that bind a paging domain to one hardware
   * instance (SMMU, DART, virtio-iommu), absent on those that do not. The
   * kernel drivers do this inside attach_dev on the first attach
   * (arm_smmu_domain_finalise, apple_dart_finalize_domain,
   * viommu_domain_finalise) or at allocation for a device; here it is its own
   * op so the core can record the binding. Called once per domain, on the
   * unit it is allocated for or first attached behind; a device behind any
   * other instance then gets a soft EINVAL from the core.
   */
  finalise?(ctx: FinaliseContext): Result<void>;
  /** struct iommu_domain_ops.attach_dev for a paging domain. */
  attachDev(ctx: AttachContext): Result<void>;
  /**
   * Optional: struct iommu_ops.capable, for the device behind `unit`.
   * Absent on a driver without it, for which device_iommu_capable()
   * answers false for every capability.
   */
  capable?(ctx: { unit: Unit; device: Device }, cap: IommuCap): boolean;
  /** Optional: set_dev_pasid, present on the drivers that have it (see PasidOps). */
  readonly pasid?: PasidOps;
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

/** The drivers the core runs, by name (each key equals its driver's name). */
export type DriverTable = Readonly<Record<string, IommuDriver>>;
