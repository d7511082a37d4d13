// The error catalogue: stable, kebab-case machine reasons, each naming the
// rule that failed, with the errno it answers, whether it is "soft" (an
// EINVAL because device and domain are incompatible by how the domain was
// configured: another domain may work) and its problem+json title. The HTTP
// status of each reason is the HTTP layer's (src/http/status.ts); the README's
// errno table is generated from both (npm run docs:errors).
//
// Two sections, one entry shape and one Reason type: the reasons the core
// raises (the contract's rules) and the ones the service raises around it
// (HTTP edge, authentication, limits, idempotency, preconditions, store).
// Both live here because an ErrnoError, the core's value, names its reason,
// and the core imports nothing of the HTTP layer.
import type { ErrnoName } from "./errno.js";

/**
 * `soft: true` only with EINVAL (the compiler refuses anything else).
 * `errno: null` is the one reason whose errno is not its own: an injected
 * driver failure carries the code it was injected with, and is soft exactly
 * when that code is EINVAL (a driver's EINVAL from attach_dev means
 * "incompatible" by contract).
 */
type CatalogueEntry =
  | { readonly errno: ErrnoName; readonly soft: false; readonly title: string }
  | { readonly errno: "EINVAL" | null; readonly soft: true; readonly title: string };

/** Raised by the core: the rules of the attach contract and of the core's own objects. */
export const CORE_REASONS = {
  // Soft incompatibilities (EINVAL): the contract's retry-on-EINVAL cases.
  "address-width": { errno: "EINVAL", soft: true, title: "Domain address width exceeds the unit's" },
  "snoop-control": { errno: "EINVAL", soft: true, title: "Domain enforces cache coherency; unit has no snoop control" },
  "cache-coherency": { errno: "EINVAL", soft: true, title: "Domain enforces cache coherency; device lacks CANWBS" },
  "dirty-tracking": { errno: "EINVAL", soft: true, title: "Domain tracks dirty pages; unit or device cannot" },
  "page-size": { errno: "EINVAL", soft: true, title: "Page sizes of domain and unit do not match" },
  "iommu-coherency": { errno: "EINVAL", soft: true, title: "Domain's page-table coherency differs from the unit's" },
  "first-stage": { errno: "EINVAL", soft: true, title: "First-stage domain on a unit without first-stage translation" },
  "different-instance": { errno: "EINVAL", soft: true, title: "Domain is finalised on another IOMMU instance" },
  "different-driver": { errno: "EINVAL", soft: true, title: "Domain belongs to another IOMMU driver" },
  "pasid-incompatible": { errno: "EINVAL", soft: true, title: "Domain cannot be attached to a PASID" },
  // Hard EINVALs: the device or unit can never take a domain of this type,
  // however it is configured, or the arguments contradict each other.
  "requires-identity": { errno: "EINVAL", soft: false, title: "Device requires identity mappings and cannot be blocked" },
  "untrusted-device": { errno: "EINVAL", soft: false, title: "Untrusted device cannot bypass translation" },
  "bypass-unsupported": { errno: "EINVAL", soft: false, title: "Unit cannot bypass translation" },
  "driver-mismatch": { errno: "EINVAL", soft: false, title: "The unit named belongs to another IOMMU driver" },
  // Hard failures.
  "group-has-multiple-devices": { errno: "EINVAL", soft: false, title: "Device attach needs a group with exactly one device" },
  "group-attached": { errno: "EBUSY", soft: false, title: "Group is attached to another domain; use replace" },
  "group-not-default": { errno: "EBUSY", soft: false, title: "Group is not on its default domain" },
  "group-has-devices": { errno: "EBUSY", soft: false, title: "Group still has devices" },
  "group-empty": { errno: "ENODEV", soft: false, title: "Group has no devices to attach" },
  "domain-in-use": { errno: "EBUSY", soft: false, title: "Domain is in use" },
  "domain-not-attachable": { errno: "EINVAL", soft: false, title: "Domain cannot be attached by this group" },
  "unit-in-use": { errno: "EBUSY", soft: false, title: "Unit still has groups or domains" },
  "container-in-use": { errno: "EBUSY", soft: false, title: "Container still has domains" },
  "not-in-container": { errno: "EINVAL", soft: false, title: "Group is not attached through this container" },
  "pasid-in-use": { errno: "EBUSY", soft: false, title: "PASIDs are attached on the device's group" },
  "pasid-attached": { errno: "EBUSY", soft: false, title: "The PASID is already attached on the device's group" },
  "pasid-out-of-range": { errno: "EINVAL", soft: false, title: "Not a PASID the group's devices take" },
  "no-pasid-table": { errno: "EINVAL", soft: false, title: "The device's RID is on a stage-2 domain: it has no PASID table" },
  "host-driver-bound": { errno: "EPERM", soft: false, title: "A device of the group is bound to a host driver" },
  "group-owned": { errno: "EBUSY", soft: false, title: "The group's DMA is owned by a user-space driver" },
  "device-has-driver": { errno: "EBUSY", soft: false, title: "The device is bound to another host driver" },
  "in-other-container": { errno: "EINVAL", soft: false, title: "Group is attached through another container" },
  // iommufd devices (iommufd_device_bind and the hw_pagetable attach).
  "not-cache-coherent": { errno: "EINVAL", soft: false, title: "The device's IOMMU cannot keep its DMA cache coherent" },
  "msi-not-isolated": { errno: "EPERM", soft: false, title: "The device's interrupts cannot be isolated, and the host does not allow unsafe interrupts" },
  "group-claimed": { errno: "EPERM", soft: false, title: "The group is claimed as a whole, not by an iommufd context" },
  "iommufd-bound": { errno: "EPERM", soft: false, title: "Devices of the group are bound to iommufd, which holds its DMA ownership" },
  "not-bound": { errno: "ENOENT", soft: false, title: "The device is not bound to iommufd" },
  "device-not-attached": { errno: "EINVAL", soft: false, title: "The device is not attached through iommufd" },
  "group-on-another-domain": { errno: "EINVAL", soft: false, title: "Another device of the group is attached to a different domain" },
  "owned-by-other": { errno: "EPERM", soft: false, title: "DMA ownership is held by another owner" },
  "not-owned": { errno: "EPERM", soft: false, title: "Group has no DMA owner" },
  "quota-exceeded": { errno: "EDQUOT", soft: false, title: "The caller's quota is used up" },
  "domain-ids-exhausted": { errno: "ENOSPC", soft: false, title: "Domain IDs exhausted on the unit" },
  // arm_smmu_domain_finalise_s1: xa_alloc on the global ASID xarray answers -EBUSY when full.
  "asids-exhausted": { errno: "EBUSY", soft: false, title: "ASIDs exhausted (SMMUv3 global ASID space)" },
  "vmids-exhausted": { errno: "ENOSPC", soft: false, title: "VMIDs exhausted on the SMMU" },
  "context-banks-exhausted": { errno: "ENOSPC", soft: false, title: "Context banks exhausted on the SMMU" },
  // AMD protection_domain_alloc: a full pdom_ids pool fails the allocation, answered -ENOMEM.
  "domain-id-pool-exhausted": { errno: "ENOMEM", soft: false, title: "The driver's domain ID pool is used up" },
  // apple_dart_finalize_domain: no paging domain at all on a DART whose page exceeds the CPU page.
  "page-too-large": { errno: "EINVAL", soft: false, title: "The unit's page is larger than the CPU page; it cannot back a paging domain" },
  "granule-too-large": { errno: "ENODEV", soft: false, title: "IOMMU granule larger than the CPU page size" },
  "unit-offline": { errno: "ENODEV", soft: false, title: "IOMMU unit is offline" },
  "device-faulty": { errno: "ENODEV", soft: false, title: "Device is faulty or gone" },
  "injected-fault": { errno: null, soft: true, title: "Injected driver failure" },
  "unsupported": { errno: "EOPNOTSUPP", soft: false, title: "Feature not supported" },
  "name-taken": { errno: "EEXIST", soft: false, title: "Name already in use" },
  "no-such-unit": { errno: "ENOENT", soft: false, title: "No such unit" },
  "no-such-group": { errno: "ENOENT", soft: false, title: "No such group" },
  "no-such-device": { errno: "ENOENT", soft: false, title: "No such device" },
  "no-such-domain": { errno: "ENOENT", soft: false, title: "No such domain" },
  "no-such-container": { errno: "ENOENT", soft: false, title: "No such container" },
  "no-such-fault": { errno: "ENOENT", soft: false, title: "No such fault" },
  "no-such-pasid": { errno: "ENOENT", soft: false, title: "No such PASID attachment" },
  "invalid-argument": { errno: "EINVAL", soft: false, title: "Invalid argument" },
  // IOVA mappings and reserved regions (iommufd's io_pagetable).
  "reserved-region-mapped": { errno: "EADDRINUSE", soft: false, title: "A reserved region of the device overlaps a mapping of the container" },
  "mapping-outside-aperture": { errno: "EADDRINUSE", soft: false, title: "A mapping of the container lies outside the domain's aperture" },
  "mapping-misaligned": { errno: "EADDRINUSE", soft: false, title: "A mapping of the container is not aligned to the domain's smallest page" },
  "iova-misaligned": { errno: "EINVAL", soft: false, title: "IOVA or length is not a multiple of the container's IOVA alignment" },
  "iova-reserved": { errno: "EINVAL", soft: false, title: "The range overlaps reserved IOVA" },
  "iova-mapped": { errno: "EEXIST", soft: false, title: "The range overlaps an existing mapping" },
  "iova-space-exhausted": { errno: "ENOSPC", soft: false, title: "No free IOVA range is large enough" },
  "iova-not-mapped": { errno: "ENOENT", soft: false, title: "Nothing is mapped in the range" },
  "mapping-split": { errno: "ENOENT", soft: false, title: "The range covers only part of a mapping" },
  "no-such-mapping": { errno: "ENOENT", soft: false, title: "No such IOVA mapping" },
  "no-such-region": { errno: "ENOENT", soft: false, title: "No such reserved region" },
} as const satisfies Record<string, CatalogueEntry>;

