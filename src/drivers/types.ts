// The small interface every simulated IOMMU driver implements: the part of
// struct iommu_domain_ops / iommu_ops that decides attach outcomes. All of it
// is side-effect free: the core applies what a successful op implies (binding
// a domain to an instance), so the same code serves the dry run.
import type { Device, Domain, DomainConfig, DriverName, Unit, UnitCapabilities } from "../core/entities.js";
import type { Model } from "../core/model.js";
import type { Result } from "../core/result.js";

export interface AttachContext {
  readonly unit: Unit;
  readonly device: Device;
  /** A paging domain of this driver. */
  readonly domain: Domain;
  /** Read-only view for resource accounting. */
  readonly model: Model;
}

export interface IommuDriver {
  readonly name: DriverName;
  /** Capabilities a unit gets for every field its definition leaves out. */
  readonly defaults: UnitCapabilities;
  /**
   * SMMU, DART and virtio-iommu bind a domain to one hardware instance when it
   * is finalised; devices behind another instance then get EINVAL.
   */
  readonly bindsToInstance: boolean;
  /**
   * domain_alloc_paging_flags: can this driver (and this unit, when the domain
   * is allocated for one) provide the requested configuration at all?
   */
  checkAlloc(config: DomainConfig, unit: Unit | null): Result<void>;
  /**
   * Finalise an unbound domain on `unit` (allocate its ASID / context bank).
   * Only called for drivers that bind to an instance.
   */
  finalise(domain: Domain, unit: Unit, model: Model): Result<void>;
  /** attach_dev for a paging domain already bound (or not binding) to the unit. */
  attachDev(ctx: AttachContext): Result<void>;
}
