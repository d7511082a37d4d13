// The model's secondary indexes are declared (model.ts) and kept by generic
// code: after any sequence of operations, refusals and rollbacks, every
// question they answer gets the answer a scan of the rows gives.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Caller } from "../../src/core/caller.js";
import { containerAttach, containerDetach } from "../../src/core/container-attach.js";
import { KINDS, type Entities, type Kind } from "../../src/core/entities.js";
import { attachGroup, claimOwnership, detachGroup, releaseOwnership, replaceDomain } from "../../src/core/group-moves.js";
import { Model } from "../../src/core/model.js";
import { DRIVERS } from "../../src/drivers/index.js";
import {
  createContainer, createDevice, createDomain, createGroup, createUnit, deleteContainer, deleteDevice, deleteDomain,
  deleteFault, deleteGroup, deleteUnit, injectFault, updateDevice,
} from "../../src/core/objects.js";
import { perform } from "../../src/core/operation.js";
import type { Result } from "../../src/core/result.js";

const OWNERS = [null, "a", "b"] as const;
const caller = (i: number): Caller => ({ owner: OWNERS[i % OWNERS.length]! });
const sorted = (ids: Iterable<number>) => [...ids].sort((a, b) => a - b);

/** The id of the n-th row of a kind (modulo how many there are), or one that does not exist. */
function pick(m: Model, kind: Kind, n: number): number {
  const ids = [...m.all(kind)].map((r) => r.id);
  return ids.length === 0 ? 999 : ids[n % ids.length]!;
}

function pickWhere<K extends Kind>(m: Model, kind: K, n: number, where: (row: Entities[K]) => boolean): number {
  const ids = [...m.all(kind)].filter(where).map((r) => r.id);
  return ids.length === 0 ? 999 : ids[n % ids.length]!;
}

type Step = { op: string; a: number; b: number; c: number };
let seq = 0;

function run(m: Model, { op, a, b, c }: Step): boolean {
  const name = `${op}-${++seq}`;
  return perform(m, (model): Result<unknown> => {
    switch (op) {
      case "unit": return createUnit(model, { name, driver: (["intel-vtd", "arm-smmu-v3", "mock"] as const)[a % 3]! });
      case "group": return createGroup(model, { name, unitId: pick(model, "unit", a) });
      case "device": return createDevice(model, { name, groupId: pick(model, "group", a) });
      case "domain": return createDomain(model, {
        type: (["paging", "identity", "blocked"] as const)[a % 3]!, driver: (["intel-vtd", "arm-smmu-v3", "mock"] as const)[b % 3]!,
        ...(c % 3 === 1 ? { unitId: pick(model, "unit", b) } : {}), ...(c % 3 === 2 ? { containerId: pick(model, "container", b) } : {}),
        ...(c % 2 === 0 ? { name } : {}),
      }, caller(c));
      case "container": return createContainer(model, { name }, caller(a));
      case "fault": return injectFault(model, a % 2 === 0 ? { unitId: pick(model, "unit", b), errno: "EIO", count: 1 } : { deviceId: pick(model, "device", b), errno: "ENOMEM", count: 1 });
      case "attach": return attachGroup(model, caller(c), pick(model, "group", a), pick(model, "domain", b));
      case "replace": return replaceDomain(model, caller(c), pick(model, "group", a), pick(model, "domain", b));
      case "detach": {
        const g = model.get("group", pick(model, "group", a));
        return detachGroup(model, caller(c), g?.id ?? 999, g?.domainId ?? 999);
      }
      case "claim": return claimOwnership(model, caller(c), pick(model, "group", a));
      case "release": {
        const owned = [...model.all("group")].filter((g) => g.owner !== null);
        const g = owned[a % Math.max(1, owned.length)];
        return releaseOwnership(model, { owner: c % 5 === 0 ? "someone else" : g?.owner ?? null }, g?.id ?? 999);
      }
      case "containerAttach": return containerAttach(model, caller(c), pick(model, "container", b), pick(model, "group", a));
      case "containerDetach": {
        const through = [...model.all("group")].filter((g) => model.get("domain", g.domainId)?.containerId != null);
        const g = through[a % Math.max(1, through.length)];
        const containerId = g === undefined ? 999 : model.get("domain", g.domainId)!.containerId!;
        return containerDetach(model, { owner: model.get("container", containerId)?.owner ?? null }, containerId, g?.id ?? 999);
      }
      case "faulty": return updateDevice(model, pick(model, "device", a), { faulty: b % 2 === 0 });
      // Mostly rows that look deletable (nothing on them), sometimes any (refused).
      case "deleteUnit": return deleteUnit(model, c % 4 === 0 ? pick(model, "unit", a)
        : pickWhere(model, "unit", a, (u) => model.groupCountOnUnit(u.id) + model.domainCountBoundTo(u.id) === 0));
      case "deleteGroup": return deleteGroup(model, c % 4 === 0 ? pick(model, "group", a)
        : pickWhere(model, "group", a, (g) => model.devicesOf(g.id).length === 0));
      case "deleteDevice": return deleteDevice(model, pick(model, "device", a));
      case "deleteDomain": return deleteDomain(model, pick(model, "domain", a), caller(c));
      case "deleteContainer": return deleteContainer(model, pick(model, "container", a), caller(c));
      case "deleteFault": return deleteFault(model, pick(model, "fault", a));
      default: throw new Error(op);
    }
  }).result.ok;
}

