// The error contract a client may rely on (README, "Errors: the errno
// table"), as a check over any answer that is not 2xx.
import { ERRNO_VALUES } from "../../src/core/errno.js";
import { REASONS } from "../../src/core/reasons.js";

/** The documented errnos and the HTTP statuses each may come with. */
export const DOCUMENTED_ERRNOS: Readonly<Record<string, readonly number[]>> = {
  EINVAL: [409, 400],
  EBUSY: [409],
  EEXIST: [409],
  ENOSPC: [507],
  ENOMEM: [507],
  ENODEV: [422],
  EPERM: [403],
  ENOENT: [404],
  EOPNOTSUPP: [501],
  EIO: [503, 500],
  // Refusals of the HTTP edge rather than of the contract's rules.
  EACCES: [401],
  EDQUOT: [403],
  EAGAIN: [429, 409, 503],
  ESTALE: [412],
  ETIMEDOUT: [408],
  E2BIG: [431],
};

/**
 * A failure of the service rather than an answer of the contract: any 5xx
 * but 507, which is how the contract answers ENOSPC (a unit's domain IDs,
 * ASIDs or context banks are exhausted) and ENOMEM.
 */
export function isServerFailure(status: number, body: unknown): boolean {
  if (status < 500) return false;
  const errno = (body as ProblemBody | null)?.errno;
  return !(status === 507 && (errno === "ENOSPC" || errno === "ENOMEM"));
}

/** Reasons that make an EINVAL a 400 (the request is malformed). */
const BAD_REQUEST_REASONS: ReadonlySet<string> = new Set(["invalid-request", "invalid-argument"]);

export interface ProblemBody {
  type?: unknown; title?: unknown; status?: unknown; detail?: unknown;
  errno?: unknown; code?: unknown; soft?: unknown; reason?: unknown;
}

/**
 * What is wrong with a non-2xx answer as a problem document, or null when it
 * is a well-formed problem with a documented errno and matching status.
 */
export function problemViolation(status: number, contentType: string, body: unknown): string | null {
  if (!contentType.startsWith("application/problem+json")) return `${status} answered as ${contentType || "no content type"}`;
  if (body === null || typeof body !== "object") return `${status} problem without a JSON object body`;
  const p = body as ProblemBody;
  const errno = String(p.errno);
  const statuses = DOCUMENTED_ERRNOS[errno];
  if (!statuses) return `${status} with undocumented errno ${errno}`;
  if (!statuses.includes(status)) return `${status} with errno ${errno}, documented as ${statuses.join("/")}`;
  if (p.status !== status) return `${status} whose document says status ${String(p.status)}`;
  if (p.code !== -ERRNO_VALUES[errno as keyof typeof ERRNO_VALUES]) return `${errno} with code ${String(p.code)}`;
  const reason = String(p.reason);
  if (!(reason in REASONS)) return `${status} with unknown reason ${reason}`;
  if (p.type !== `urn:iommu-arbiter:problem:${reason}`) return `reason ${reason} with type ${String(p.type)}`;
  if (errno === "EINVAL" && (status === 400) !== BAD_REQUEST_REASONS.has(reason)) return `EINVAL ${reason} answered ${status}`;
  if (typeof p.soft !== "boolean" || (p.soft && errno !== "EINVAL")) return `${errno} with soft ${String(p.soft)}`;
  if (typeof p.title !== "string" || p.title === "" || typeof p.detail !== "string" || p.detail === "") return `${status} without title or detail`;
  return null;
}
