// The one error shape: RFC 9457 problem details carrying the errno contract.
import type { FastifyReply, FastifyRequest } from "fastify";
import { errnoCode, type ErrnoName } from "../core/errno.js";
import { REASONS, type Reason } from "../core/reasons.js";
import { isSoft, type ErrnoError } from "../core/result.js";
import type { Attempt } from "../core/container-attach.js";
import { answer, PROBLEM_TYPE, sendAnswer, type Answer } from "./answer.js";

/** HTTP status for each errno the service answers with. */
const STATUS: Partial<Record<ErrnoName, number>> = {
  EINVAL: 409, EBUSY: 409, EEXIST: 409,
  ENOSPC: 507, ENOMEM: 507,
  ENODEV: 422,
  EPERM: 403,
  ENOENT: 404,
  EOPNOTSUPP: 501,
  EIO: 503,
  EAGAIN: 429,
  // A quota is not a rate: waiting does not lift it, only deleting objects
  // (or faults) does. 429 would invite clients and proxies to retry on a
  // timer, so the answer is 403 and the errno (EDQUOT) says which refusal it is.
  EDQUOT: 403,
};

/** Reasons whose status is theirs, whatever their errno. */
const REASON_STATUS: Partial<Record<Reason, number>> = {
  "invalid-argument": 400,
  "invalid-request": 400,
  "invalid-idempotency-key": 400,
  "idempotency-key-in-flight": 409,
  "precondition-failed": 412,
  "idempotency-key-reused": 422,
  "unauthenticated": 401,
};

export function statusOf(error: ErrnoError): number {
  return REASON_STATUS[error.reason] ?? STATUS[error.errno] ?? 500;
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
 * The answer for a problem, logged as the kernel would have it: a soft EINVAL
 * is a legitimate probe (debug), other refusals are warnings, 5xx are errors.
 */
export function problemAnswer(reply: FastifyReply, error: ErrnoError, status = statusOf(error), extra?: Partial<ProblemDocument>): Answer {
  const doc = { ...problemOf(error, reply.request, status), ...extra };
  const log = reply.log;
  const fields = { errno: doc.errno, reason: doc.reason, status };
  if (status >= 500) log.error(fields, doc.detail);
  else if (doc.soft) log.debug(fields, doc.detail);
  else log.warn(fields, doc.detail);
  return answer(reply, status, doc, PROBLEM_TYPE);
}

/** A request header, parsed, or why it was refused. */
export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly field: `headers.${string}`; readonly reason: Reason; readonly message: string };

/** The 400 for a malformed header, naming it as the schema refusals name fields. */
export function headerProblem(reply: FastifyReply, refused: Extract<Parsed<unknown>, { ok: false }>): Answer {
  const detail = `${refused.field} ${refused.message}`;
  return problemAnswer(reply, { errno: "EINVAL", reason: refused.reason, detail }, 400, { errors: [{ field: refused.field, message: refused.message }] });
}

export function sendProblem(reply: FastifyReply, error: ErrnoError, status = statusOf(error), extra?: Partial<ProblemDocument>): FastifyReply {
  return sendAnswer(reply, problemAnswer(reply, error, status, extra));
}

/**
 * A refusal raised from a hook or plugin (rate limit, load shedding) that the
 * error handler answers as this problem, with these headers (Retry-After).
 */
export class ProblemError extends Error {
  constructor(
    readonly problem: ErrnoError,
    readonly status: number,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(problem.detail);
    this.name = "ProblemError";
  }
}
