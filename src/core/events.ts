// Every attach / replace / detach / claim attempt on an existing object is
// recorded, whatever its outcome: the event log is how a user sees what the
// arbiter decided. An attempt on an object that does not exist is not a
// decision about anything, and recording it would let any client grow the
// log without bound by naming ids at random; it is answered, not logged.
import type { Caller } from "./caller.js";
import type { EventOp, Kind, TopologyOp } from "./entities.js";
import type { Model } from "./model.js";
import { outcomeOf, warnedOutcome } from "./outcome.js";
import type { ErrnoError, Result } from "./result.js";

export interface EventSubject {
  readonly groupId?: number | null;
  readonly deviceId?: number | null;
  readonly domainId?: number | null;
  readonly containerId?: number | null;
}

/**
 * Whether the objects the attempt acts on exist: the group or device it
 * would move and the container it would move it through. The target domain
 * is not one of them: refusing to attach an existing group to a missing
 * domain is still a decision about that group.
 */
function subjectExists(model: Model, subject: EventSubject): boolean {
  if (subject.deviceId != null && !model.get("device", subject.deviceId)) return false;
  if (subject.groupId != null && !model.get("group", subject.groupId)) return false;
  if (subject.containerId != null && !model.get("container", subject.containerId)) return false;
  return true;
}

/**
 * A successful topology change: an object created, changed or deleted by a
 * client (or a topology file). Refused ones are not recorded (they changed
 * nothing and name nothing that exists); perform() drops these when the
 * operation that recorded them fails later.
 */
export function recordTopology(model: Model, op: TopologyOp, kind: Kind, objectId: number, owner: string | null = null): void {
  model.record({
    op, owner, kind, objectId, groupId: null, deviceId: null, domainId: null, containerId: null, ...outcomeOf(null),
  });
}

/**
 * `warning`: a refusal a successful must-succeed move overrode; the event
 * has no errno but the refusal's reason and detail.
 */
export function recordAttempt<T>(
  model: Model, op: EventOp, caller: Caller, subject: EventSubject,
  result: Result<T>, resolvedDomainId?: number, warning?: ErrnoError | null,
): Result<T> {
  const failed = result.ok ? null : result.error;
  // Only an ENOENT can mean a missing subject; other outcomes skip the lookups.
  if (failed?.errno === "ENOENT" && !subjectExists(model, subject)) return result;
  model.record({
    op,
    owner: caller.owner,
    groupId: subject.groupId ?? null,
    deviceId: subject.deviceId ?? null,
    domainId: resolvedDomainId ?? subject.domainId ?? null,
    containerId: subject.containerId ?? null,
    ...(result.ok && warning ? warnedOutcome(warning) : outcomeOf(failed)),
  });
  return result;
}