const OPS = [
  "unit", "group", "group", "device", "device", "domain", "domain", "container", "fault", "attach", "attach", "replace",
  "detach", "claim", "release", "containerAttach", "containerAttach", "containerDetach", "faulty", "deleteUnit",
  "deleteGroup", "deleteDevice", "deleteDomain", "deleteContainer", "deleteFault",
];
const step = fc.record({ op: fc.constantFrom(...OPS), a: fc.nat(50), b: fc.nat(50), c: fc.nat(50) });
/** Steps, some of them inside a savepoint that is then rolled back. */
const script = fc.array(fc.oneof(
  { arbitrary: step.map((s) => [s]), weight: 4 },
  { arbitrary: fc.array(step, { maxLength: 6 }).map((steps) => ({ rolledBack: steps })), weight: 1 },
), { maxLength: 30 });

/** A small machine to start from: three units of different drivers, groups with devices, domains, containers. */
const WORLD: Step[] = [
  ...[0, 1, 2].map((a) => ({ op: "unit", a, b: 0, c: 0 })),
  ...[0, 1, 2, 3, 4, 5].flatMap((a) => [{ op: "group", a, b: 0, c: 0 }, { op: "device", a, b: 0, c: 0 }]),
  ...[0, 1, 2].map((a) => ({ op: "container", a, b: 0, c: 0 })),
  ...[0, 1, 2, 3, 4, 5].map((b) => ({ op: "domain", a: 0, b, c: b })),
  { op: "fault", a: 1, b: 0, c: 0 },
  // Nothing on them yet: ones a delete can take away.
  { op: "unit", a: 2, b: 0, c: 0 },
  { op: "group", a: 0, b: 0, c: 0 },
];

/** Every question an index answers, answered by scanning the rows instead. */
function expectIndexesExact(m: Model): void {
  const units = [...m.all("unit")];
  const groups = [...m.all("group")];
  const domains = [...m.all("domain")];
  const devices = [...m.all("device")];
  const containers = [...m.all("container")];
  const faults = [...m.all("fault")];
  const ids = (rows: readonly { id: number }[]) => rows.map((r) => r.id);
  const typeOf = (domainId: number) => domains.find((d) => d.id === domainId)?.type;

  for (const kind of KINDS) expect(m.count(kind)).toBe([...m.all(kind)].length);
  for (const u of units) {
    const on = groups.filter((g) => g.unitId === u.id);
    expect(sorted(m.groupsOnUnit(u.id))).toEqual(ids(on));
    expect(m.groupCountOnUnit(u.id)).toBe(on.length);
    const bound = domains.filter((d) => d.unitId === u.id);
    expect(sorted(m.domainsBoundTo(u.id))).toEqual(ids(bound));
    expect(m.domainCountBoundTo(u.id)).toBe(bound.length);
    expect(m.pagingDomainsBoundTo(u.id)).toBe(bound.filter((d) => d.type === "paging").length);
    expect(m.usage.nestParentsBoundTo(u.id)).toBe(bound.filter((d) => d.type === "paging" && d.config.nestParent).length);
    const devicesOf = (groupId: number) => devices.filter((d) => d.groupId === groupId).length;
    const populated = on.filter((g) => devicesOf(g.id) > 0);
    expect(m.usage.defaultDomainsOn(u.id)).toBe(populated.length);
    const holdsId = (type: string | undefined) => type === "paging" || type === "dma";
    for (const d of domains) {
      const n = populated.filter((g) => g.domainId === d.id && holdsId(typeOf(d.id))).reduce((sum, g) => sum + devicesOf(g.id), 0);
      expect(m.devicesAttachedOn(u.id, d.id)).toBe(n);
    }
    expect(m.domainsAttachedOn(u.id)).toBe(new Set(populated.filter((g) => holdsId(typeOf(g.domainId))).map((g) => g.domainId)).size);
    expect(ids(m.faultsOn({ unitId: u.id }))).toEqual(ids(faults.filter((f) => f.unitId === u.id)));
  }
  for (const driver of Object.keys(DRIVERS)) {
    expect(m.usage.pagingDomainsOf(driver)).toBe(domains.filter((d) => d.type === "paging" && d.driver === driver).length);
    expect(ids(m.usage.unitsOf(driver))).toEqual(ids(units.filter((u) => u.driver === driver)));
  }
  for (const d of domains) {
    const attached = groups.filter((g) => g.domainId === d.id);
    expect(sorted(m.groupsAttachedTo(d.id))).toEqual(ids(attached));
    expect(m.attachedGroupCount(d.id)).toBe(attached.length);
    const core = groups.filter((g) => g.defaultDomainId === d.id || g.blockingDomainId === d.id);
    expect(sorted(m.groupsOwningCoreDomain(d.id))).toEqual(ids(core));
    expect(m.isCoreDomainOfAGroup(d.id)).toBe(core.length > 0);
  }
  for (const g of groups) {
    expect(ids(m.devicesOf(g.id))).toEqual(ids(devices.filter((d) => d.groupId === g.id)));
    expect(m.deviceCountOf(g.id)).toBe(devices.filter((d) => d.groupId === g.id).length);
  }
  for (const c of containers) expect(ids(m.domainsOf(c.id))).toEqual(ids(domains.filter((d) => d.containerId === c.id)));
  for (const d of devices) expect(ids(m.faultsOn({ deviceId: d.id }))).toEqual(ids(faults.filter((f) => f.deviceId === d.id)));
  for (const owner of ["a", "b", "nobody"]) {
    expect(m.ownedObjectCount(owner)).toBe([...containers, ...domains].filter((r) => r.owner === owner).length);
  }
  for (const [kind, rows] of [["unit", units], ["group", groups], ["device", devices], ["container", containers]] as const) {
    for (const r of rows) expect(m.idByName(kind, r.name)).toBe(r.id);
  }
}