/** Raised around the core: failures of the request, the caller or the service, not of a rule. */
export const SERVICE_REASONS = {
  "invalid-request": { errno: "EINVAL", soft: false, title: "The request does not match the schema" },
  "no-such-route": { errno: "ENOENT", soft: false, title: "No such route" },
  "unauthenticated": { errno: "EACCES", soft: false, title: "A valid bearer token is required" },
  "forbidden-role": { errno: "EPERM", soft: false, title: "The caller's role does not allow this operation" },
  "malformed-request": { errno: "EINVAL", soft: false, title: "The request is not well-formed HTTP" },
  "method-not-allowed": { errno: "EOPNOTSUPP", soft: false, title: "The resource does not support this method" },
  "method-not-implemented": { errno: "ENOSYS", soft: false, title: "The service implements no such method" },
  "body-too-large": { errno: "E2BIG", soft: false, title: "The request body is larger than the service accepts" },
  "uri-too-long": { errno: "ENAMETOOLONG", soft: false, title: "The request target is longer than the service accepts" },
  "unsupported-media-type": { errno: "EINVAL", soft: false, title: "The request body is not JSON" },
  "store-unavailable": { errno: "EIO", soft: false, title: "The database could not make the change durable" },
  "not-ready": { errno: "EIO", soft: false, title: "The service does not take changes right now" },
  "internal-error": { errno: "EIO", soft: false, title: "Internal error" },
  // Bounded resources: the client may try again later (EAGAIN) or must be faster.
  "rate-limited": { errno: "EAGAIN", soft: false, title: "Too many requests from this client; retry after the given delay" },
  "overloaded": { errno: "EAGAIN", soft: false, title: "The server is overloaded; retry after the given delay" },
  "too-many-connections": { errno: "EAGAIN", soft: false, title: "Too many open connections; retry after the given delay" },
  "too-many-streams": { errno: "EAGAIN", soft: false, title: "Too many open event streams; retry after the given delay" },
  "request-timeout": { errno: "ETIMEDOUT", soft: false, title: "The request did not arrive in time" },
  "headers-too-large": { errno: "E2BIG", soft: false, title: "The request headers are too large" },
  "invalid-idempotency-key": { errno: "EINVAL", soft: false, title: "Idempotency-Key is not a quoted string of 1 to 255 printable ASCII characters" },
  "idempotency-key-reused": { errno: "EINVAL", soft: false, title: "Idempotency-Key was already used for another request" },
  "idempotency-key-in-flight": { errno: "EAGAIN", soft: false, title: "A request with this Idempotency-Key is still being processed" },
  "precondition-failed": { errno: "ESTALE", soft: false, title: "If-Match does not match the resource's current version" },
} as const satisfies Record<string, CatalogueEntry>;

