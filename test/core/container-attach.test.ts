// The retry-on-EINVAL search (iommufd_device_auto_get_domain): walk the
// container's automatic domains, skip on EINVAL, stop on anything else,
// allocate when none fits and free that domain again if its attach fails.
import { describe, expect, it } from "vitest";
import { attachGroup } from "../../src/core/group-moves.js";
import type { ErrnoError } from "../../src/core/result.js";
import { containerAttach, containerDetach, type Attempt, type SearchError } from "../../src/core/container-attach.js";
import type { DriverName } from "../../src/drivers/index.js";
import { ANON, build, errorOf, snapshot, unwrap, type Fixture } from "./fixtures.js";

function attemptsOf(error: ErrnoError): readonly Attempt[] {
  return (error as SearchError).attempts;
}

/** n units of a binding driver, each with one one-device group. */
function units(fx: Fixture, driver: DriverName, n: number) {
  return Array.from({ length: n }, () => {
    const unit = fx.unit(driver);
    return { unit, group: fx.groupWith(unit.id).group };
  });
}

const okAttempt = (domainId: number, allocated: boolean): Attempt => ({
  domainId, allocated, freed: false, errno: null, code: 0, soft: false, reason: null, detail: null,
});

describe("containerAttach", () => {
  it("allocates an automatic domain when the container has none, then reuses it", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const a = fx.groupWith(unit.id).group;
    const b = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    fx.commit();
    const first = unwrap(fx.op(containerAttach, ANON, ioas.id, a.id));
    expect(first.allocated).toBe(true);
    expect(first.attempts).toEqual([okAttempt(first.domainId, true)]);
    expect(fx.domainNow(first.domainId)).toMatchObject({
      type: "paging", auto: true, containerId: ioas.id, driver: "mock", name: null,
      config: { addressWidth: unit.capabilities.addressWidth, pageSizes: unit.capabilities.pageSizes, enforceCacheCoherency: false, dirtyTracking: false, nestParent: false },
    });
    const second = unwrap(fx.op(containerAttach, ANON, ioas.id, b.id));
    expect(second).toEqual({ groupId: b.id, domainId: first.domainId, allocated: false, attempts: [okAttempt(first.domainId, false)] });
    expect(fx.model.domainsOf(ioas.id).map((d) => d.id)).toEqual([first.domainId]);
    expect(fx.events()).toEqual([
      expect.objectContaining({ op: "container-attach", containerId: ioas.id, groupId: a.id, domainId: first.domainId, errno: null, code: 0 }),
      expect.objectContaining({ op: "container-attach", containerId: ioas.id, groupId: b.id, domainId: first.domainId, errno: null, code: 0 }),
    ]);
  });

  it("uses the container's coherency and dirty-tracking settings for the domain it allocates", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container({ enforceCacheCoherency: true, dirtyTracking: true });
    const found = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(fx.domainNow(found.domainId)?.config).toMatchObject({ enforceCacheCoherency: true, dirtyTracking: true });
  });

  it("skips incompatible automatic domains in order (soft EINVAL), then allocates", () => {
    const fx = build();
    const [u1, u2, u3] = units(fx, "arm-smmu-v3", 3);
    const ioas = fx.container();
    const d1 = unwrap(fx.op(containerAttach, ANON, ioas.id, u1!.group.id)).domainId;
    const d2 = unwrap(fx.op(containerAttach, ANON, ioas.id, u2!.group.id)).domainId;
    fx.commit();
    const r = unwrap(fx.op(containerAttach, ANON, ioas.id, u3!.group.id));
    expect(r.allocated).toBe(true);
    expect(r.attempts.map((a) => [a.domainId, a.allocated, a.errno, a.code, a.soft, a.reason])).toEqual([
      [d1, false, "EINVAL", -22, true, "different-instance"],
      [d2, false, "EINVAL", -22, true, "different-instance"],
      [r.domainId, true, null, 0, false, null],
    ]);
    expect(fx.domainNow(r.domainId)?.unitId).toBe(u3!.unit.id);
    expect(fx.groupNow(u3!.group.id).domainId).toBe(r.domainId);
    // The failed probes changed nothing: d1/d2 still bound where they were.
    expect(fx.domainNow(d1)?.unitId).toBe(u1!.unit.id);
    expect(fx.domainNow(d2)?.unitId).toBe(u2!.unit.id);
    // One event for the whole search.
    expect(fx.events()).toEqual([expect.objectContaining({ op: "container-attach", errno: null, domainId: r.domainId })]);
  });

  it("skips an automatic domain of another driver (different-driver, soft)", () => {
    const fx = build();
    const mockUnit = fx.unit("mock");
    const vtd = fx.unit("intel-vtd");
    const ioas = fx.container();
    const dMock = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(mockUnit.id).group.id)).domainId;
    const r = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(vtd.id).group.id));
    expect(r.attempts[0]).toMatchObject({ domainId: dMock, errno: "EINVAL", soft: true, reason: "different-driver" });
    expect(r.allocated).toBe(true);
  });

  it("an injected EINVAL is skipped like an incompatibility", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const ioas = fx.container();
    const d1 = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(unit.id).group.id)).domainId;
    const { group, devices } = fx.groupWith(unit.id);
    fx.fault({ deviceId: devices[0]!.id, errno: "EINVAL" });
    const r = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(r.attempts.map((a) => [a.domainId, a.errno, a.reason])).toEqual([[d1, "EINVAL", "injected-fault"], [r.domainId, null, null]]);
    expect(r.allocated).toBe(true);
  });

  it.each([
    ["injected ENOMEM on the device", "ENOMEM", "injected-fault"],
    ["injected EIO on the device (reported ENODEV)", "ENODEV", "injected-fault"],
  ] as const)("stops on a hard error: %s — no allocation", (_name, errno, reason) => {
    const fx = build();
    const [u1, u2] = units(fx, "arm-smmu-v3", 2);
    const ioas = fx.container();
    const d1 = unwrap(fx.op(containerAttach, ANON, ioas.id, u1!.group.id)).domainId;
    const { group, devices } = fx.groupWith(u2!.unit.id);
    const fault = fx.fault({ deviceId: devices[0]!.id, errno: errno === "ENOMEM" ? "ENOMEM" : "EIO" });
    fx.commit();
    const before = snapshot(fx.model, { withFaults: false });
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(error).toMatchObject({ errno, reason });
    expect(attemptsOf(error).map((a) => [a.domainId, a.allocated, a.errno, a.soft])).toEqual([[d1, false, errno, false]]);
    expect(snapshot(fx.model, { withFaults: false })).toBe(before);
    expect(fx.model.get("fault", fault.id)).toBeUndefined(); // consumed by the one attempt
    expect(fx.model.domainsOf(ioas.id).map((d) => d.id)).toEqual([d1]);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "container-attach", errno, code: errno === "ENOMEM" ? -12 : -19, domainId: null })]);
  });

  it("stops on a hard ENOSPC from the driver (intel domain IDs exhausted) after earlier soft skips", () => {
    const fx = build();
    const full = fx.unit("intel-vtd", { domainIds: 2 });
    const nosnoop = fx.unit("intel-vtd", { snoopControl: false });
    const roomy = fx.unit("intel-vtd");
    const ioas = fx.container({ enforceCacheCoherency: true });
    // d1: allocated for the roomy unit; fits the full unit too but needs an ID.
    const d1 = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(roomy.id).group.id)).domainId;
    // Spend the full unit's only domain ID on a manual domain.
    const manual = fx.domain({ driver: "intel-vtd" });
    unwrap(fx.op(attachGroup, ANON, fx.groupWith(full.id).group.id, manual.id));
    // A group on the no-snoop unit cannot use d1 and cannot get a coherent domain at all.
    const ns = fx.groupWith(nosnoop.id).group;
    const nsError = errorOf(fx.op(containerAttach, ANON, ioas.id, ns.id));
    expect(nsError).toMatchObject({ errno: "EINVAL", reason: "snoop-control" });
    expect(attemptsOf(nsError).map((a) => [a.domainId === d1, a.allocated, a.reason])).toEqual([[true, false, "snoop-control"], [false, true, "snoop-control"]]);
    expect(fx.model.domainsOf(ioas.id).map((d) => d.id)).toEqual([d1]);

    // Its default domain takes the last ID. Two devices: the first leaves the
    // default domain while the second still holds its ID (VT-d refcounts per
    // device), so d1 needs one more.
    const g = fx.groupWith(full.id, [{}, {}]).group;
    const domains = fx.model.count("domain");
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, g.id));
    expect(error).toMatchObject({ errno: "ENOSPC", reason: "domain-ids-exhausted" });
    expect(attemptsOf(error)).toEqual([expect.objectContaining({ domainId: d1, allocated: false, errno: "ENOSPC", code: -28, soft: false })]);
    expect(fx.model.count("domain")).toBe(domains);
    expect(fx.groupNow(g.id).domainId).toBe(g.defaultDomainId);
  });

  it("skips manually created domains of the container", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    const manual = fx.domain({ driver: "mock", containerId: ioas.id });
    expect(manual.auto).toBe(false);
    const r = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(r.allocated).toBe(true);
    expect(r.domainId).not.toBe(manual.id);
    expect(r.attempts.map((a) => a.domainId)).toEqual([r.domainId]);
    expect(fx.model.domainsOf(ioas.id).map((d) => d.id)).toEqual([manual.id, r.domainId]);
  });

  it("an automatic domain of another container is not a candidate", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const c1 = fx.container();
    const c2 = fx.container();
    const d1 = unwrap(fx.op(containerAttach, ANON, c1.id, fx.groupWith(unit.id).group.id)).domainId;
    const r = unwrap(fx.op(containerAttach, ANON, c2.id, fx.groupWith(unit.id).group.id));
    expect(r.allocated).toBe(true);
    expect(r.domainId).not.toBe(d1);
    expect(r.attempts).toHaveLength(1);
  });

  it("allocation failure (arm-smmu-v3 ASIDs exhausted → EBUSY) leaves no domain behind", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3", { domainIds: 2 });
    fx.domain({ unitId: unit.id }); // finalised at allocation: an ASID
    const group = fx.groupWith(unit.id).group; // its default domain takes the other
    const ioas = fx.container();
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(error).toMatchObject({ errno: "EBUSY", reason: "asids-exhausted" });
    expect(attemptsOf(error)).toEqual([]);
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.domainsOf(ioas.id)).toEqual([]);
    const drained = fx.model.takeChanges();
    for (const row of drained.rows.domain.values()) expect(row.after).toBeNull(); // nothing new persisted
    expect(drained.events).toEqual([expect.objectContaining({ op: "container-attach", errno: "EBUSY", code: -16, reason: "asids-exhausted" })]);
  });

  it("arm-smmu allocates without a context bank and takes one at the attach: ENOSPC there frees the new domain again", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu", { domainIds: 1 });
    const group = fx.groupWith(unit.id).group; // its default domain holds the only context bank
    const ioas = fx.container();
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(error).toMatchObject({ errno: "ENOSPC", reason: "context-banks-exhausted" });
    expect(attemptsOf(error)).toEqual([expect.objectContaining({ allocated: true, freed: true, errno: "ENOSPC", reason: "context-banks-exhausted" })]);
    expect(snapshot(fx.model)).toBe(before);
  });

  it("allocation refused by the driver (EOPNOTSUPP dirty tracking) leaves no domain behind", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container({ dirtyTracking: true });
    const before = snapshot(fx.model);
    expect(errorOf(fx.op(containerAttach, ANON, ioas.id, group.id))).toMatchObject({ errno: "EOPNOTSUPP", reason: "unsupported" });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("the freshly allocated domain is freed if its attach fails (mock no-dirty device, dirty container)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const ioas = fx.container({ dirtyTracking: true });
    const d1 = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(unit.id).group.id)).domainId;
    const { group, devices } = fx.groupWith(unit.id, [{ noDirty: true }]);
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "dirty-tracking", ids: { deviceId: devices[0]!.id } });
    const attempts = attemptsOf(error);
    expect(attempts.map((a) => [a.allocated, a.reason, a.soft])).toEqual([[false, "dirty-tracking", true], [true, "dirty-tracking", true]]);
    expect(attempts[0]!.domainId).toBe(d1);
    expect(fx.domainNow(attempts[1]!.domainId)).toBeUndefined();
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.domainsOf(ioas.id).map((d) => d.id)).toEqual([d1]);
  });

  it("attaching the same group twice → the same domain, no new attempts", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    const first = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    fx.commit();
    expect(fx.op(containerAttach, ANON, ioas.id, group.id)).toEqual({
      ok: true, value: { groupId: group.id, domainId: first.domainId, allocated: false, attempts: [] },
    });
    expect(fx.model.domainsOf(ioas.id)).toHaveLength(1);
    expect(fx.model.takeChanges().rows.domain.size).toBe(0);
  });

  it("a group attached elsewhere → EBUSY group-attached", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const manual = fx.domain({ driver: "mock" });
    unwrap(fx.op(attachGroup, ANON, group.id, manual.id));
    const ioas = fx.container();
    const c2 = fx.container();
    fx.commit();
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(error).toMatchObject({ errno: "EBUSY", reason: "group-attached", ids: { groupId: group.id, domainId: manual.id } });
    expect(fx.model.domainsOf(ioas.id)).toEqual([]);
    // Attached through another container: also EBUSY.
    unwrap(fx.op(attachGroup, ANON, group.id, manual.id));
    const other = fx.groupWith(unit.id).group;
    unwrap(fx.op(containerAttach, ANON, c2.id, other.id));
    expect(errorOf(fx.op(containerAttach, ANON, ioas.id, other.id))).toMatchObject({ errno: "EBUSY", reason: "group-attached" });
  });

  it.each([
    ["container", "no-such-container"],
    ["group", "no-such-group"],
  ] as const)("a missing %s → ENOENT", (what, reason) => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    fx.commit();
    const r = what === "container" ? fx.op(containerAttach, ANON, 99, group.id) : fx.op(containerAttach, ANON, ioas.id, 99);
    expect(errorOf(r)).toMatchObject({ errno: "ENOENT", reason });
    expect(fx.events()).toEqual([]); // no such subject: answered, not logged
  });

  it("16 incompatible automatic domains, then a compatible one (17 SMMUv3 instances)", () => {
    const fx = build();
    const all = units(fx, "arm-smmu-v3", 17);
    const ioas = fx.container();
    const domainIds: number[] = [];
    for (const [i, { unit, group }] of all.entries()) {
      const r = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
      expect(r.allocated).toBe(true);
      expect(r.attempts).toHaveLength(i + 1);
      expect(r.attempts.slice(0, i).every((a) => a.soft && a.reason === "different-instance")).toBe(true);
      expect(fx.domainNow(r.domainId)?.unitId).toBe(unit.id);
      domainIds.push(r.domainId);
    }
    const last = all[16]!;
    const second = fx.groupWith(last.unit.id).group;
    fx.commit();
    const r = unwrap(fx.op(containerAttach, ANON, ioas.id, second.id));
    expect(r.allocated).toBe(false);
    expect(r.domainId).toBe(domainIds[16]);
    expect(r.attempts).toHaveLength(17);
    expect(r.attempts.map((a) => a.domainId)).toEqual(domainIds);
    for (const a of r.attempts.slice(0, 16)) {
      expect(a).toMatchObject({ allocated: false, errno: "EINVAL", code: -22, soft: true, reason: "different-instance" });
    }
    expect(r.attempts[16]).toEqual(okAttempt(domainIds[16]!, false));
    expect(fx.model.domainsOf(ioas.id)).toHaveLength(17);
    expect([...fx.model.groupsAttachedTo(domainIds[16]!)].sort((a, b) => a - b)).toEqual([last.group.id, second.id]);
    // The 16 soft probes changed nothing.
    const drained = fx.model.takeChanges();
    expect([...drained.rows.domain.keys()]).toEqual([]);
    expect([...drained.rows.group.keys()]).toEqual([second.id]);
  });
});

