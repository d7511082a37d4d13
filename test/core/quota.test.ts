// The per-client object count behind the quota stays exact through creates,
// deletes and rollbacks, and administrators' objects are nobody's.
import { describe, expect, it } from "vitest";
import { createContainer, createDomain, createUnit, deleteDomain } from "../../src/core/objects.js";
import { Model } from "../../src/core/model.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { errorOf, unwrap } from "./fixtures.js";

const A = { owner: "vmm-a" };
const ADMIN = { owner: "ops", admin: true };

describe("objects per client", () => {
  it("counts a client's containers and domains; an administrator's are unowned and uncounted", () => {
    const m = new Model(DRIVERS);
    const unit = unwrap(createUnit(m, { name: "u", driver: "mock" }));
    const ioas = unwrap(createContainer(m, { name: "c" }, A));
    const d = unwrap(createDomain(m, { type: "paging", unitId: unit.id, containerId: ioas.id }, A));
    expect([ioas.owner, d.owner]).toEqual(["vmm-a", "vmm-a"]);
    expect(unwrap(createDomain(m, { type: "paging", unitId: unit.id }, ADMIN)).owner).toBeNull();
    expect(m.ownedObjectCount("vmm-a")).toBe(2);
    expect(m.ownedObjectCount("ops")).toBe(0);
    unwrap(deleteDomain(m, d.id, A));
    expect(m.ownedObjectCount("vmm-a")).toBe(1);
  });

  it("a rolled-back create leaves the count as it was", () => {
    const m = new Model(DRIVERS);
    const unit = unwrap(createUnit(m, { name: "u", driver: "mock" }));
    const save = m.savepoint();
    unwrap(createDomain(m, { type: "paging", unitId: unit.id }, A));
    m.rollbackTo(save);
    expect(m.ownedObjectCount("vmm-a")).toBe(0);
  });

  it("the limit refuses with EDQUOT quota-exceeded and creates nothing", () => {
    const m = new Model(DRIVERS);
    const unit = unwrap(createUnit(m, { name: "u", driver: "mock" }));
    unwrap(createDomain(m, { type: "paging", unitId: unit.id }, A, { objectsPerClient: 1 }));
    const before = m.count("domain");
    expect(errorOf(createDomain(m, { type: "paging", unitId: unit.id }, A, { objectsPerClient: 1 }))).toMatchObject({ errno: "EDQUOT", reason: "quota-exceeded" });
    expect(errorOf(createContainer(m, { name: "c" }, A, { objectsPerClient: 1 }))).toMatchObject({ errno: "EDQUOT" });
    expect(m.count("domain")).toBe(before);
    expect(unwrap(createDomain(m, { type: "paging", unitId: unit.id }, ADMIN, { objectsPerClient: 1 })).owner).toBeNull();
  });
});