describe("declared indexes", () => {
  it("answer what a scan answers after each kind of change (a tour where every operation succeeds)", () => {
    const m = new Model(DRIVERS);
    const a: Caller = { owner: "a" };
    const ok = <T>(r: Result<T>): T => {
      if (!r.ok) throw new Error(`${r.error.reason}: ${r.error.detail}`);
      expectIndexesExact(m);
      return r.value;
    };
    const intel = ok(createUnit(m, { name: "intel", driver: "intel-vtd" }));
    const spare = ok(createUnit(m, { name: "spare", driver: "mock" }));
    const [g1, g2] = ["g1", "g2"].map((name) => ok(createGroup(m, { name, unitId: intel.id })));
    const [d1, d2] = [g1!, g2!].map((g, i) => ok(createDevice(m, { name: `d${i}`, groupId: g.id })));
    const ct = ok(createContainer(m, { name: "ioas" }, a));
    const [p1, p2] = ["p1", "p2"].map((name) => ok(createDomain(m, { type: "paging", unitId: intel.id, name }, a)));
    ok(attachGroup(m, a, g1!.id, p1!.id));
    ok(replaceDomain(m, a, g1!.id, p2!.id));
    ok(detachGroup(m, a, g1!.id, p2!.id));
    ok(claimOwnership(m, a, g2!.id));
    ok(releaseOwnership(m, a, g2!.id));
    ok(containerAttach(m, a, ct.id, g2!.id));
    ok(containerDetach(m, a, ct.id, g2!.id));
    const fault = ok(injectFault(m, { deviceId: d1!.id, errno: "EIO", count: 1 }));
    ok(deleteFault(m, fault.id));
    ok(updateDevice(m, d1!.id, { faulty: true }));
    ok(deleteDevice(m, d2!.id));
    ok(deleteGroup(m, g2!.id));
    ok(deleteDomain(m, p1!.id, a));
    ok(deleteContainer(m, ct.id, a));
    ok(deleteUnit(m, spare.id));
    expect([...m.all("group")].map((g) => g.name)).toEqual(["g1"]);
  });

  it("answer what a scan of the rows answers, after any operations, refusals and rollbacks", () => {
    const done = new Set<string>();
    fc.assert(fc.property(script, (parts) => {
      const m = new Model(DRIVERS);
      for (const s of WORLD) run(m, s);
      const names = new Set<string>();
      for (const part of parts) {
        if (Array.isArray(part)) {
          for (const s of part) if (run(m, s)) done.add(s.op);
        } else {
          const sp = m.savepoint();
          for (const s of part.rolledBack) if (run(m, s)) done.add(s.op);
          m.rollbackTo(sp);
        }
        for (const kind of ["unit", "group", "device", "container"] as const) for (const r of m.all(kind)) names.add(r.name);
        expectIndexesExact(m);
      }
      // A name whose row is gone (deleted or rolled back) is free again.
      for (const name of names) {
        for (const kind of ["unit", "group", "device", "container"] as const) {
          const id = m.idByName(kind, name);
          if (id !== undefined) expect(m.get(kind, id)?.name).toBe(name);
        }
      }
    }), { numRuns: 100 });
    // The scripts reached most operations, not only their refusals (the tour above reaches each).
    expect(done.size).toBeGreaterThanOrEqual(12);
  });
});