describe("containerDetach", () => {
  it("frees an automatic domain left empty, keeps one another group still uses", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const a = fx.groupWith(unit.id).group;
    const b = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    const d = unwrap(fx.op(containerAttach, ANON, ioas.id, a.id)).domainId;
    unwrap(fx.op(containerAttach, ANON, ioas.id, b.id));
    fx.commit();
    expect(fx.op(containerDetach, ANON, ioas.id, a.id)).toEqual({ ok: true, value: { groupId: a.id, domainId: a.defaultDomainId, freedDomainId: null } });
    expect(fx.domainNow(d)).toBeDefined();
    expect(fx.op(containerDetach, ANON, ioas.id, b.id)).toEqual({ ok: true, value: { groupId: b.id, domainId: b.defaultDomainId, freedDomainId: d } });
    expect(fx.domainNow(d)).toBeUndefined();
    expect(fx.model.domainsOf(ioas.id)).toEqual([]);
    const drained = fx.model.takeChanges();
    expect(drained.rows.domain.get(d)?.after).toBeNull();
    expect(drained.events.map((e) => [e.op, e.groupId, e.domainId, e.code])).toEqual([
      ["container-detach", a.id, a.defaultDomainId, 0],
      ["container-detach", b.id, b.defaultDomainId, 0],
    ]);
  });

  it("detaching from a manual domain of the container keeps that domain", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    const manual = fx.domain({ driver: "mock", containerId: ioas.id });
    unwrap(fx.op(attachGroup, ANON, group.id, manual.id));
    expect(unwrap(fx.op(containerDetach, ANON, ioas.id, group.id)).freedDomainId).toBeNull();
    expect(fx.domainNow(manual.id)).toBeDefined();
  });

  it("a group not attached through the container → EINVAL not-in-container", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    const c2 = fx.container();
    fx.commit();
    const error = errorOf(fx.op(containerDetach, ANON, ioas.id, group.id));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "not-in-container", ids: { groupId: group.id, containerId: ioas.id } });
    unwrap(fx.op(containerAttach, ANON, c2.id, group.id));
    expect(errorOf(fx.op(containerDetach, ANON, ioas.id, group.id))).toMatchObject({ errno: "EINVAL", reason: "not-in-container" });
    expect(fx.events().map((e) => [e.op, e.code])).toEqual([["container-detach", -22], ["container-attach", 0], ["container-detach", -22]]);
  });

  it("a missing container → ENOENT", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    fx.commit();
    expect(errorOf(fx.op(containerDetach, ANON, 77, group.id))).toMatchObject({ errno: "ENOENT", reason: "no-such-container" });
    expect(errorOf(fx.op(containerDetach, ANON, ioas.id, 77))).toMatchObject({ errno: "ENOENT", reason: "no-such-group" });
    expect(fx.events()).toEqual([]); // no such subject: answered, not logged
  });
});
