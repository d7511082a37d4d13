// The SQL a batch turns into: only what changed, in an order the
// constraints accept, and values quoted exactly.
import { describe, expect, it } from "vitest";
import { ANONYMOUS } from "../../src/core/caller.js";
import { Topology } from "../../src/core/model.js";
import { createDomain, createGroup, createUnit, deleteGroup } from "../../src/core/objects.js";
import { attachGroup, detachGroup } from "../../src/core/ops.js";
import type { Result } from "../../src/core/result.js";
import { literal, statementsFor } from "../../src/store/persist.js";

function unwrap<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(r.error.detail);
  return r.value;
}

function world() {
  const model = new Topology();
  const unit = unwrap(createUnit(model, { name: "u0", driver: "mock" }));
  const g1 = unwrap(createGroup(model, { name: "g1", unitId: unit.id }));
  const g2 = unwrap(createGroup(model, { name: "g2", unitId: unit.id }));
  const domain = unwrap(createDomain(model, { type: "paging", unitId: unit.id }));
  model.drain(); // as if stored
  return { model, unit, g1, g2, domain };
}

describe("statementsFor", () => {
  it("moving groups updates only their domainId, in one statement, plus one insert of events", () => {
    const { model, g1, g2, domain } = world();
    unwrap(attachGroup(model, ANONYMOUS, g1.id, domain.id));
    const first = model.drain();
    unwrap(attachGroup(model, ANONYMOUS, g2.id, domain.id));
    const second = model.drain();
    const { statements, hasDeletes } = statementsFor([first, second], []);
    expect(hasDeletes).toBe(false);
    expect(statements).toEqual([
      `UPDATE "Group" SET "domainId" = CASE "id" WHEN ${g1.id} THEN ${domain.id} WHEN ${g2.id} THEN ${domain.id} END WHERE "id" IN (${g1.id}, ${g2.id})`,
    ]);
  });

  it("a change undone within the batch writes nothing", () => {
    const { model, g1, domain } = world();
    unwrap(attachGroup(model, ANONYMOUS, g1.id, domain.id));
    const there = model.drain();
    unwrap(detachGroup(model, ANONYMOUS, g1.id, domain.id));
    const back = model.drain();
    expect(statementsFor([there, back], [])).toEqual({ statements: [], hasDeletes: false });
    // Created and deleted in the same batch: never reaches the database.
    const created = unwrap(createGroup(model, { name: "tmp", unitId: 1 }));
    const a = model.drain();
    unwrap(deleteGroup(model, created.id));
    const b = model.drain();
    expect(statementsFor([a, b], [])).toEqual({ statements: [], hasDeletes: false });
  });

  it("a name freed and taken again in one batch: the delete comes before the insert", () => {
    const { model, unit, g2 } = world();
    unwrap(deleteGroup(model, g2.id));
    const gone = model.drain();
    unwrap(createGroup(model, { name: "g2", unitId: unit.id }));
    const again = model.drain();
    const { statements, hasDeletes } = statementsFor([gone, again], []);
    expect(hasDeletes).toBe(true);
    const del = statements.findIndex((s) => s.startsWith(`DELETE FROM "Group"`));
    const ins = statements.findIndex((s) => s.startsWith(`INSERT INTO "Group"`));
    expect(del).toBeGreaterThanOrEqual(0);
    expect(ins).toBeGreaterThan(del);
    // Parents before children: the new default domain is inserted before the group.
    expect(statements.findIndex((s) => s.startsWith(`INSERT INTO "Domain"`))).toBeLessThan(ins);
  });

  it.each([
    [null, "NULL"],
    [42, "42"],
    ["plain", "'plain'"],
    ["it's", "'it''s'"],
    ["'); DROP TABLE \"Group\"; --", `'''); DROP TABLE "Group"; --'`],
  ] as const)("literal(%j) = %s", (value, sql) => {
    expect(literal(value)).toBe(sql);
  });

  it.each([[Number.NaN], [Number.POSITIVE_INFINITY], ["nul\0byte"]] as const)("literal refuses %j", (value) => {
    expect(() => literal(value)).toThrow();
  });
});