// A reason in both sections would be silently overwritten by the spread below.
const SECTIONS_DISJOINT: [Extract<keyof typeof CORE_REASONS, keyof typeof SERVICE_REASONS>] extends [never] ? true : never = true;
void SECTIONS_DISJOINT;

export const REASONS = { ...CORE_REASONS, ...SERVICE_REASONS };

export type Reason = keyof typeof REASONS;

/**
 * Whether an answer is soft: an EINVAL whose reason's entry says so, or an
 * EINVAL for a reason whose own errno is another: that EINVAL is a driver's
 * raw code (a kernel-version profile's, src/core/profiles.ts), which the
 * contract reads as "incompatible". Takes strings so that a stored event
 * (whose reason may predate today's catalogue) is judged by the same rule as
 * a live error.
 */
export function isSoftAnswer(errno: string | null, reason: string | null): boolean {
  if (errno !== "EINVAL" || reason === null || !Object.hasOwn(REASONS, reason)) return false;
  const entry = REASONS[reason as Reason];
  return entry.soft || entry.errno !== "EINVAL";
}

/** The reasons whose errno is fixed by the catalogue (all but injected-fault). */
export type FixedReason = { [R in Reason]: (typeof REASONS)[R]["errno"] extends null ? never : R }[Reason];

/** The reasons whose errno is the one a driver (or an injected fault) returned. */
export type DriverReason = Exclude<Reason, FixedReason>;

export function errnoOf(reason: FixedReason): ErrnoName {
  return REASONS[reason].errno;
}
