// One outcome shape (src/core/outcome.ts) for attempts, verdicts, events and
// problem documents: what a success and each kind of failure look like.
import { describe, expect, it } from "vitest";
import { outcomeOf, storedOutcome } from "../../src/core/outcome.js";
import { driverFailure, failure, type ErrnoError } from "../../src/core/result.js";

function errorOf(r: { ok: boolean; error?: ErrnoError }): ErrnoError {
  if (r.ok || !r.error) throw new Error("expected a failure");
  return r.error;
}

describe("outcomeOf", () => {
  const ROWS: [name: string, error: ErrnoError | null, outcome: unknown][] = [
    ["success", null, { errno: null, code: 0, soft: false, reason: null, detail: null }],
    ["soft incompatibility", failure("snoop-control", "d"), { errno: "EINVAL", code: -22, soft: true, reason: "snoop-control", detail: "d" }],
    ["hard EINVAL", failure("not-in-container", "d"), { errno: "EINVAL", code: -22, soft: false, reason: "not-in-container", detail: "d" }],
    ["EBUSY", failure("group-attached", "d", { groupId: 1 }), { errno: "EBUSY", code: -16, soft: false, reason: "group-attached", detail: "d" }],
    ["driver EINVAL", errorOf(driverFailure("EINVAL", "injected-fault", "d")), { errno: "EINVAL", code: -22, soft: true, reason: "injected-fault", detail: "d" }],
    ["driver code outside the contract", errorOf(driverFailure("ETIMEDOUT", "injected-fault", "d")), { errno: "ENODEV", code: -19, soft: false, reason: "injected-fault", detail: "d" }],
  ];
  it.each(ROWS)("%s", (_name, error, outcome) => {
    // Exactly these five fields: ids, driverErrno and attempts are not the outcome's.
    expect(outcomeOf(error)).toStrictEqual(outcome);
  });
});

describe("storedOutcome (an event row)", () => {
  const ROWS: [errno: string | null, code: number, reason: string | null, soft: boolean][] = [
    [null, 0, null, false],
    ["EINVAL", -22, "address-width", true],
    ["EINVAL", -22, "injected-fault", true],
    ["EBUSY", -16, "injected-fault", false],
    ["EINVAL", -22, "invalid-argument", false],
    // A reason the catalogue no longer has (an old row) is not soft, and does not throw.
    ["EINVAL", -22, "retired-reason", false],
  ];
  it.each(ROWS)("%s %s %s: soft %s", (errno, code, reason, soft) => {
    expect(storedOutcome(errno, code, reason, "d")).toStrictEqual({ errno, code, soft, reason, detail: "d" });
  });
});
