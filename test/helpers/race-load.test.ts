// The checks the replica tests rely on catch what they claim to: a lost
// acknowledged attempt, an event no one attempted, an answer recorded with
// another outcome, and two alike automatic domains in one container.
import { describe, expect, it } from "vitest";
import type { DomainRow, Snapshot } from "./invariants.js";
import { acknowledgedMoveViolations, duplicateAutomaticDomains, type Attempted, type Planned } from "./race-load.js";
import type { Answer } from "./server.js";

const planned = (groupId: number, owner: string | null = null): Planned =>
  ({ op: "attach-group", groupId, owner, route: `/v1/groups/${groupId}/attach`, body: { domainId: 9 } });
const answer = (status: number, body: Record<string, unknown> = {}): Answer<Record<string, unknown>> =>
  ({ status, contentType: status < 300 ? "application/json" : "application/problem+json", headers: {}, text: JSON.stringify(body), body });
const attempted = (groupId: number, a: Answer<Record<string, unknown>> | null): Attempted =>
  ({ replica: 0, planned: planned(groupId), answer: a, error: a === null ? "cut off" : null });
const event = (groupId: number, errno: string | null = null, reason: string | null = null) =>
  ({ op: "attach-group", groupId, owner: null, errno, reason });

describe("acknowledgedMoveViolations", () => {
  it("accepts exactly the acknowledged attempts, plus any of those whose outcome is unknown", () => {
    const moves = [attempted(1, answer(200)), attempted(2, answer(409, { errno: "EBUSY", reason: "group-attached" })), attempted(3, null), attempted(4, answer(503))];
    expect(acknowledgedMoveViolations(moves, [event(1), event(2, "EBUSY", "group-attached")])).toEqual([]);
    expect(acknowledgedMoveViolations(moves, [event(1), event(2, "EBUSY", "group-attached"), event(3), event(4, "EINVAL", "incompatible")])).toEqual([]);
  });

  it("reports an acknowledged attempt that is missing, recorded with another outcome, or an event nobody attempted", () => {
    const moves = [attempted(1, answer(200)), attempted(2, answer(409, { errno: "EBUSY", reason: "group-attached" }))];
    expect(acknowledgedMoveViolations(moves, [event(2, "EBUSY", "group-attached")])).toHaveLength(1);
    expect(acknowledgedMoveViolations(moves, [event(1), event(2)]).length).toBeGreaterThan(0);
    expect(acknowledgedMoveViolations(moves, [event(1), event(2, "EBUSY", "group-attached"), event(5)])).toHaveLength(1);
    // One unknown attempt explains one event, not two.
    expect(acknowledgedMoveViolations([attempted(3, null)], [event(3), event(3)])).toHaveLength(1);
  });
});

describe("duplicateAutomaticDomains", () => {
  const auto = (id: number, containerId: number, unitId: number, config: Record<string, unknown> = { enforceCacheCoherency: true }): DomainRow =>
    ({ id, name: null, type: "paging", driver: "intel-vtd", unitId, config, auto: true, search: "kernel", containerId });
  const snapshot = (domains: DomainRow[]) => ({ domains } as unknown as Snapshot);

  it("reports two alike automatic domains of one container, and nothing else", () => {
    expect(duplicateAutomaticDomains(snapshot([auto(1, 1, 1), auto(2, 1, 1)]))).toHaveLength(1);
    expect(duplicateAutomaticDomains(snapshot([auto(1, 1, 1), auto(2, 2, 1), auto(3, 1, 2), auto(4, 1, 1, { enforceCacheCoherency: false })]))).toEqual([]);
    expect(duplicateAutomaticDomains(snapshot([auto(1, 1, 1), { ...auto(2, 1, 1), auto: false, search: "none" }]))).toEqual([]);
  });
});
