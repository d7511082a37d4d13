// The shared budget of event rows per second: pages within it go at once,
// the ones past it wait their turn in order, and past a bounded queue they
// are refused with a Retry-After.
import { describe, expect, it } from "vitest";
import { ReadBudget, ReadsThrottledError } from "../../src/store/read-budget.js";

describe("ReadBudget", () => {
  it("lets pages through at once while the budget lasts, then in order as it refills", async () => {
    let now = 0;
    const budget = new ReadBudget(1000, 10, () => now);
    await budget.take(600);
    await budget.take(400);
    const order: string[] = [];
    const a = budget.take(500).then(() => order.push("a"));
    const b = budget.take(100).then(() => order.push("b"));
    expect(budget.waiting).toBe(2);
    now = 600; // 600 rows' worth refilled: both fit, in the order they came
    await Promise.all([a, b]);
    expect(order).toEqual(["a", "b"]);
    expect(budget.waiting).toBe(0);
  });

  it("a page larger than a second's budget still gets its turn", async () => {
    let now = 0;
    const budget = new ReadBudget(100, 10, () => now);
    await budget.take(1000);
    const next = budget.take(1000);
    now = 1000;
    await expect(next).resolves.toBeUndefined();
  });

  it("refuses past the bounded queue, with a Retry-After from what waits", async () => {
    const now = 0;
    const budget = new ReadBudget(100, 2, () => now);
    await budget.take(100);
    const waiting = [budget.take(100), budget.take(100)];
    const refused = await budget.take(100).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ReadsThrottledError);
    expect((refused as ReadsThrottledError).retryAfterSeconds).toBe(2);
    budget.close();
    await Promise.all(waiting);
  });

  it("0 is no budget", async () => {
    const budget = new ReadBudget(0, 0, () => 0);
    for (let i = 0; i < 5; i++) await budget.take(1_000_000);
    expect(budget.waiting).toBe(0);
  });
});
