// DMA ownership: iommu_group_claim_dma_owner / release, and what an owner's
// claim means for everyone else's attach / replace / detach.
import { describe, expect, it } from "vitest";
import type { Caller } from "../../src/core/caller.js";
import { interned } from "../../src/core/intern.js";
import { createDevice, deleteGroup, updateUnit } from "../../src/core/objects.js";
import {
  attachDevice, attachGroup, claimOwnership, detachDevice, detachGroup, releaseOwnership, replaceDomain,
  type Moved,
} from "../../src/core/group-moves.js";
import { isSoft, type Result } from "../../src/core/result.js";
import { containerAttach, containerDetach } from "../../src/core/container-attach.js";
import { ANON, as, build, errorOf, snapshot, unwrap } from "./fixtures.js";

const VFIO = as("vfio");
const OTHER = as("other");

function setup(flags: { requiresIdentity?: boolean }[] = [{}]) {
  const fx = build();
  const unit = fx.unit("mock");
  const { group, devices } = fx.groupWith(unit.id, flags);
  const domain = fx.domain({ driver: "mock" });
  const other = fx.domain({ driver: "mock" });
  return { fx, unit, group, devices, domain, other };
}

describe("claim", () => {
  it("unowned group on its default domain → ok, on a blocking domain allocated once", () => {
    const { fx, unit, group } = setup();
    fx.commit();
    const domainsBefore = fx.model.count("domain");
    const r = unwrap(fx.op(claimOwnership, VFIO, group.id));
    const g = fx.groupNow(group.id);
    expect(g.owner).toBe("vfio");
    expect(g.blockingDomainId).not.toBeNull();
    expect(r).toEqual({ groupId: group.id, domainId: g.blockingDomainId, changed: true });
    expect(g.domainId).toBe(g.blockingDomainId);
    expect(fx.domainNow(g.blockingDomainId!)).toMatchObject({ type: "blocked", driver: "mock", unitId: unit.id, auto: false, containerId: null });
    expect(fx.model.count("domain")).toBe(domainsBefore + 1);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "claim", owner: "vfio", groupId: group.id, domainId: g.blockingDomainId, errno: null, code: 0 })]);

    // Release and claim again: the same blocking domain, nothing new allocated.
    unwrap(fx.op(releaseOwnership, VFIO, group.id));
    unwrap(fx.op(claimOwnership, OTHER, group.id));
    expect(fx.groupNow(group.id)).toMatchObject({ owner: "other", domainId: g.blockingDomainId, blockingDomainId: g.blockingDomainId });
    expect(fx.model.count("domain")).toBe(domainsBefore + 1);
  });

  it("by another owner → EPERM owned-by-other", () => {
    const { fx, group } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(claimOwnership, OTHER, group.id));
    expect(error).toMatchObject({ errno: "EPERM", reason: "owned-by-other", ids: { groupId: group.id } });
    expect(isSoft(error)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "claim", owner: "other", errno: "EPERM", code: -1, domainId: null })]);
  });

  it("by the same owner again → ok, changed false", () => {
    const { fx, group } = setup();
    const first = unwrap(fx.op(claimOwnership, VFIO, group.id));
    fx.commit();
    expect(fx.op(claimOwnership, VFIO, group.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: first.domainId, changed: false } });
    expect(fx.model.takeChanges().rows.group.size).toBe(0);
  });

  it("while attached to a paging domain → EBUSY group-not-default, no blocking domain allocated", () => {
    const { fx, group, domain } = setup();
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(claimOwnership, VFIO, group.id));
    expect(error).toMatchObject({ errno: "EBUSY", reason: "group-not-default", ids: { groupId: group.id, domainId: domain.id } });
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, blockingDomainId: null, domainId: domain.id });
  });

  it.each([
    ["the only device", [{ requiresIdentity: true }]],
    ["the 2nd of 2 devices", [{}, { requiresIdentity: true }]],
  ] as const)("with a requiresIdentity device (%s) → hard EINVAL requires-identity (no blocking domain can take it), nothing changes", (_name, flags) => {
    const { fx, group, devices } = setup([...flags]);
    fx.commit();
    const before = snapshot(fx.model);
    const domainsBefore = fx.model.count("domain");
    const error = errorOf(fx.op(claimOwnership, VFIO, group.id));
    const device = devices[devices.length - 1]!;
    // __iommu_take_dma_ownership → __iommu_group_set_domain(blocking) → __iommu_device_set_domain: -EINVAL.
    expect(error).toEqual({
      errno: "EINVAL", reason: "requires-identity", detail: `${device.name} has firmware-reserved regions and needs a 1:1 mapping; it cannot be blocked`,
      ids: { deviceId: device.id, groupId: group.id },
    });
    expect(isSoft(error)).toBe(false);
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, blockingDomainId: null, domainId: group.defaultDomainId });
    expect(fx.model.count("domain")).toBe(domainsBefore);
    expect([...fx.model.all("domain")].some((d) => d.type === "blocked")).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
    const drained = fx.model.takeChanges();
    // Rolled back rows may be listed, but only with their original values.
    for (const [id, { after: row }] of drained.rows.domain) expect(row === null ? fx.domainNow(id) : row).toEqual(fx.domainNow(id) ?? undefined);
    expect(drained.rows.group.get(group.id)?.after ?? fx.groupNow(group.id)).toEqual(fx.groupNow(group.id));
    expect(drained.events).toEqual([expect.objectContaining({ op: "claim", errno: "EINVAL", code: -22, reason: "requires-identity" })]);
  });

  it("on an offline unit → ENODEV, rolled back (no owner, no blocking domain)", () => {
    const { fx, unit, group } = setup();
    unwrap(updateUnit(fx.model, unit.id, { online: false }));
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id))).toMatchObject({ errno: "ENODEV", reason: "unit-offline" });
    expect(snapshot(fx.model)).toBe(before);
  });

  it("with an injected fault → fails, the fault stays consumed, the claim is rolled back", () => {
    const { fx, group, devices } = setup();
    const fault = fx.fault({ deviceId: devices[0]!.id, errno: "ENOMEM" });
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id)).errno).toBe("ENOMEM");
    expect(fx.model.get("fault", fault.id)).toBeUndefined();
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, blockingDomainId: null });
    expect(unwrap(fx.op(claimOwnership, VFIO, group.id)).changed).toBe(true);
  });

  it("a failed first claim does not name the blocking domain its rollback freed; a later failed claim names the one that exists", () => {
    const { fx, group, devices } = setup();
    fx.fault({ deviceId: devices[0]!.id, errno: "ENOMEM" });
    const first = errorOf(fx.op(claimOwnership, VFIO, group.id));
    expect(first.ids).toEqual({ groupId: group.id, deviceId: devices[0]!.id });
    // Claim, release: the group keeps its blocking domain; a failing claim now names it.
    const blocking = unwrap(fx.op(claimOwnership, VFIO, group.id)).domainId;
    unwrap(fx.op(releaseOwnership, VFIO, group.id));
    fx.fault({ deviceId: devices[0]!.id, errno: "ENOMEM" });
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id)).ids).toEqual({ groupId: group.id, deviceId: devices[0]!.id, domainId: blocking });
    expect(fx.domainNow(blocking)).toBeDefined();
  });

  it("of a missing group → ENOENT", () => {
    const { fx } = setup();
    fx.commit();
    expect(errorOf(fx.op(claimOwnership, VFIO, 999))).toMatchObject({ errno: "ENOENT", reason: "no-such-group" });
    expect(errorOf(fx.op(releaseOwnership, VFIO, 999))).toMatchObject({ errno: "ENOENT", reason: "no-such-group" });
    expect(fx.events()).toEqual([]); // no such subject: answered, not logged
  });
});

