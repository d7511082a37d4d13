// Kernel-version profiles: what a host's kernel returns where its code
// differs from today's for the rules this service models. A profile is data
// over the rules, not a second copy of them: the drivers and the core raise
// today's reasons, and the profile says which raw errno that kernel's
// attach_dev returned for a (driver, reason), and whether its
// __iommu_group_set_domain() put the earlier devices of a group back when a
// later one failed. The contract's classification of a raw code (EINVAL
// soft; ENOMEM, ENOSPC, EBUSY, ENODEV hard; anything else ENODEV,
// include/linux/iommu.h since v6.2) is applied to it as to any driver code
// (src/core/errno.ts normaliseAttachErrno).
//
// Sources (docs/semantics.md §7 has the full list):
// - "iommu: Define EINVAL as device/domain incompatibility" (Nicolin Chen,
//   based on v6.1-rc3, merged for v6.2): bd7ebb771935 "iommu: Regulate EINVAL
//   in ->attach_dev callback functions" and f4a147735793 "iommu: Use EINVAL
//   for incompatible device/domain in ->attach_dev"; the codes before them
//   read again in v6.1.188's drivers/iommu/intel/iommu.c and
//   drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c.
// - dcf40ed3a20d "iommu: Make __iommu_group_set_domain() handle error unwind"
//   (Jason Gunthorpe), merged for v6.5 (iommu-updates-v6.5). Before it
//   __iommu_attach_group() and __iommu_group_set_domain() attached device by
//   device through __iommu_group_for_each_dev(), which stops at the first
//   error, and set group->domain only when every device succeeded: the
//   devices before the failing one stay on the new domain.
import type { ErrnoName } from "./errno.js";
import { REASONS, type FixedReason } from "./reasons.js";
import { withRawCode, type ErrnoError } from "./result.js";

/** One code a profile's kernel returned for a refusal where today's differs. */
export interface KernelCode {
  /** The registered driver whose attach_dev returns it (Unit.driver). */
  readonly driver: string;
  readonly reason: FixedReason;
  /** The raw errno that kernel returns. */
  readonly errno: ErrnoName;
  /** Kernel file and function. */
  readonly source: string;
}

export interface KernelProfile {
  readonly name: string;
  /** The mainline releases whose code it describes. */
  readonly releases: string;
  /**
   * __iommu_group_set_domain() puts the devices it already moved back on the
   * group's domain when a later device fails (v6.5, dcf40ed3a20d). Without
   * it, those devices stay on the new domain while group->domain is unchanged.
   */
  readonly unwindsPartialAttach: boolean;
  readonly codes: readonly KernelCode[];
}

const VTD = "drivers/iommu/intel/iommu.c prepare_domain_attach_device";
const SMMUV3 = "drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c arm_smmu_attach_dev";

export const KERNEL_PROFILES = {
  "6.1": {
    name: "6.1",
    releases: "v6.1 (the 6.1 LTS; read in v6.1-rc3 and v6.1.188): before the EINVAL series and before the unwind",
    unwindsPartialAttach: false,
    codes: [
      { driver: "intel-vtd", reason: "snoop-control", errno: "EOPNOTSUPP", source: `${VTD} (force_snooping && !ecap_sc_support)` },
      { driver: "intel-vtd", reason: "address-width", errno: "EFAULT", source: `${VTD} (max_addr > 1 << addr_width)` },
      { driver: "arm-smmu-v3", reason: "different-instance", errno: "ENXIO", source: `${SMMUV3} (smmu_domain->smmu != smmu)` },
      { driver: "virtio-iommu", reason: "different-instance", errno: "EXDEV", source: "drivers/iommu/virtio-iommu.c viommu_attach_dev (foreign vIOMMU)" },
      { driver: "virtio-iommu", reason: "granule-too-large", errno: "EINVAL", source: "drivers/iommu/virtio-iommu.c viommu_domain_finalise (granule > PAGE_SIZE)" },
    ],
  },
  "6.2": {
    name: "6.2",
    releases: "v6.2 to v6.4: the EINVAL contract, before the unwind",
    unwindsPartialAttach: false,
    codes: [],
  },
  "6.5+": {
    name: "6.5+",
    releases: "v6.5 and later (the 6.6 and 6.12 LTS): today's rules",
    unwindsPartialAttach: true,
    codes: [],
  },
} as const satisfies Record<string, KernelProfile>;

export type KernelProfileName = keyof typeof KERNEL_PROFILES;
export const KERNEL_PROFILE_NAMES = Object.keys(KERNEL_PROFILES) as readonly KernelProfileName[];
export const DEFAULT_KERNEL_PROFILE: KernelProfileName = "6.5+";

export function isKernelProfileName(name: string): name is KernelProfileName {
  return Object.hasOwn(KERNEL_PROFILES, name);
}

/** The profile of that name; an unknown name (a stored row from a later version) is today's rules. */
export function kernelProfile(name: string): KernelProfile {
  return isKernelProfileName(name) ? KERNEL_PROFILES[name] : KERNEL_PROFILES[DEFAULT_KERNEL_PROFILE];
}

/** The raw errno the profile's kernel returns for this driver's refusal, where it differs from today's. */
export function kernelCodeOf(profile: KernelProfile, driver: string, reason: FixedReason): KernelCode | undefined {
  return profile.codes.find((c) => c.driver === driver && c.reason === reason);
}

/**
 * A driver's refusal (attach_dev, or the finalisation inside it) as the
 * profile's kernel answers it: today's error where that kernel returned the
 * same code, else the error with its raw code, classified by the contract.
 * Only a reason with an errno of its own has a profile code: an injected
 * fault carries the code it was injected with.
 */
export function asKernelAnswers(profile: KernelProfile, driver: string, error: ErrnoError): ErrnoError {
  if (REASONS[error.reason].errno === null) return error;
  const code = kernelCodeOf(profile, driver, error.reason as FixedReason);
  return code ? withRawCode(error, code.errno, profile.name) : error;
}
