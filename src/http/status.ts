// The HTTP status of every reason of the catalogue (src/core/reasons.ts),
// the one place it is decided. The table is exhaustive by type: a reason
// added to the catalogue does not compile until it has a status here.
import type { AttachDevErrno } from "../core/errno.js";
import { isAttachDevErrno } from "../core/errno.js";
import { REASONS, type FixedReason, type Reason } from "../core/reasons.js";
import type { ErrnoError } from "../core/result.js";

/**
 * A reason with its own errno has one status. The injected fault has none of
 * its own: it stands for whatever the driver's attach_dev returned, so its
 * status is that of the errno it carries (after the attach caller's "any
 * other code is ENODEV" rule, hence one entry per code the contract defines),
 * answered as the core's own reasons with that errno are.
 */
export type StatusTable = {
  readonly [R in Reason]: R extends FixedReason ? number : Readonly<Record<AttachDevErrno, number>>;
};

export const STATUS: StatusTable = {
  // Incompatible (soft) and other refusals of the contract: a conflict with
  // the current state, 409.
  "address-width": 409,
  "snoop-control": 409,
  "cache-coherency": 409,
  "dirty-tracking": 409,
  "page-size": 409,
  "iommu-coherency": 409,
  "first-stage": 409,
  "different-instance": 409,
  "different-driver": 409,
  "requires-identity": 409,
  "pasid-incompatible": 409,
  "untrusted-device": 409,
  "bypass-unsupported": 409,
  "group-has-multiple-devices": 409,
  "group-attached": 409,
  "group-not-default": 409,
  "group-has-devices": 409,
  "domain-in-use": 409,
  "domain-not-attachable": 409,
  "unit-in-use": 409,
  "container-in-use": 409,
  "not-in-container": 409,
  "in-other-container": 409,
  "pasid-in-use": 409,
  "pasid-attached": 409,
  "pasid-out-of-range": 409,
  "no-pasid-table": 409,
  "group-owned": 409,
  "device-has-driver": 409,
  "not-cache-coherent": 409,
  "device-not-attached": 409,
  "group-on-another-domain": 409,
  "msi-not-isolated": 403,
  "group-claimed": 403,
  "iommufd-bound": 403,
  "not-bound": 404,
  "page-too-large": 409,
  "name-taken": 409,
  // ENODEV: the device or unit cannot do it at all, whatever the state.
  "group-empty": 422,
  "granule-too-large": 422,
  "unit-offline": 422,
  "device-faulty": 422,
  "owned-by-other": 403,
  "not-owned": 403,
  "host-driver-bound": 403,
  // A quota is not a rate: waiting does not lift it, only deleting objects
  // (or faults) does. 429 would invite clients and proxies to retry on a
  // timer, so the answer is 403 and the errno (EDQUOT) says which refusal it is.
  "quota-exceeded": 403,
  // ENOSPC: out of a hardware resource, the storage-like 507. The ID spaces
  // whose allocator answers another errno (SMMUv3 ASIDs EBUSY, AMD's pool
  // ENOMEM) ran out all the same: 507 too.
  "domain-ids-exhausted": 507,
  "asids-exhausted": 507,
  "vmids-exhausted": 507,
  "context-banks-exhausted": 507,
  "domain-id-pool-exhausted": 507,
  "injected-fault": { EINVAL: 409, EBUSY: 409, ENOMEM: 507, ENOSPC: 507, ENODEV: 422 },
  "unsupported": 501,
  "no-such-unit": 404,
  "no-such-group": 404,
  "no-such-device": 404,
  "no-such-domain": 404,
  "no-such-container": 404,
  "no-such-fault": 404,
  "no-such-pasid": 404,
  // IOVA space: the container's mappings and reservations refuse it (409);
  // no room left (507); nothing there (404).
  "reserved-region-mapped": 409,
  "mapping-outside-aperture": 409,
  "mapping-misaligned": 409,
  "iova-misaligned": 409,
  "iova-reserved": 409,
  "iova-mapped": 409,
  "iova-space-exhausted": 507,
  "iova-not-mapped": 404,
  "mapping-split": 404,
  "no-such-mapping": 404,
  "no-such-region": 404,
  // A malformed request, not a conflict.
  "invalid-argument": 400,
  "driver-mismatch": 400,
  "invalid-request": 400,
  "no-such-route": 404,
  "unauthenticated": 401,
  "forbidden-role": 403,
  "malformed-request": 400,
  "method-not-allowed": 405,
  "method-not-implemented": 501,
  "body-too-large": 413,
  "uri-too-long": 414,
  "unsupported-media-type": 415,
  "store-unavailable": 503,
  "not-ready": 503,
  "internal-error": 500,
  "rate-limited": 429,
  // The service, not this client, is short: 503 with Retry-After.
  "overloaded": 503,
  "too-many-connections": 503,
  "too-many-streams": 503,
  "request-timeout": 408,
  "headers-too-large": 431,
  "invalid-idempotency-key": 400,
  "idempotency-key-reused": 422,
  // The first request with the key has not been answered: a conflict, not a rate.
  "idempotency-key-in-flight": 409,
  "precondition-failed": 412,
};

/**
 * A driver code as the attach caller classifies it (a contract code), answered
 * as the core's own reasons with that errno are.
 */
const DRIVER_CODE_STATUS = STATUS["injected-fault"];

/**
 * The status a problem is answered with. A reason answered with another
 * errno than its own carries the raw code a kernel-version profile's driver
 * returned (src/core/profiles.ts): its status is that errno's, as for an
 * injected fault.
 */
export function statusOf(error: ErrnoError): number {
  const status = STATUS[error.reason];
  if (typeof status === "number" && error.errno === REASONS[error.reason].errno) return status;
  // Only the attach caller makes these (normalised to a contract code).
  return isAttachDevErrno(error.errno) ? DRIVER_CODE_STATUS[error.errno] : 500;
}
