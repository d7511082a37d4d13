// Stable, kebab-case machine reasons. Each names the rule that failed; the
// errno is chosen where the rule fires, but the catalogue fixes whether an
// EINVAL with this reason is "soft" (device and domain are incompatible
// because of how the domain was configured: try another domain).

export const REASONS = {
  // Soft incompatibilities (EINVAL): the contract's retry-on-EINVAL cases.
  "address-width": { soft: true, title: "Domain address width exceeds the unit's" },
  "snoop-control": { soft: true, title: "Domain enforces cache coherency; unit has no snoop control" },
  "cache-coherency": { soft: true, title: "Domain enforces cache coherency; device lacks CANWBS" },
  "dirty-tracking": { soft: true, title: "Domain tracks dirty pages; unit or device cannot" },
  "page-size": { soft: true, title: "Page sizes of domain and unit do not match" },
  "nesting": { soft: true, title: "Nesting parent domain on a unit without nesting" },
  "different-instance": { soft: true, title: "Domain is finalised on another IOMMU instance" },
  "different-driver": { soft: true, title: "Domain belongs to another IOMMU driver" },
  "requires-identity": { soft: true, title: "Device requires identity mappings and cannot be blocked" },
  // Hard failures.
  "group-has-multiple-devices": { soft: false, title: "Device attach needs a group with exactly one device" },
  "group-attached": { soft: false, title: "Group is attached to another domain; use replace" },
  "group-not-default": { soft: false, title: "Group is not on its default domain" },
  "group-has-devices": { soft: false, title: "Group still has devices" },
  "group-empty": { soft: false, title: "Group has no devices to attach" },
  "domain-in-use": { soft: false, title: "Domain is in use" },
  "domain-not-attachable": { soft: false, title: "Domain cannot be attached by this group" },
  "unit-in-use": { soft: false, title: "Unit still has groups or domains" },
  "container-in-use": { soft: false, title: "Container still has domains" },
  "not-in-container": { soft: false, title: "Group is not attached through this container" },
  "pasid-in-use": { soft: false, title: "Stage-2 domain while the device has PASIDs in use" },
  "owned-by-other": { soft: false, title: "DMA ownership is held by another owner" },
  "not-owned": { soft: false, title: "Group has no DMA owner" },
  "quota-exceeded": { soft: false, title: "The caller's quota is used up" },
  "domain-ids-exhausted": { soft: false, title: "Domain IDs exhausted on the unit" },
  "asids-exhausted": { soft: false, title: "ASIDs/VMIDs exhausted on the SMMU" },
  "context-banks-exhausted": { soft: false, title: "Context banks exhausted on the SMMU" },
  "granule-too-large": { soft: false, title: "IOMMU granule larger than the CPU page size" },
  "unit-offline": { soft: false, title: "IOMMU unit is offline" },
  "device-faulty": { soft: false, title: "Device is faulty or gone" },
  "injected-fault": { soft: false, title: "Injected driver failure" },
  "unsupported": { soft: false, title: "Feature not supported" },
  "name-taken": { soft: false, title: "Name already in use" },
  "no-such-unit": { soft: false, title: "No such unit" },
  "no-such-group": { soft: false, title: "No such group" },
  "no-such-device": { soft: false, title: "No such device" },
  "no-such-domain": { soft: false, title: "No such domain" },
  "no-such-container": { soft: false, title: "No such container" },
  "no-such-fault": { soft: false, title: "No such fault" },
  "invalid-argument": { soft: false, title: "Invalid argument" },
  // Reasons the HTTP layer adds for failures that are not the core's.
  "invalid-request": { soft: false, title: "The request does not match the schema" },
  "no-such-route": { soft: false, title: "No such route" },
  "unauthenticated": { soft: false, title: "A valid bearer token is required" },
  "forbidden-role": { soft: false, title: "The caller's role does not allow this operation" },
  "malformed-request": { soft: false, title: "The request is not well-formed HTTP" },
  "method-not-allowed": { soft: false, title: "The resource does not support this method" },
  "method-not-implemented": { soft: false, title: "The service implements no such method" },
  "body-too-large": { soft: false, title: "The request body is larger than the service accepts" },
  "uri-too-long": { soft: false, title: "The request target is longer than the service accepts" },
  "unsupported-media-type": { soft: false, title: "The request body is not JSON" },
  "store-unavailable": { soft: false, title: "The database could not make the change durable" },
  "not-ready": { soft: false, title: "The service does not take changes right now" },
  "internal-error": { soft: false, title: "Internal error" },
  // Bounded resources: the client may try again later (EAGAIN) or must be faster.
  "rate-limited": { soft: false, title: "Too many requests from this client; retry after the given delay" },
  "overloaded": { soft: false, title: "The server is overloaded; retry after the given delay" },
  "too-many-connections": { soft: false, title: "Too many open connections; retry after the given delay" },
  "request-timeout": { soft: false, title: "The request did not arrive in time" },
  "headers-too-large": { soft: false, title: "The request headers are too large" },
  "invalid-idempotency-key": { soft: false, title: "Idempotency-Key is not a quoted string of 1 to 255 printable ASCII characters" },
  "idempotency-key-reused": { soft: false, title: "Idempotency-Key was already used for another request" },
  "idempotency-key-in-flight": { soft: false, title: "A request with this Idempotency-Key is still being processed" },
  "precondition-failed": { soft: false, title: "If-Match does not match the resource's current version" },
} as const;

export type Reason = keyof typeof REASONS;

export function isSoftReason(reason: Reason): boolean {
  return REASONS[reason].soft;
}
