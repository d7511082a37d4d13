// The statements one operation's changes turn into: only what changed, in an
// order the constraints accept, with values bound as parameters, and values
// the database could not store faithfully refused before any write.
import { describe, expect, it } from "vitest";
import { ANONYMOUS } from "../../src/core/caller.js";
import { Model } from "../../src/core/model.js";
import { createContainer, createDevice, createDomain, createGroup, createUnit, deleteDevice, deleteGroup } from "../../src/core/objects.js";
import { attachGroup } from "../../src/core/group-moves.js";
import type { Result } from "../../src/core/result.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { encodeChanges, touchedRows, UnstorableValueError } from "../../src/store/encode.js";

function unwrap<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(r.error.detail);
  return r.value;
}

function world() {
  const model = new Model(DRIVERS);
  const unit = unwrap(createUnit(model, { name: "u0", driver: "mock" }));
  const g1 = unwrap(createGroup(model, { name: "g1", unitId: unit.id }));
  unwrap(createDevice(model, { name: "d1", groupId: g1.id }));
  const domain = unwrap(createDomain(model, { type: "paging", unitId: unit.id }));
  model.takeChanges(); // as if stored
  return { model, unit, g1, domain };
}

const at = new Date("2026-11-26T00:00:00Z");

describe("encodeChanges", () => {
  it("a group move updates only its domainId, with bound parameters, then inserts its event", () => {
    const { model, g1, domain } = world();
    unwrap(attachGroup(model, ANONYMOUS, g1.id, domain.id));
    const changes = model.takeChanges();
    const steps = encodeChanges(changes, changes.events.map((e) => ({ ...e, seq: 1, at })));
    expect(steps.map((s) => s.sql)).toEqual([
      `UPDATE "Group" SET "domainId" = ? WHERE "id" = ?`,
      expect.stringMatching(/^INSERT INTO "Event" \("seq", "at", .*\) VALUES \(\?(, \?)+\)$/),
    ]);
    expect(steps[0]!.params).toEqual([domain.id, g1.id]);
    expect(steps[1]!.params.slice(0, 3)).toEqual([1, "2026-11-26T00:00:00.000+00:00", "attach-group"]);
    expect(touchedRows(changes)).toEqual(new Set([`group:${g1.id}`]));
  });

  it("deletes come before inserts (children first), so a name freed and taken again does not collide", () => {
    const { model, unit, g1 } = world();
    unwrap(deleteDevice(model, model.devicesOf(g1.id)[0]!.id));
    unwrap(deleteGroup(model, g1.id));
    unwrap(createGroup(model, { name: "g1", unitId: unit.id }));
    const steps = encodeChanges(model.takeChanges(), []);
    const kinds = steps.map((s) => s.sql.split(" ").slice(0, 3).join(" "));
    const firstInsert = kinds.findIndex((k) => k.startsWith("INSERT"));
    const lastDelete = kinds.map((k) => k.startsWith("DELETE")).lastIndexOf(true);
    expect(lastDelete).toBeGreaterThanOrEqual(0);
    expect(lastDelete).toBeLessThan(firstInsert);
    expect(kinds.filter((k) => k.startsWith("DELETE")).slice(0, 2)).toEqual([`DELETE FROM "Device"`, `DELETE FROM "Group"`]);
  });

  it("a change undone within the operation writes nothing", () => {
    const { model, g1, domain } = world();
    const original = g1.domainId;
    unwrap(attachGroup(model, ANONYMOUS, g1.id, domain.id));
    model.put("group", { ...model.get("group", g1.id)!, domainId: original });
    const changes = model.takeChanges();
    expect(encodeChanges({ ...changes, events: [] }, [])).toEqual([]);
  });

  it.each([
    ["a lone high surrogate", "bad\ud800", /Container\.name cannot be stored: text with a lone UTF-16 surrogate/],
    ["a lone low surrogate", "\udc00bad", /Container\.name cannot be stored: text with a lone UTF-16 surrogate/],
    ["a NUL", "nul\u0000", /Container\.name cannot be stored: text with a NUL character/],
  ])("refuses %s, naming the column", (_what, name, message) => {
    const model = new Model(DRIVERS);
    unwrap(createContainer(model, { name }));
    expect(() => encodeChanges(model.takeChanges(), [])).toThrow(UnstorableValueError);
    unwrap(createContainer(model, { name: `${name}2` }));
    expect(() => encodeChanges(model.takeChanges(), [])).toThrow(message);
  });

  it("accepts well-formed text, astral characters included", () => {
    const model = new Model(DRIVERS);
    unwrap(createContainer(model, { name: "ok 😀 ünïcødé 'quoted'" }));
    const steps = encodeChanges(model.takeChanges(), []);
    expect(steps[0]!.params).toContain("ok 😀 ünïcødé 'quoted'");
  });
});

describe("Model.restore", () => {
  it("puts back exactly the state a taken change set started from", () => {
    const { model, unit, g1, domain } = world();
    const before = [...model.all("group")];
    unwrap(attachGroup(model, ANONYMOUS, g1.id, domain.id));
    unwrap(createGroup(model, { name: "g2", unitId: unit.id }));
    model.restore(model.takeChanges());
    expect([...model.all("group")]).toEqual(before);
    expect(model.idByName("group", "g2")).toBeUndefined();
    expect([...model.groupsAttachedTo(domain.id)]).toEqual([]);
    expect(model.hasChanges()).toBe(false);
  });
});