describe("an owned group: who may move it", () => {
  type Ctx = ReturnType<typeof setup>;
  const OPS: [string, (c: Ctx, caller: Caller) => Result<unknown>][] = [
    ["attachGroup", (c, caller) => attachGroup(c.fx.model, caller, c.group.id, c.domain.id)],
    ["replaceDomain", (c, caller) => replaceDomain(c.fx.model, caller, c.group.id, c.domain.id)],
    ["attachDevice", (c, caller) => attachDevice(c.fx.model, caller, c.devices[0]!.id, c.domain.id)],
    ["detachGroup", (c, caller) => detachGroup(c.fx.model, caller, c.group.id, c.fx.groupNow(c.group.id).domainId)],
    ["detachDevice", (c, caller) => detachDevice(c.fx.model, caller, c.devices[0]!.id, c.fx.groupNow(c.group.id).domainId)],
    ["containerAttach", (c, caller) => containerAttach(c.fx.model, caller, c.fx.container().id, c.group.id)],
    ["containerDetach", (c, caller) => containerDetach(c.fx.model, caller, c.fx.container().id, c.group.id)],
    ["releaseOwnership", (c, caller) => releaseOwnership(c.fx.model, caller, c.group.id)],
  ];
  const STRANGERS: [string, Caller][] = [["another owner", OTHER], ["an anonymous caller", ANON]];

  describe.each(STRANGERS)("by %s", (_who, caller) => {
    it.each(OPS)("%s → EPERM owned-by-other, nothing changes", (_name, op) => {
      const c = setup();
      unwrap(claimOwnership(c.fx.model, VFIO, c.group.id));
      const blocking = c.fx.groupNow(c.group.id).blockingDomainId;
      const error = errorOf(op(c, caller));
      expect(error).toMatchObject({ errno: "EPERM", reason: "owned-by-other" });
      expect(c.fx.groupNow(c.group.id)).toMatchObject({ owner: "vfio", domainId: blocking });
      const events = c.fx.events();
      expect(events[events.length - 1]).toMatchObject({ errno: "EPERM", code: -1, owner: caller.owner });
    });
  });

  it("by the owner: attach from the blocking domain (no EBUSY), replace, detach back to the blocking domain", () => {
    const { fx, group, domain, other } = setup();
    const blocking = unwrap(fx.op(claimOwnership, VFIO, group.id)).domainId;
    expect(fx.op(attachGroup, VFIO, group.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: domain.id, changed: true } });
    expect(errorOf(fx.op(attachGroup, VFIO, group.id, other.id))).toMatchObject({ errno: "EBUSY", reason: "group-attached" });
    expect(fx.op(replaceDomain, VFIO, group.id, other.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: other.id, changed: true } });
    expect(fx.op(detachGroup, VFIO, group.id, other.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: blocking, changed: true } });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: "vfio", domainId: blocking });
  });

  it("by the owner: detachDevice also returns to the blocking domain", () => {
    const { fx, group, devices, domain } = setup();
    const blocking = unwrap(fx.op(claimOwnership, VFIO, group.id)).domainId;
    unwrap(fx.op(attachDevice, VFIO, devices[0]!.id, domain.id));
    expect(unwrap(fx.op(detachDevice, VFIO, devices[0]!.id, domain.id)).domainId).toBe(blocking);
    expect(fx.groupNow(group.id).domainId).toBe(blocking);
  });

  it("by the owner: detach back to the blocking domain succeeds even with the unit offline", () => {
    // The core domain (blocking while owned) must always be reachable: the
    // kernel sets it with IOMMU_SET_DOMAIN_MUST_SUCCEED.
    const { fx, unit, group, domain } = setup();
    const blocking = unwrap(fx.op(claimOwnership, VFIO, group.id)).domainId;
    unwrap(fx.op(attachGroup, VFIO, group.id, domain.id));
    unwrap(updateUnit(fx.model, unit.id, { online: false }));
    expect(fx.op(detachGroup, VFIO, group.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: blocking, changed: true } });
    expect(fx.groupNow(group.id).domainId).toBe(blocking);
  });

  it("an owned group cannot be deleted", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.group(unit.id);
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    expect(errorOf(deleteGroup(fx.model, group.id))).toMatchObject({ errno: "EBUSY", reason: "group-not-default" });
  });
});

