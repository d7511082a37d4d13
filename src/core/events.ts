// Every attach / replace / detach / claim attempt is recorded, whatever its
// outcome: the event log is how a user sees what the arbiter decided.
import type { Caller } from "./caller.js";
import type { EventOp } from "./entities.js";
import { errnoCode } from "./errno.js";
import type { Topology } from "./model.js";
import type { Result } from "./result.js";

export interface EventSubject {
  readonly groupId?: number | null;
  readonly deviceId?: number | null;
  readonly domainId?: number | null;
  readonly containerId?: number | null;
}

export function recordAttempt<T>(
  model: Topology, op: EventOp, caller: Caller, subject: EventSubject,
  result: Result<T>, resolvedDomainId?: number,
): Result<T> {
  const failed = result.ok ? null : result.error;
  model.record({
    op,
    owner: caller.owner,
    groupId: subject.groupId ?? null,
    deviceId: subject.deviceId ?? null,
    domainId: resolvedDomainId ?? subject.domainId ?? null,
    containerId: subject.containerId ?? null,
    errno: failed ? failed.errno : null,
    code: failed ? errnoCode(failed.errno) : 0,
    reason: failed ? failed.reason : null,
    detail: failed ? failed.detail : null,
  });
  return result;
}
