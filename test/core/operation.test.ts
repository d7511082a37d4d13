// Every operation is all or nothing by construction (src/core/operation.ts):
// a refusal, an exception half-way, or a presenter that throws leaves the
// model exactly as it was, except what a refusal must keep (the consumed
// injected fault and the attempt's event).
import { describe, expect, it } from "vitest";
import { perform } from "../../src/core/operation.js";
import { outcomeOf } from "../../src/core/outcome.js";
import { claimOwnership } from "../../src/core/group-moves.js";
import { createContainer, createDomain } from "../../src/core/objects.js";
import { fail, ok } from "../../src/core/result.js";
import { ANON, as, build, snapshot, unwrap } from "./fixtures.js";

function setUp() {
  const fx = build();
  const unit = fx.unit("intel-vtd");
  const { group } = fx.groupWith(unit.id);
  fx.commit();
  return { fx, unit, group };
}

describe("perform: all or nothing", () => {
  it("an operation that changes the model and then fails leaves nothing behind", () => {
    const { fx, unit } = setUp();
    const before = snapshot(fx.model);
    const r = perform(fx.model, (m) => {
      unwrap(createContainer(m, { name: "half-made" }));
      unwrap(createDomain(m, { type: "paging", unitId: unit.id }));
      return fail("quota-exceeded", "refused after two changes");
    }).result;
    expect(r.ok).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
    const changes = fx.model.takeChanges();
    expect(changes.rows.domain.size).toBe(0);
    // The creates it recorded on the way are dropped with them: nothing was created.
    expect(changes.events).toEqual([]);
  });

  it("a refused operation keeps the attempts it recorded and drops its topology changes, in order", () => {
    const { fx, unit, group } = setUp();
    const attempt = (op: "claim" | "release") => ({ op, owner: null, groupId: group.id, deviceId: null, domainId: null, containerId: null, ...outcomeOf(null) });
    const r = perform(fx.model, (m) => {
      m.record(attempt("claim"));
      unwrap(createContainer(m, { name: "half-made" }));
      m.record(attempt("release"));
      unwrap(createDomain(m, { type: "paging", unitId: unit.id }));
      return fail("quota-exceeded", "refused after two changes");
    }).result;
    expect(r.ok).toBe(false);
    expect(fx.model.takeChanges().events).toEqual([attempt("claim"), attempt("release")]);
  });

  it("an operation that throws half-way leaves nothing behind, not even its event", () => {
    const { fx, unit } = setUp();
    const before = snapshot(fx.model);
    expect(() => perform(fx.model, (m) => {
      unwrap(createDomain(m, { type: "paging", unitId: unit.id }));
      m.record({ op: "claim", owner: null, groupId: null, deviceId: null, domainId: null, containerId: null, ...outcomeOf(null) });
      throw new Error("bug half-way");
    })).toThrow("bug half-way");
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.hasChanges()).toBe(false);
  });

  it("an operation that consumed an injected fault and then threw leaves the fault unconsumed", () => {
    const { fx, unit, group } = setUp();
    const fault = fx.fault({ unitId: unit.id, errno: "ENOMEM", count: 2 });
    fx.commit();
    const before = snapshot(fx.model);
    expect(() => perform(fx.model, (m) => {
      const r = claimOwnership(m, as("vfio"), group.id);
      expect(r.ok).toBe(false); // the fault was consumed on the way
      throw new Error("bug after the driver call");
    })).toThrow("bug after the driver call");
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.get("fault", fault.id)).toMatchObject({ remaining: 2 });
    expect(fx.model.hasChanges()).toBe(false);
  });

  it.each([
    ["a refused claim (its consumed fault and event undone too)", true],
    ["a successful claim", false],
  ])("a presenter that throws after %s undoes the operation", (_name, withFault) => {
    const { fx, unit, group } = setUp();
    if (withFault) fx.fault({ unitId: unit.id, errno: "ENOMEM", count: 1 });
    fx.commit();
    const before = snapshot(fx.model);
    let outcome: boolean | undefined;
    expect(() => perform(fx.model, (m) => claimOwnership(m, as("vfio"), group.id), (r) => {
      outcome = r.ok;
      throw new Error("presenter bug");
    })).toThrow("presenter bug");
    expect(outcome).toBe(!withFault);
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.hasChanges()).toBe(false);
  });

  it("a refused attach keeps its event and the fault it consumed, and nothing else", () => {
    const { fx, unit, group } = setUp();
    const fault = fx.fault({ unitId: unit.id, errno: "ENOMEM", count: 2 });
    fx.commit();
    const before = snapshot(fx.model, { withFaults: false });
    const r = perform(fx.model, (m) => claimOwnership(m, as("vfio"), group.id)).result;
    expect(r.ok).toBe(false);
    expect(snapshot(fx.model, { withFaults: false })).toBe(before);
    const changes = fx.model.takeChanges();
    expect(changes.rows.fault.get(fault.id)?.after).toMatchObject({ remaining: 1 });
    expect(changes.rows.group.size + changes.rows.domain.size).toBe(0);
    expect(changes.events).toEqual([expect.objectContaining({ op: "claim", errno: "ENOMEM" })]);
  });

  it("a successful operation's changes and its presented value are both kept", () => {
    const { fx } = setUp();
    const done = perform(fx.model, (m) => createContainer(m, { name: "kept" }, ANON), (r) => (r.ok ? r.value.name : "none"));
    expect(done.presented).toBe("kept");
    expect(done.result).toEqual(ok(expect.objectContaining({ name: "kept" })));
    const changes = fx.model.takeChanges();
    expect(changes.rows.container.size).toBe(1);
    const [container] = changes.rows.container.values();
    expect(changes.events).toEqual([expect.objectContaining({ op: "create", kind: "container", objectId: container!.after!.id, errno: null })]);
  });
});
