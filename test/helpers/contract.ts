// The error contract a client may rely on (README, "Errors: the errno
// table", generated from the catalogue and the status table), as a check over
// any answer that is not 2xx. The catalogue itself is pinned row by row in
// test/http/errors-catalogue.test.ts.
import { ERRNO_VALUES, isAttachDevErrno, isErrnoName } from "../../src/core/errno.js";
import { isSoftAnswer, REASONS, type Reason } from "../../src/core/reasons.js";
import { statusOf } from "../../src/http/status.js";

/**
 * A failure of the service rather than an answer of the contract: any 5xx
 * but 507, which is how the contract answers ENOSPC (a unit's domain IDs,
 * VMIDs or context banks are exhausted), ENOMEM (AMD's domain-ID pool, an
 * injected ENOMEM) and the SMMUv3 ASID space's EBUSY.
 */
export function isServerFailure(status: number, body: unknown): boolean {
  if (status < 500) return false;
  const { errno, reason } = (body as ProblemBody | null) ?? {};
  return !(status === 507 && (errno === "ENOSPC" || errno === "ENOMEM" || reason === "asids-exhausted"));
}

export interface ProblemBody {
  type?: unknown; title?: unknown; status?: unknown; detail?: unknown;
  errno?: unknown; code?: unknown; soft?: unknown; reason?: unknown;
}

/**
 * What is wrong with a non-2xx answer as a problem document, or null when it
 * is a well-formed problem whose reason is catalogued and whose errno, status,
 * soft flag and title are the ones the catalogue and status table give it.
 */
export function problemViolation(status: number, contentType: string, body: unknown): string | null {
  if (!contentType.startsWith("application/problem+json")) return `${status} answered as ${contentType || "no content type"}`;
  if (body === null || typeof body !== "object") return `${status} problem without a JSON object body`;
  const p = body as ProblemBody;
  const reason = String(p.reason);
  if (!Object.hasOwn(REASONS, reason)) return `${status} with unknown reason ${reason}`;
  const entry = REASONS[reason as Reason];
  const errno = String(p.errno);
  if (!isErrnoName(errno)) return `${status} with unknown errno ${errno}`;
  if (entry.errno === null ? !isAttachDevErrno(errno) : errno !== entry.errno) return `${reason} with errno ${errno}, catalogued as ${entry.errno ?? "an attach_dev code"}`;
  const want = statusOf({ errno, reason: reason as Reason, detail: "" });
  if (status !== want) return `${reason} (${errno}) answered ${status}, its status is ${want}`;
  if (p.status !== status) return `${status} whose document says status ${String(p.status)}`;
  if (p.code !== -ERRNO_VALUES[errno]) return `${errno} with code ${String(p.code)}`;
  if (p.type !== `urn:iommu-arbiter:problem:${reason}`) return `reason ${reason} with type ${String(p.type)}`;
  if (p.soft !== isSoftAnswer(errno, reason)) return `${errno} ${reason} with soft ${String(p.soft)}`;
  if (p.title !== entry.title) return `${reason} with title ${String(p.title)}`;
  if (typeof p.detail !== "string" || p.detail === "") return `${status} without detail`;
  return null;
}
