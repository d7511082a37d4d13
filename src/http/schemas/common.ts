// Schemas shared by every resource: ids, paging, the outcome of an attempt
// and the problem document.
import { Type, type Static } from "@sinclair/typebox";
import { Id, MAX_ID } from "../../core/declare.js";
import type { Outcome as CoreOutcome } from "../../core/outcome.js";
import { ERRNO_VALUES, type ErrnoName } from "../../core/errno.js";
import { REASONS, type Reason } from "../../core/reasons.js";

export { Id, MAX_ID };
/** An id cursor ("strictly after this id"): 0 is before the first. */
export const IdCursor = Type.Integer({ minimum: 0, maximum: MAX_ID, description: "Return ids strictly greater than this" });
/** Page sizes. */
export const Limit = Type.Integer({ minimum: 1, maximum: 1000, default: 100 });
export const IdParams = Type.Object({ id: Id }, { additionalProperties: false });
export type IdParams = Static<typeof IdParams>;

// Every HTTP string is checked for NUL and lone surrogates (validation.ts);
// the pattern says the same for the topology file, which has its own Ajv.
// Ajv compiles patterns with the u flag, where a lone surrogate is a code
// point in \uD800-\uDFFF and a well-formed pair is not.
const STORABLE = "^[^\\u0000\\uD800-\\uDFFF]*$";
export const Name = Type.String({ minLength: 1, maxLength: 200, pattern: STORABLE });
export const Owner = Type.String({
  minLength: 1, maxLength: 200, pattern: STORABLE,
  description: "Who is asking, in open development mode only; with bearer tokens the token names the caller and this field is refused",
});

export const PageQuery = Type.Object({
  after: Type.Optional(IdCursor),
  limit: Type.Optional(Limit),
}, { additionalProperties: false });
export type PageQuery = Static<typeof PageQuery>;

export function Page<T extends ReturnType<typeof Type.Object>>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    next: Type.Union([Id, Type.Null()], { description: "Cursor for the next page (pass as after), null at the end" }),
  });
}

/**
 * The outcome of an attempt (src/core/outcome.ts), the same in a container
 * search's attempts, a dry run's verdicts, the event log and every problem
 * document (where nothing is null).
 */
export const Outcome = Type.Object({
  errno: Type.Union([Type.String(), Type.Null()], { description: "Errno name the caller acts on, e.g. EINVAL; null: it succeeded" }),
  code: Type.Integer({ description: "Negative Linux value, e.g. -22; 0: it succeeded" }),
  soft: Type.Boolean({ description: "True only for EINVAL meaning incompatible: try another domain" }),
  reason: Type.Union([Type.String(), Type.Null()], { description: "Stable kebab-case machine reason" }),
  detail: Type.Union([Type.String(), Type.Null()]),
});
// The schema answers the core's shape: the same fields, each value fitting.
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
const OUTCOME_IS_THE_CORES: SameKeys<Static<typeof Outcome>, CoreOutcome> = true;
const OUTCOME_FITS: Static<typeof Outcome> = null as unknown as CoreOutcome;
void OUTCOME_IS_THE_CORES; void OUTCOME_FITS;

/** One domain a container search tried. */
export const Attempt = Type.Composite([
  Type.Object({
    domainId: Id,
    allocated: Type.Boolean(),
    freed: Type.Boolean({ description: "Allocated by this search and freed again (the search failed, or VFIO type1 moved the group to an existing domain): the id names nothing now" }),
  }),
  Outcome,
]);

/**
 * A refusal a must-succeed move overrode: detach and release never fail in
 * the kernel (__iommu_group_set_domain_nofail WARNs and moves the group
 * anyway); the answer says what the kernel would have warned about.
 */
export const Warning = Type.Object({
  errno: Type.String({ description: "The errno the refusal would have had" }),
  code: Type.Integer(),
  reason: Type.String(),
  detail: Type.String(),
  deviceId: Type.Optional(Type.Integer({ description: "The device that refused" })),
}, { description: "Present only when the move overrode a refusal, as the kernel does with a WARN" });

/**
 * The errno and reason of a problem, each one of its catalogue (src/core/errno.ts,
 * src/core/reasons.ts): a client can switch on them. A plain string enum,
 * not a union of literals, so fast-json-stringify writes it as a string
 * rather than trying every member.
 */
export const ProblemErrno = Type.Unsafe<ErrnoName>({
  type: "string", enum: Object.keys(ERRNO_VALUES),
  description: "Errno name the caller acts on, e.g. EINVAL (a Linux errno name)",
});
export const ProblemReason = Type.Unsafe<Reason>({
  type: "string", enum: Object.keys(REASONS),
  description: "Stable kebab-case machine reason (the README's errno tables list each with its errno and status)",
});

/**
 * RFC 9457 problem details, extended with the errno contract: the outcome of
 * the attempt that failed (Outcome's fields, none null, errno and reason from
 * their catalogues).
 */
export const Problem = Type.Object({
  type: Type.String({ description: "urn:iommu-arbiter:problem:<reason>" }),
  title: Type.String(),
  status: Type.Integer({ description: "The HTTP status, repeated" }),
  errno: ProblemErrno,
  code: Outcome.properties.code,
  soft: Outcome.properties.soft,
  reason: ProblemReason,
  detail: Type.String(),
  instance: Type.Optional(Type.String()),
  driverErrno: Type.Optional(Type.String({ description: "The raw code the driver (of the host's kernel profile) returned, where the contract answers it as ENODEV" })),
  stranded: Type.Optional(Type.Object({
    domainId: Id,
    deviceIds: Type.Array(Id),
  }, { description: "Devices the failed group attach left on domainId (kernel profiles without the unwind, before Linux 6.5)" })),
  requestId: Type.Optional(Type.String()),
  unitId: Type.Optional(Type.Integer()),
  groupId: Type.Optional(Type.Integer()),
  deviceId: Type.Optional(Type.Integer()),
  domainId: Type.Optional(Type.Integer()),
  containerId: Type.Optional(Type.Integer()),
  faultId: Type.Optional(Type.Integer()),
  mappingId: Type.Optional(Type.Integer()),
  regionId: Type.Optional(Type.Integer()),
  attempts: Type.Optional(Type.Array(Attempt)),
  errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
}, { description: "RFC 9457 problem details (application/problem+json) with the errno contract: errno, code, soft, reason" });
// Every field of a failed outcome, in the problem too.
const PROBLEM_HAS_THE_OUTCOME: SameKeys<Pick<Static<typeof Problem>, keyof CoreOutcome>, CoreOutcome> = true;
void PROBLEM_HAS_THE_OUTCOME;

export const Version = Type.String({
  minLength: 16, maxLength: 16,
  description: "Digest of the rest of this representation; sent as the ETag, compared with If-Match (strong comparison)",
});

/**
 * The error statuses of a state-changing route, besides its own: 409 (the
 * same Idempotency-Key still in flight), 412 (If-Match), 422 (the key reused).
 */
export function writeProblems(...statuses: number[]): Record<number, typeof Problem> {
  return problems(409, 412, 422, ...statuses);
}

/** The error statuses a route can answer, all with the problem document. */
export function problems(...statuses: number[]): Record<number, typeof Problem> {
  const out: Record<number, typeof Problem> = {};
  // 401 and 403 on every route: a missing token, or a role that does not reach.
  for (const s of [400, 401, 403, 500, 503, ...statuses]) out[s] = Problem;
  return out;
}
