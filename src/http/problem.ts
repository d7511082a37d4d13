// The one error shape: RFC 9457 problem details carrying the errno contract.
import type { FastifyReply, FastifyRequest } from "fastify";
import { outcomeOf, type Failed } from "../core/outcome.js";
import { REASONS, type FixedReason } from "../core/reasons.js";
import { failure, type ErrnoError, type Stranded } from "../core/result.js";
import type { Attempt } from "../core/container-attach.js";
import { answer, PROBLEM_TYPE, sendAnswer, type Answer } from "./answer.js";
import { statusOf } from "./status.js";

/** A problem is the outcome of a failed attempt (never null there) with RFC 9457's members around it. */
export interface ProblemDocument extends Failed {
  type: string;
  title: string;
  status: number;
  instance?: string;
  driverErrno?: string;
  stranded?: Stranded;
  requestId?: string;
  attempts?: readonly Attempt[];
  errors?: { field: string; message: string }[];
  [id: `${string}Id`]: unknown;
}

export function problemOf(error: ErrnoError, request: FastifyRequest): ProblemDocument {
  return problemDocument(error, { instance: request.url, requestId: String(request.id) });
}

/**
 * The document alone, for answers written where there is no request object
 * (a raw socket the HTTP parser gave up on, src/http/edge.ts).
 */
export function problemDocument(error: ErrnoError, at: { instance?: string; requestId?: string } = {}): ProblemDocument {
  const doc: ProblemDocument = {
    type: `urn:iommu-arbiter:problem:${error.reason}`,
    title: REASONS[error.reason].title,
    status: statusOf(error),
    ...outcomeOf(error),
    ...(at.instance !== undefined ? { instance: at.instance } : {}),
    ...(at.requestId !== undefined ? { requestId: at.requestId } : {}),
    ...error.ids,
  };
  if (error.driverErrno) doc.driverErrno = error.driverErrno;
  if (error.stranded) doc.stranded = { domainId: error.stranded.domainId, deviceIds: error.stranded.deviceIds };
  const attempts = (error as { attempts?: readonly Attempt[] }).attempts;
  if (attempts) doc.attempts = attempts;
  return doc;
}

/**
 * The answer for a problem, logged as the kernel would have it: a soft EINVAL
 * is a legitimate probe (debug), other refusals are warnings, 5xx are errors.
 */
/** What a caller may add to the document: the fields at fault (status, errno and the rest come from the catalogue). */
export type ProblemExtra = Pick<ProblemDocument, "errors">;

export function problemAnswer(reply: FastifyReply, error: ErrnoError, extra?: ProblemExtra): Answer {
  const doc = { ...problemOf(error, reply.request), ...extra };
  const status = doc.status;
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
  | { readonly ok: false; readonly field: `headers.${string}`; readonly reason: FixedReason; readonly message: string };

/** The refusal of a malformed header, naming it as the schema refusals name fields. */
export function headerProblem(reply: FastifyReply, refused: Extract<Parsed<unknown>, { ok: false }>): Answer {
  const detail = `${refused.field} ${refused.message}`;
  return problemAnswer(reply, failure(refused.reason, detail), { errors: [{ field: refused.field, message: refused.message }] });
}

export function sendProblem(reply: FastifyReply, error: ErrnoError, extra?: ProblemExtra): FastifyReply {
  return sendAnswer(reply, problemAnswer(reply, error, extra));
}

/**
 * A refusal raised from a hook or plugin (rate limit, load shedding) that the
 * error handler answers as this problem, with these headers (Retry-After).
 */
export class ProblemError extends Error {
  constructor(
    readonly problem: ErrnoError,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(problem.detail);
    this.name = "ProblemError";
  }
}