describe("release", () => {
  it("by a non-owner → EPERM owned-by-other", () => {
    const { fx, group } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(fx.op(releaseOwnership, OTHER, group.id))).toMatchObject({ errno: "EPERM", reason: "owned-by-other" });
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "release", errno: "EPERM", code: -1 })]);
  });

  it.each([["the would-be owner", VFIO], ["anonymous", ANON]] as const)("of an unowned group by %s → EPERM not-owned", (_who, caller) => {
    const { fx, group } = setup();
    fx.commit();
    const error = errorOf(fx.op(releaseOwnership, caller, group.id));
    expect(error).toMatchObject({ errno: "EPERM", reason: "not-owned", ids: { groupId: group.id } });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, domainId: group.defaultDomainId });
  });

  it("→ default domain, owner null; the blocking domain is kept for the next claim", () => {
    const { fx, group } = setup();
    const blocking = unwrap(fx.op(claimOwnership, VFIO, group.id)).domainId;
    fx.commit();
    expect(fx.op(releaseOwnership, VFIO, group.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: group.defaultDomainId, changed: true } });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, domainId: group.defaultDomainId, blockingDomainId: blocking });
    expect(fx.domainNow(blocking)?.type).toBe("blocked");
    expect(fx.events()).toEqual([expect.objectContaining({ op: "release", owner: "vfio", errno: null, code: 0, domainId: group.defaultDomainId })]);
  });

  it("while the owner has it on an automatic domain → default domain, the automatic domain freed", () => {
    const { fx, group } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    const ioas = fx.container();
    const found = unwrap(fx.op(containerAttach, VFIO, ioas.id, group.id));
    expect(found.allocated).toBe(true);
    unwrap(fx.op(releaseOwnership, VFIO, group.id));
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, domainId: group.defaultDomainId });
    expect(fx.domainNow(found.domainId)).toBeUndefined();
  });

  it("release works with the unit offline (the default domain is always reachable)", () => {
    const { fx, unit, group } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    unwrap(updateUnit(fx.model, unit.id, { online: false }));
    expect(unwrap(fx.op(releaseOwnership, VFIO, group.id)).domainId).toBe(group.defaultDomainId);
  });
});

