// The one error shape: RFC 9457 problem details carrying the errno contract.
import type { FastifyReply, FastifyRequest } from "fastify";
import { errnoCode, type ErrnoName } from "../core/errno.js";
import { REASONS, type Reason } from "../core/reasons.js";
import { isSoft, type ErrnoError } from "../core/result.js";
import type { Attempt } from "../core/search.js";

/** HTTP status for each errno the service answers with. */
const STATUS: Partial<Record<ErrnoName, number>> = {
  EINVAL: 409, EBUSY: 409, EEXIST: 409,
  ENOSPC: 507, ENOMEM: 507,
  ENODEV: 422,
  EPERM: 403,
  ENOENT: 404,
  EOPNOTSUPP: 501,
  EIO: 503,
};

/** Reasons that mean "your request is malformed", whatever their errno. */
const BAD_REQUEST: ReadonlySet<Reason> = new Set<Reason>(["invalid-argument", "invalid-request"]);

export function statusOf(error: ErrnoError): number {
  if (BAD_REQUEST.has(error.reason)) return 400;
  return STATUS[error.errno] ?? 500;
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errno: string;
  code: number;
  soft: boolean;
  reason: string;
  driverErrno?: string;
  requestId?: string;
  attempts?: readonly Attempt[];
  errors?: { field: string; message: string }[];
  [id: `${string}Id`]: unknown;
}

export function problemOf(error: ErrnoError, request: FastifyRequest, status = statusOf(error)): ProblemDocument {
  return problemDocument(error, status, { instance: request.url, requestId: String(request.id) });
}

/**
 * The document alone, for answers written where there is no request object
 * (a raw socket the HTTP parser gave up on, src/http/edge.ts).
 */
export function problemDocument(error: ErrnoError, status: number, at: { instance?: string; requestId?: string } = {}): ProblemDocument {
  const doc: ProblemDocument = {
    type: `urn:iommu-arbiter:problem:${error.reason}`,
    title: REASONS[error.reason].title,
    status,
    detail: error.detail,
    ...(at.instance !== undefined ? { instance: at.instance } : {}),
    errno: error.errno,
    code: errnoCode(error.errno),
    soft: isSoft(error),
    reason: error.reason,
    ...(at.requestId !== undefined ? { requestId: at.requestId } : {}),
    ...error.ids,
  };
  if (error.driverErrno) doc.driverErrno = error.driverErrno;
  const attempts = (error as { attempts?: readonly Attempt[] }).attempts;
  if (attempts) doc.attempts = attempts;
  return doc;
}

/**
 * Answer with a problem, logged as the kernel would have it: a soft EINVAL is
 * a legitimate probe (debug), other refusals are warnings, 5xx are errors.
 */
export function sendProblem(reply: FastifyReply, error: ErrnoError, status = statusOf(error), extra?: Partial<ProblemDocument>): FastifyReply {
  const doc = { ...problemOf(error, reply.request, status), ...extra };
  const log = reply.log;
  const fields = { errno: doc.errno, reason: doc.reason, status };
  if (status >= 500) log.error(fields, doc.detail);
  else if (doc.soft) log.debug(fields, doc.detail);
  else log.warn(fields, doc.detail);
  return reply.code(status).type("application/problem+json").send(doc);
}
