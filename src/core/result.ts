// Errors are values: every core operation returns a Result. The store and the
// HTTP layer translate, nobody throws for a rule that failed.
import { type ErrnoName, normaliseAttachErrno } from "./errno.js";
import { errnoOf, isSoftAnswer, type DriverReason, type FixedReason, type Reason } from "./reasons.js";

/**
 * The devices a failed group attach left on the domain it was attaching, on a
 * kernel without the unwind (before v6.5, src/core/profiles.ts): the group
 * stays where it was, these devices are on `domainId`.
 */
export interface Stranded {
  readonly domainId: number;
  readonly deviceIds: readonly number[];
}

export interface ErrnoError {
  /** The errno the caller acts on (after the "other codes are ENODEV" rule). */
  readonly errno: ErrnoName;
  readonly reason: Reason;
  readonly detail: string;
  /** The raw code a driver returned, when it was normalised to ENODEV. */
  readonly driverErrno?: ErrnoName;
  /** Devices the failed attach left on the new domain (a kernel without the unwind). */
  readonly stranded?: Stranded;
  /** Ids of the objects involved, echoed to the client. */
  readonly ids?: Readonly<Record<string, number>>;
}

export type Result<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ErrnoError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

/** The success of a check that produces nothing. */
export const OK: Result<void> = ok(undefined);

/** The failure of a rule: its errno comes from the catalogue entry of its reason. */
export function fail<T = never>(reason: FixedReason, detail: string, ids?: Record<string, number>): Result<T> {
  return { ok: false, error: failure(reason, detail, ids) };
}

/** The error value of a rule that failed (see fail). */
export function failure(reason: FixedReason, detail: string, ids?: Record<string, number>): ErrnoError {
  const errno = errnoOf(reason);
  return ids ? { errno, reason, detail, ids } : { errno, reason, detail };
}

/**
 * A driver's raw code as the attach caller sees it. Only a reason without an
 * errno of its own takes one: every other reason answers its catalogue errno.
 */
export function driverFailure<T = never>(raw: ErrnoName, reason: DriverReason, detail: string): Result<T> {
  const errno = normaliseAttachErrno(raw);
  const error: ErrnoError = errno === raw ? { errno, reason, detail } : { errno, reason, detail, driverErrno: raw };
  return { ok: false, error };
}

/**
 * A refusal as a kernel that returned `raw` for it answers (a kernel-version
 * profile, src/core/profiles.ts): the contract classifies the raw code as it
 * does every driver code, and the raw code is kept where it is outside the
 * contract. The detail names the kernel and its code.
 */
export function withRawCode(error: ErrnoError, raw: ErrnoName, kernel: string): ErrnoError {
  const errno = normaliseAttachErrno(raw);
  const { driverErrno: _replaced, ...rest } = error;
  const answered: ErrnoError = { ...rest, errno, detail: `${error.detail}; Linux ${kernel} returns ${raw}` };
  return errno === raw ? answered : { ...answered, driverErrno: raw };
}

/** The error without the devices it stranded: for a domain the failed operation freed again. */
export function withoutStrands(error: ErrnoError): ErrnoError {
  if (error.stranded === undefined) return error;
  const { stranded: _gone, ...rest } = error;
  return rest;
}

/**
 * Soft means: EINVAL because device and domain are incompatible. A driver's
 * EINVAL from attach_dev means exactly that by contract, so an injected one
 * is soft too, and so is the EINVAL an older kernel returned for a refusal
 * that answers another errno today (a profile's virtio granule); the core's
 * own EINVALs (bad arguments) are not. The catalogue says which reasons are
 * soft (src/core/reasons.ts).
 */
export function isSoft(error: ErrnoError): boolean {
  return isSoftAnswer(error.errno, error.reason);
}

/** The error without one of its ids: for an object the failed operation made and its rollback unmade. */
export function withoutId(error: ErrnoError, key: string): ErrnoError {
  if (error.ids === undefined || !(key in error.ids)) return error;
  const { [key]: _gone, ...ids } = error.ids;
  return { ...error, ids };
}

export function withIds(error: ErrnoError, ids: Record<string, number>): ErrnoError {
  return { ...error, ids: { ...error.ids, ...ids } };
}
