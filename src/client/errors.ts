// How a failed request surfaces. Three kinds, as a caller has to tell them apart:
//
// - ErrnoError: the operation was refused by a rule of the attach contract
//   or of the core's objects (a reason of src/core/reasons.ts CORE_REASONS,
//   or one this client does not know yet, since a newer server's new rule
//   is still a refusal, soft or not):
//   EINVAL soft or hard, EBUSY, ENODEV, EPERM, ENOENT ... This is what
//   retry-on-EINVAL acts on, and it is never retried by the transport.
// - ProblemError (the base of ErrnoError): any other problem+json answer, a
//   failure of the request or the service around the operation: validation
//   (400), authentication (401), role (403), unknown route, If-Match (412),
//   rate limit (429), store or overload (503), internal error (500).
// - TransportError: no answer at all (connection refused or reset, the
//   per-request timeout) after the retries the policy allows, or an answer
//   that is not a problem document (a proxy's 502 page).
//
// An aborted call rejects with the AbortSignal's reason, as fetch does.
import { ATTACH_DEV_ERRNOS, ERRNO_VALUES, type AttachDevErrno, type ErrnoName } from "../core/errno.js";
import { SERVICE_REASONS } from "../core/reasons.js";
import type { Attempt, ProblemDocument } from "./types.js";

/** Fields every problem document carries, whatever the server version. */
export class ProblemError extends Error {
  override readonly name: string = "ProblemError";
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string | null;
  readonly instance: string | null;
  readonly requestId: string | null;
  /** The errno name of the answer (the service's own failures have one too: EACCES, EAGAIN, ...). */
  readonly errno: string | null;
  /** Its negative Linux value. */
  readonly code: number;
  readonly soft: boolean;
  readonly reason: string | null;
  /** Seconds the server asked the client to wait (Retry-After), if it did. */
  readonly retryAfter: number | null;
  /** The document as received. */
  readonly problem: ProblemDocument;

  constructor(problem: ProblemDocument, retryAfter: number | null = null) {
    super(`${problem.errno ?? problem.status}${problem.soft ? " (soft)" : ""}: ${problem.detail ?? problem.title}`);
    this.problem = problem;
    this.status = problem.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.instance = problem.instance ?? null;
    this.requestId = problem.requestId ?? null;
    this.errno = problem.errno;
    this.code = problem.code;
    this.soft = problem.soft;
    this.reason = problem.reason;
    this.retryAfter = retryAfter;
  }

  /** The errno's Linux number (22 for EINVAL), or null when the answer named none the client knows. */
  get errnoNumber(): number | null {
    return this.errno !== null && Object.hasOwn(ERRNO_VALUES, this.errno) ? ERRNO_VALUES[this.errno as ErrnoName] : null;
  }
}

/**
 * A refusal by the contract. `errno` is the code the kernel's caller acts on:
 * for a driver's refusal always one of attach_dev's defined codes (EINVAL,
 * ENOMEM, ENOSPC, EBUSY, ENODEV). The server already answers a driver code
 * outside them (an injected ETIMEDOUT, a 6.1 kernel's EOPNOTSUPP) as ENODEV
 * with the raw code in `driverErrno`; a driver answer that arrives with such
 * a code as its errno (a server without that rule) is read the same way here,
 * so `errno` is ENODEV and `driverErrno` the raw code either way.
 */
export class ErrnoError extends ProblemError {
  override readonly name: string = "ErrnoError";
  override readonly errno: ErrnoName;
  /** The raw driver code when it was outside the contract (answered as ENODEV); null otherwise. */
  readonly driverErrno: string | null;
  readonly stranded: { domainId: number; deviceIds: number[] } | null;
  /**
   * Every domain tried, in order: the server's search trace on a failed
   * container attach, or attachWithRetry's own trace when it stops.
   */
  readonly attempts: Attempt[] | null;
  readonly groupId: number | null;
  readonly deviceId: number | null;
  readonly domainId: number | null;
  readonly containerId: number | null;

  constructor(problem: ProblemDocument, retryAfter: number | null = null, attempts?: Attempt[]) {
    const raw = problem.errno;
    const outside = problem.reason === "injected-fault" && isErrno(raw) && !isAttachDevErrno(raw);
    const doc: ProblemDocument = outside
      ? { ...problem, errno: "ENODEV", code: -ERRNO_VALUES.ENODEV, soft: false, driverErrno: problem.driverErrno ?? raw }
      : problem;
    super(doc, retryAfter);
    this.errno = isErrno(doc.errno) ? doc.errno : "ENODEV";
    this.driverErrno = doc.driverErrno ?? null;
    this.stranded = doc.stranded ?? null;
    this.attempts = attempts ?? doc.attempts ?? null;
    this.groupId = doc.groupId ?? null;
    this.deviceId = doc.deviceId ?? null;
    this.domainId = doc.domainId ?? null;
    this.containerId = doc.containerId ?? null;
  }

  /** The same refusal with `attempts` as the trace. */
  withAttempts(attempts: Attempt[]): ErrnoError {
    return new ErrnoError(this.problem, this.retryAfter, attempts);
  }
}

/** No answer (or none the client can read) after the retries allowed. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  constructor(message: string, readonly attempts: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function isErrno(name: string | null): name is ErrnoName {
  return name !== null && Object.hasOwn(ERRNO_VALUES, name);
}

function isAttachDevErrno(name: ErrnoName): name is AttachDevErrno {
  return (ATTACH_DEV_ERRNOS as readonly string[]).includes(name);
}

/** A failure of the request or the service around the operation (src/core/reasons.ts SERVICE_REASONS). */
function isServiceReason(reason: string | null): boolean {
  return reason !== null && Object.hasOwn(SERVICE_REASONS, reason);
}

/** Whether a parsed body is a problem document this client can read. */
export function isProblemDocument(body: unknown): body is ProblemDocument {
  if (typeof body !== "object" || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.status === "number" && typeof b.type === "string" && typeof b.title === "string"
    && "errno" in b && typeof b.code === "number" && typeof b.soft === "boolean";
}

/** The error for a problem answer: ErrnoError for the contract's refusals, ProblemError for the rest. */
export function problemError(problem: ProblemDocument, retryAfter: number | null): ProblemError {
  return !isServiceReason(problem.reason) && isErrno(problem.errno) ? new ErrnoError(problem, retryAfter) : new ProblemError(problem, retryAfter);
}