describe("blocking domains are private to their group", () => {
  it("another group cannot attach a group's blocking domain (else deleting that group leaves it dangling)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const a = fx.groupWith(unit.id).group;
    const b = fx.groupWith(unit.id).group;
    const blocking = unwrap(fx.op(claimOwnership, VFIO, a.id)).domainId;
    unwrap(fx.op(releaseOwnership, VFIO, a.id));
    const r: Result<Moved> = fx.op(attachGroup, ANON, b.id, blocking);
    expect(r.ok).toBe(false);
    expect(errorOf(r)).toMatchObject({ errno: "EINVAL", reason: "domain-not-attachable" });
    expect(fx.groupNow(b.id).domainId).toBe(b.defaultDomainId);
  });
});

// __iommu_group_set_core_domain and __iommu_release_dma_ownership go through
// __iommu_group_set_domain_nofail: a refusal is WARNed about and the group is
// recorded on the new domain anyway. The rules keep a requires-identity device
// out of an owned group (the claim is refused, the device cannot join or be
// flagged), so the state is built the way a database from before those rules
// holds it: the flag set behind the rules' back.
describe("detach and release never fail (IOMMU_SET_DOMAIN_MUST_SUCCEED)", () => {
  /** An owned group of `n` devices on a paging domain of its owner, whose first device needs identity mappings. */
  function ownedWithRmrr(n = 1, via: "attach" | "container" = "attach") {
    const s = setup(Array.from({ length: n }, () => ({})));
    const { fx, group, devices, domain } = s;
    const blocking = unwrap(fx.op(claimOwnership, VFIO, group.id)).domainId;
    const ioas = fx.container();
    const target = via === "attach" ? unwrap(fx.op(attachGroup, VFIO, group.id, domain.id)).domainId : unwrap(fx.op(containerAttach, VFIO, ioas.id, group.id)).domainId;
    const rmrr = devices[0]!;
    fx.model.put("device", { ...rmrr, flags: interned({ ...rmrr.flags, requiresIdentity: true }) });
    fx.commit();
    const warning = {
      errno: "EINVAL", reason: "requires-identity", detail: `${rmrr.name} has firmware-reserved regions and needs a 1:1 mapping; it cannot be blocked`,
      ids: { deviceId: rmrr.id, groupId: group.id, domainId: blocking },
    };
    return { ...s, blocking, target, ioas, warning };
  }

  const DETACHES = [
    ["detachGroup", "detach-group", (c: ReturnType<typeof ownedWithRmrr>) => detachGroup(c.fx.model, VFIO, c.group.id, c.target)],
    ["detachDevice", "detach-device", (c: ReturnType<typeof ownedWithRmrr>) => detachDevice(c.fx.model, VFIO, c.devices[0]!.id, c.target)],
  ] as const;

  it.each(DETACHES)("%s back to the blocking domain over a requires-identity refusal → ok with the warning; the group is on its blocking domain", (_name, op, detach) => {
    const c = ownedWithRmrr();
    expect(detach(c)).toEqual({ ok: true, value: { groupId: c.group.id, domainId: c.blocking, changed: true, warning: c.warning } });
    expect(c.fx.groupNow(c.group.id)).toMatchObject({ owner: "vfio", domainId: c.blocking });
    // The event: done (no errno), with what the kernel would WARN about.
    expect(c.fx.events()).toEqual([expect.objectContaining({
      op, owner: "vfio", groupId: c.group.id, errno: null, code: 0, soft: false, reason: "requires-identity", detail: c.warning.detail,
    })]);
  });

  it("containerDetach likewise, and the automatic domain left empty is still freed", () => {
    const c = ownedWithRmrr(1, "container");
    expect(c.fx.op(containerDetach, VFIO, c.ioas.id, c.group.id)).toEqual({
      ok: true, value: { groupId: c.group.id, domainId: c.blocking, freedDomainId: c.target, warning: c.warning },
    });
    expect(c.fx.groupNow(c.group.id).domainId).toBe(c.blocking);
    expect(c.fx.domainNow(c.target)).toBeUndefined();
    expect(c.fx.events()).toEqual([expect.objectContaining({ op: "container-detach", errno: null, code: 0, reason: "requires-identity" })]);
  });

  it("the other devices of the group are still moved, the warning names the first refusal", () => {
    const c = ownedWithRmrr(3);
    const second = c.devices[1]!;
    c.fx.model.put("device", { ...second, flags: interned({ ...second.flags, requiresIdentity: true }) });
    const r = unwrap(c.fx.op(detachGroup, VFIO, c.group.id, c.target));
    expect(r.warning).toEqual(c.warning);
    expect(c.fx.groupNow(c.group.id).domainId).toBe(c.blocking);
  });

  it("release to the default domain meets no refusal, from a paging domain or from the blocking domain a warned detach left", () => {
    const c = ownedWithRmrr();
    expect(c.fx.op(releaseOwnership, VFIO, c.group.id)).toEqual({ ok: true, value: { groupId: c.group.id, domainId: c.group.defaultDomainId, changed: true } });
    const d = ownedWithRmrr();
    unwrap(d.fx.op(detachGroup, VFIO, d.group.id, d.target));
    d.fx.commit();
    expect(d.fx.op(releaseOwnership, VFIO, d.group.id)).toEqual({ ok: true, value: { groupId: d.group.id, domainId: d.group.defaultDomainId, changed: true } });
    expect(d.fx.events()).toEqual([expect.objectContaining({ op: "release", errno: null, reason: null, detail: null })]);
  });

  it("the rules keep the state from arising: a requires-identity device can join the group only unowned, and then the claim is refused", () => {
    const { fx, group } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    expect(errorOf(createDevice(fx.model, { name: "rmrr", groupId: group.id, flags: { requiresIdentity: true } }))).toMatchObject({ errno: "EINVAL", reason: "requires-identity" });
    unwrap(fx.op(releaseOwnership, VFIO, group.id));
    unwrap(createDevice(fx.model, { name: "rmrr", groupId: group.id, flags: { requiresIdentity: true } }));
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id))).toMatchObject({ errno: "EINVAL", reason: "requires-identity" });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, domainId: group.defaultDomainId });
  });
});
