// The outcome of an attempt, in one shape wherever it is shown: each domain
// a container search tried, each verdict of a dry run, each event of the log
// and (never null there) each problem+json answer.
import { errnoCode, type ErrnoName } from "./errno.js";
import { isSoftAnswer, type Reason } from "./reasons.js";
import { isSoft, type ErrnoError, type Stranded } from "./result.js";

export interface Outcome {
  /** The errno the caller acts on; null: the attempt succeeded. */
  readonly errno: ErrnoName | null;
  /** Its negative Linux value (-22 for EINVAL); 0: it succeeded. */
  readonly code: number;
  /** An EINVAL meaning "incompatible: another domain may work" (src/core/reasons.ts). */
  readonly soft: boolean;
  readonly reason: Reason | null;
  readonly detail: string | null;
}

/** The outcome of an attempt that failed: the same fields, none null. */
export type Failed = { readonly [K in keyof Outcome]: NonNullable<Outcome[K]> };

const SUCCEEDED: Outcome = Object.freeze({ errno: null, code: 0, soft: false, reason: null, detail: null });

/** The outcome of an attempt that failed with `error`, or succeeded (null). */
export function outcomeOf(error: ErrnoError): Failed;
export function outcomeOf(error: ErrnoError | null): Outcome;
export function outcomeOf(error: ErrnoError | null): Outcome {
  if (error === null) return SUCCEEDED;
  const detail = error.stranded ? `${error.detail}; ${strandedNote(error.stranded)}` : error.detail;
  return { errno: error.errno, code: errnoCode(error.errno), soft: isSoft(error), reason: error.reason, detail };
}

/**
 * What a partial group attach leaves (a kernel without the unwind): said in
 * the detail, so that the event log, a search's attempts and a dry run's
 * verdicts, which keep no other field for it, say it too.
 */
function strandedNote(stranded: Stranded): string {
  const devices = stranded.deviceIds.length === 1 ? `device ${stranded.deviceIds[0]}` : `devices ${stranded.deviceIds.join(", ")}`;
  return `no unwind before Linux 6.5: the attach leaves ${devices} on domain ${stranded.domainId}`;
}

/**
 * The outcome of an attempt that succeeded over a refusal (a must-succeed
 * move, see attach.ts returnToCoreDomain): no errno, but the refusal's
 * reason and detail, as the kernel's WARN says what went wrong.
 */
export function warnedOutcome(warning: ErrnoError): Outcome {
  return { ...SUCCEEDED, reason: warning.reason, detail: warning.detail };
}

/**
 * The outcome of an attempt as the event log stored it (errno, code, reason
 * and detail are columns; soft is judged by today's catalogue, as for a live
 * error). The strings are the ones this service wrote.
 */
export function storedOutcome(errno: string | null, code: number, reason: string | null, detail: string | null): Outcome {
  return { errno: errno as ErrnoName | null, code, soft: isSoftAnswer(errno, reason), reason: reason as Reason | null, detail };
}
