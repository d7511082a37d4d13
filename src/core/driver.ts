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
import type { Device, Domain, Unit, UnitCapabilities } from "./entities.js";
import type { Result } from "./result.js";

// Everything a driver uses, from the contract's one place: the objects it
// reads, and how it answers (a Result; a failure names a catalogue reason).
export type { Device, DeviceFlags, Domain, DomainConfig, Unit, UnitCapabilities } from "./entities.js";
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
}

/** A paging domain of this driver, not yet bound, about to be finalised on `unit`. */
export interface FinaliseContext {
  readonly unit: Unit;
  readonly domain: Domain;
  readonly usage: UnitUsage;
}

/** attach_dev of one device behind `unit` to a paging domain bound to it (or of a driver that does not bind). */
export interface AttachContext {
  readonly unit: Unit;
  readonly device: Device;
  readonly domain: Domain;
  readonly usage: UnitUsage;
}

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
  /** ops->identity_domain: absent where the driver has none (iommufd selftest mock). */
  identityDomain?: StaticDomain;
  /**
   * ops->blocked_domain: absent where the driver has none (virtio-iommu; a
   * group's blocking domain is then an empty paging domain the driver never
   * refuses, see __iommu_group_alloc_blocking_domain).
   */
  blockedDomain?: StaticDomain;
}

/** The drivers the core runs, by name (each key equals its driver's name). */
export type DriverTable = Readonly<Record<string, IommuDriver>>;
