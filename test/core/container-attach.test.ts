// Attaching a group through a container (src/core/container-attach.ts):
// - an iommufd IOAS, policy "kernel": iommufd_device_auto_get_domain() —
//   walk the automatic domains, skip on EINVAL, stop on anything else,
//   allocate with flags 0 when none fits (coherency from the device's IOMMU),
//   free that domain again if its attach fails;
// - policy "qemu": QEMU's iommufd_cdev_autodomains_get() — the same walk over
//   QEMU's own page tables, newest first, allocating with dirty tracking
//   when the device's IOMMU reports it;
// - a VFIO type1 container: vfio_iommu_type1_attach_group() — allocate,
//   attach, then merge into an existing domain of the same driver and
//   coherency.
import { describe, expect, it } from "vitest";
import { ANONYMOUS } from "../../src/core/caller.js";
import { containerAttach, containerDetach, type Attempt, type SearchError } from "../../src/core/container-attach.js";
import type { AttachContext, DriverTable, IommuDriver } from "../../src/core/driver.js";
import type { ContainerKind, DeviceFlags, SearchPolicy, UnitCapabilities } from "../../src/core/entities.js";
import { attachGroup, replaceDomain } from "../../src/core/group-moves.js";
import { Model } from "../../src/core/model.js";
import { createContainer, createDevice, createDomain, createGroup, createUnit } from "../../src/core/objects.js";
import { perform } from "../../src/core/operation.js";
import { fail, OK, type ErrnoError, type Result } from "../../src/core/result.js";
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

const OK_OUTCOME = { errno: null, code: 0, soft: false, reason: null, detail: null };
const okAttempt = (domainId: number, allocated: boolean, freed = false): Attempt => ({ domainId, allocated, freed, ...OK_OUTCOME });

/** Attach through the container with a policy (the fixture's op takes the core function's arguments). */
const attachWith = (fx: Fixture, containerId: number, groupId: number, policy: SearchPolicy) =>
  fx.op(containerAttach, ANON, containerId, groupId, policy);

describe("iommufd, kernel policy: the automatic-domain search", () => {
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
      type: "paging", auto: true, search: "kernel", containerId: ioas.id, driver: "mock", name: null,
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

  // iommufd_hwpt_paging_alloc(..., flags 0, ...): never dirty-tracking, never
  // a nesting parent; coherency enforced when device_iommu_capable(dev,
  // IOMMU_CAP_ENFORCE_CACHE_COHERENCY) (idev->enforce_cache_coherency), per
  // driver as its capable() answers.
  it.each([
    { driver: "intel-vtd", caps: { snoopControl: true, dirtyTracking: true, nesting: true }, flags: {}, enforced: true },
    { driver: "intel-vtd", caps: { snoopControl: false }, flags: {}, enforced: false },
    { driver: "arm-smmu-v3", caps: { dirtyTracking: true }, flags: { canwbs: true }, enforced: true },
    { driver: "arm-smmu-v3", caps: {}, flags: { canwbs: false }, enforced: false },
    { driver: "amd-iommu", caps: { dirtyTracking: true }, flags: {}, enforced: true },
    { driver: "arm-smmu", caps: { snoopControl: true }, flags: {}, enforced: false },
    { driver: "apple-dart", caps: {}, flags: {}, enforced: false },
    { driver: "virtio-iommu", caps: {}, flags: {}, enforced: false },
    { driver: "mock", caps: {}, flags: {}, enforced: false },
  ] as { driver: DriverName; caps: Partial<UnitCapabilities>; flags: Partial<DeviceFlags>; enforced: boolean }[])(
    "$driver $caps $flags: allocates with flags 0, enforcing coherency: $enforced (iommufd_device_auto_get_domain)",
    ({ driver, caps, flags, enforced }) => {
      const fx = build();
      const unit = fx.unit(driver, caps);
      const { group } = fx.groupWith(unit.id, [flags]);
      const r = unwrap(fx.op(containerAttach, ANON, fx.container().id, group.id));
      expect(fx.domainNow(r.domainId)?.config).toEqual({
        addressWidth: unit.capabilities.addressWidth, pageSizes: unit.capabilities.pageSizes,
        enforceCacheCoherency: enforced, dirtyTracking: false, nestParent: false,
        // VT-d's allocation reads these off the unit (shapedConfig); flags 0 asks for no second stage.
        coherentWalk: unit.capabilities.coherentWalk, firstStage: unit.capabilities.firstStage,
      });
    },
  );

  it("a device behind a unit without snoop control gets a non-enforcing domain of its own (the IOAS carries no coherency setting)", () => {
    const fx = build();
    const snoop = fx.unit("intel-vtd", { snoopControl: true });
    const nosnoop = fx.unit("intel-vtd", { snoopControl: false });
    const ioas = fx.container();
    const coherent = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(snoop.id).group.id)).domainId;
    expect(fx.domainNow(coherent)?.config.enforceCacheCoherency).toBe(true);
    const r = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(nosnoop.id).group.id));
    expect(r.attempts).toEqual([
      expect.objectContaining({ domainId: coherent, allocated: false, errno: "EINVAL", soft: true, reason: "snoop-control" }),
      okAttempt(r.domainId, true),
    ]);
    expect(fx.domainNow(r.domainId)?.config.enforceCacheCoherency).toBe(false);
    // A coherency-capable device may join the non-enforcing domain: since
    // "iommufd: Only enforce cache coherency in iommufd_hw_pagetable_alloc"
    // (v6.7) an attach no longer upgrades or refuses it.
    const late = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(snoop.id).group.id));
    expect(late).toMatchObject({ domainId: coherent, allocated: false });
  });

  it("a caller that needs dirty tracking allocates the domain itself (IOMMU_HWPT_ALLOC) and attaches it by id; no search ever tries it", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd", { dirtyTracking: true });
    const ioas = fx.container();
    const dirty = fx.domain({ unitId: unit.id, containerId: ioas.id, config: { dirtyTracking: true } });
    const { group } = fx.groupWith(unit.id);
    unwrap(fx.op(attachGroup, ANON, group.id, dirty.id));
    expect(fx.groupNow(group.id).domainId).toBe(dirty.id);
    for (const policy of ["kernel", "qemu"] as SearchPolicy[]) {
      const r = unwrap(attachWith(fx, ioas.id, fx.groupWith(unit.id).group.id, policy));
      expect(r.attempts.map((a) => a.domainId), policy).not.toContain(dirty.id);
    }
    // Where the driver or unit cannot, the allocation says so (EOPNOTSUPP).
    const plain = fx.unit("intel-vtd", { dirtyTracking: false });
    expect(errorOf(createDomain(fx.model, { type: "paging", unitId: plain.id, containerId: ioas.id, config: { dirtyTracking: true } })))
      .toMatchObject({ errno: "EOPNOTSUPP", reason: "unsupported" });
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

  it("stops on a hard ENOSPC from the driver (intel domain IDs exhausted)", () => {
    const fx = build();
    const full = fx.unit("intel-vtd", { domainIds: 2 });
    const roomy = fx.unit("intel-vtd");
    const ioas = fx.container();
    // d1: allocated for the roomy unit; fits the full unit too but needs an ID.
    const d1 = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(roomy.id).group.id)).domainId;
    // Spend one of the full unit's two domain IDs on a manual domain.
    const manual = fx.domain({ driver: "intel-vtd" });
    unwrap(fx.op(attachGroup, ANON, fx.groupWith(full.id).group.id, manual.id));
    // Its default domain takes the other. Two devices: the first leaves the
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
    expect(manual).toMatchObject({ auto: false, search: "none" });
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

  it("the freshly allocated domain is freed if its attach fails (injected ENOMEM on the unit)", () => {
    const fx = build();
    const unit = fx.unit("amd-iommu");
    const { group } = fx.groupWith(unit.id);
    const ioas = fx.container();
    fx.fault({ unitId: unit.id, errno: "ENOMEM" });
    fx.commit();
    const before = snapshot(fx.model, { withFaults: false });
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(error).toMatchObject({ errno: "ENOMEM", reason: "injected-fault", ids: { groupId: group.id } });
    expect(error.ids).not.toHaveProperty("domainId");
    const [only] = attemptsOf(error);
    expect(only).toMatchObject({ allocated: true, freed: true, errno: "ENOMEM" });
    expect(fx.domainNow(only!.domainId)).toBeUndefined();
    expect(snapshot(fx.model, { withFaults: false })).toBe(before);
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

describe("iommufd, qemu policy: QEMU's iommufd_cdev_autodomains_get", () => {
  // QEMU allocates with IOMMU_HWPT_ALLOC_DIRTY_TRACKING when
  // IOMMU_GET_HW_INFO reports IOMMU_HW_CAP_DIRTY_TRACKING for the device,
  // that is device_iommu_capable(dev, IOMMU_CAP_DIRTY_TRACKING).
  it.each([
    { driver: "intel-vtd", caps: { dirtyTracking: true }, flags: {}, dirty: true, enforced: true },
    { driver: "intel-vtd", caps: { dirtyTracking: false }, flags: {}, dirty: false, enforced: true },
    { driver: "arm-smmu-v3", caps: { dirtyTracking: true, snoopControl: true }, flags: {}, dirty: true, enforced: false },
    { driver: "arm-smmu-v3", caps: { dirtyTracking: true, snoopControl: false }, flags: { canwbs: true }, dirty: false, enforced: true },
    { driver: "amd-iommu", caps: { dirtyTracking: true }, flags: {}, dirty: true, enforced: true },
    { driver: "amd-iommu", caps: { dirtyTracking: false }, flags: {}, dirty: false, enforced: true },
    { driver: "mock", caps: {}, flags: {}, dirty: true, enforced: false },
    { driver: "mock", caps: {}, flags: { noDirty: true }, dirty: false, enforced: false },
    { driver: "arm-smmu", caps: { dirtyTracking: true }, flags: {}, dirty: false, enforced: false },
    { driver: "apple-dart", caps: {}, flags: {}, dirty: false, enforced: false },
    { driver: "virtio-iommu", caps: {}, flags: {}, dirty: false, enforced: false },
  ] as { driver: DriverName; caps: Partial<UnitCapabilities>; flags: Partial<DeviceFlags>; dirty: boolean; enforced: boolean }[])(
    "$driver $caps $flags: allocates dirty-tracking $dirty, enforcing coherency $enforced",
    ({ driver, caps, flags, dirty, enforced }) => {
      const fx = build();
      const unit = fx.unit(driver, caps);
      const { group } = fx.groupWith(unit.id, [flags]);
      const r = unwrap(attachWith(fx, fx.container().id, group.id, "qemu"));
      expect(r.attempts).toEqual([okAttempt(r.domainId, true)]);
      expect(fx.domainNow(r.domainId)).toMatchObject({
        auto: true, search: "qemu",
        config: { enforceCacheCoherency: enforced, dirtyTracking: dirty, nestParent: false },
      });
    },
  );

  it("walks only the page tables QEMU allocated, newest first; the kernel policy never tries them, nor QEMU the kernel's", () => {
    const fx = build();
    const [u1, u2, u3] = units(fx, "arm-smmu-v3", 3);
    const ioas = fx.container();
    const q1 = unwrap(attachWith(fx, ioas.id, u1!.group.id, "qemu")).domainId;
    const q2 = unwrap(attachWith(fx, ioas.id, u2!.group.id, "qemu")).domainId;
    const k1 = unwrap(attachWith(fx, ioas.id, fx.groupWith(u1!.unit.id).group.id, "kernel"));
    // The kernel's search allocated for u1 although q1 would fit: q1 is a user page table to it.
    expect(k1).toMatchObject({ allocated: true, attempts: [okAttempt(k1.domainId, true)] });
    const q = unwrap(attachWith(fx, ioas.id, u3!.group.id, "qemu"));
    expect(q.attempts.map((a) => [a.domainId, a.reason])).toEqual([[q2, "different-instance"], [q1, "different-instance"], [q.domainId, null]]);
    // QEMU on u1 again: its newest page table (on u3) refuses, then q1 takes the group; k1 is never tried.
    const again = unwrap(attachWith(fx, ioas.id, fx.groupWith(u1!.unit.id).group.id, "qemu"));
    expect(again.attempts.map((a) => [a.domainId, a.reason])).toEqual([[q.domainId, "different-instance"], [q2, "different-instance"], [q1, null]]);
    expect(again).toMatchObject({ domainId: q1, allocated: false });
  });

  it("a page table QEMU allocated and could not attach is freed again; the error is the attach's (mock: a no-dirty device in the group)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const ioas = fx.container();
    const dirty = unwrap(attachWith(fx, ioas.id, fx.groupWith(unit.id).group.id, "qemu")).domainId;
    expect(fx.domainNow(dirty)?.config.dirtyTracking).toBe(true);
    // QEMU asks the group's device (the first): it reports dirty tracking; the second cannot.
    const { group, devices } = fx.groupWith(unit.id, [{}, { noDirty: true }]);
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(attachWith(fx, ioas.id, group.id, "qemu"));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "dirty-tracking", ids: { groupId: group.id, deviceId: devices[1]!.id } });
    const attempts = attemptsOf(error);
    expect(attempts.map((a) => [a.allocated, a.freed, a.reason])).toEqual([[false, false, "dirty-tracking"], [true, true, "dirty-tracking"]]);
    expect(attempts[0]!.domainId).toBe(dirty);
    expect(fx.domainNow(attempts[1]!.domainId)).toBeUndefined();
    expect(snapshot(fx.model)).toBe(before);
    // The kernel's search allocates with flags 0: the same group attaches.
    expect(unwrap(attachWith(fx, ioas.id, group.id, "kernel")).allocated).toBe(true);
  });

  it("detach frees QEMU's page table with its last group (iommufd_cdev_autodomains_put)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const ioas = fx.container();
    const { group } = fx.groupWith(unit.id);
    const d = unwrap(attachWith(fx, ioas.id, group.id, "qemu")).domainId;
    expect(unwrap(fx.op(containerDetach, ANON, ioas.id, group.id))).toEqual({ groupId: group.id, domainId: group.defaultDomainId, freedDomainId: d });
    expect(fx.domainNow(d)).toBeUndefined();
  });
});

describe("a group attached elsewhere (§5 K9)", () => {
  it("on a domain outside any container → EBUSY group-attached (VFIO and iommufd must first claim DMA ownership)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.groupWith(unit.id).group;
    const manual = fx.domain({ driver: "mock" });
    unwrap(fx.op(attachGroup, ANON, group.id, manual.id));
    fx.commit();
    for (const kind of ["iommufd", "type1"] as ContainerKind[]) {
      const ct = fx.container(kind);
      const error = errorOf(fx.op(containerAttach, ANON, ct.id, group.id));
      expect(error).toEqual({
        errno: "EBUSY", reason: "group-attached", ids: { groupId: group.id, domainId: manual.id },
        detail: `group ${group.name} is attached to domain ${manual.id}; detach it first`,
      });
      expect(fx.model.domainsOf(ct.id)).toEqual([]);
    }
  });

  it("through another IOAS, to an IOAS: a replace (VFIO cdev attach → iommufd_device_replace); the automatic domain left empty is freed", () => {
    const fx = build();
    const [u1, u2] = units(fx, "arm-smmu-v3", 2);
    const c1 = fx.container();
    const c2 = fx.container();
    const stay = unwrap(fx.op(containerAttach, ANON, c2.id, u1!.group.id)).domainId;
    const { group } = fx.groupWith(u1!.unit.id);
    const old = unwrap(fx.op(containerAttach, ANON, c1.id, group.id)).domainId;
    unwrap(fx.op(containerAttach, ANON, c1.id, u2!.group.id));
    fx.commit();
    const r = unwrap(fx.op(containerAttach, ANON, c2.id, group.id));
    expect(r).toEqual({ groupId: group.id, domainId: stay, allocated: false, attempts: [okAttempt(stay, false)] });
    expect(fx.domainNow(old)).toBeUndefined();
    expect(fx.events()).toEqual([expect.objectContaining({ op: "container-attach", containerId: c2.id, groupId: group.id, domainId: stay, errno: null })]);
  });

  it("a failed replace leaves the group where it was (iommufd_device_replace: no change on failure)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const c1 = fx.container();
    const c2 = fx.container();
    const { group, devices } = fx.groupWith(unit.id);
    const old = unwrap(fx.op(containerAttach, ANON, c1.id, group.id)).domainId;
    fx.fault({ deviceId: devices[0]!.id, errno: "ENOMEM" });
    fx.commit();
    const before = snapshot(fx.model, { withFaults: false });
    const error = errorOf(fx.op(containerAttach, ANON, c2.id, group.id));
    expect(error).toMatchObject({ errno: "ENOMEM", reason: "injected-fault" });
    expect(attemptsOf(error)).toEqual([expect.objectContaining({ allocated: true, freed: true, errno: "ENOMEM" })]);
    expect(snapshot(fx.model, { withFaults: false })).toBe(before);
    expect(fx.groupNow(group.id).domainId).toBe(old);
  });

  it.each([
    { from: "type1", to: "type1", errno: "EINVAL", reason: "in-other-container" },
    { from: "iommufd", to: "type1", errno: "EBUSY", reason: "group-attached" },
    { from: "type1", to: "iommufd", errno: "EBUSY", reason: "group-attached" },
  ] as { from: ContainerKind; to: ContainerKind; errno: string; reason: string }[])(
    "through a $from container, to a $to container → $errno $reason",
    ({ from, to, errno, reason }) => {
      const fx = build();
      const unit = fx.unit("mock");
      const { group } = fx.groupWith(unit.id);
      const there = fx.container(from, "there");
      const d = unwrap(fx.op(containerAttach, ANON, there.id, group.id)).domainId;
      const here = fx.container(to);
      fx.commit();
      const before = snapshot(fx.model);
      const error = errorOf(fx.op(containerAttach, ANON, here.id, group.id));
      expect(error).toEqual(reason === "in-other-container"
        ? { errno, reason, detail: `group ${group.name} is attached through container there; detach it there first`, ids: { groupId: group.id, containerId: there.id } }
        : { errno, reason, detail: `group ${group.name} is attached through ${from} container there; detach it first`, ids: { groupId: group.id, domainId: d } });
      expect(snapshot(fx.model)).toBe(before);
    },
  );
});

describe("VFIO type1: vfio_iommu_type1_attach_group", () => {
  it("the first group gets a new domain (flags 0), kept in the container; coherency is what the domain op says once attached", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd", { snoopControl: true, dirtyTracking: true });
    const { group } = fx.groupWith(unit.id);
    const ct = fx.container("type1");
    const r = unwrap(fx.op(containerAttach, ANON, ct.id, group.id));
    expect(r).toEqual({ groupId: group.id, domainId: r.domainId, allocated: true, attempts: [okAttempt(r.domainId, true)] });
    expect(fx.domainNow(r.domainId)).toMatchObject({
      type: "paging", auto: true, search: "kernel", containerId: ct.id, unitId: unit.id,
      config: { enforceCacheCoherency: true, dirtyTracking: false, nestParent: false },
    });
  });

  // domain->enforce_cache_coherency = ops->enforce_cache_coherency(domain),
  // asked after the group is attached.
  it.each([
    { driver: "intel-vtd", caps: { snoopControl: true }, flags: {}, enforced: true },
    { driver: "intel-vtd", caps: { snoopControl: false }, flags: {}, enforced: false },
    { driver: "arm-smmu-v3", caps: {}, flags: { canwbs: true }, enforced: true },
    { driver: "arm-smmu-v3", caps: {}, flags: { canwbs: false }, enforced: false },
    { driver: "amd-iommu", caps: {}, flags: {}, enforced: true },
    { driver: "arm-smmu", caps: { snoopControl: true }, flags: {}, enforced: false },
    { driver: "apple-dart", caps: {}, flags: {}, enforced: false },
    { driver: "virtio-iommu", caps: {}, flags: {}, enforced: false },
    { driver: "mock", caps: {}, flags: {}, enforced: false },
  ] as { driver: DriverName; caps: Partial<UnitCapabilities>; flags: Partial<DeviceFlags>; enforced: boolean }[])(
    "$driver $caps $flags: the new domain enforces coherency: $enforced",
    ({ driver, caps, flags, enforced }) => {
      const fx = build();
      const unit = fx.unit(driver, caps);
      const { group } = fx.groupWith(unit.id, [flags]);
      const r = unwrap(fx.op(containerAttach, ANON, fx.container("type1").id, group.id));
      expect(fx.domainNow(r.domainId)?.config.enforceCacheCoherency).toBe(enforced);
    },
  );

  it("a later group of the same driver and coherency moves to the existing domain; its new domain is freed", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const ct = fx.container("type1");
    const first = unwrap(fx.op(containerAttach, ANON, ct.id, fx.groupWith(unit.id).group.id)).domainId;
    const { group } = fx.groupWith(unit.id);
    fx.commit();
    const r = unwrap(fx.op(containerAttach, ANON, ct.id, group.id));
    const fresh = r.attempts[0]!.domainId;
    expect(r).toEqual({
      groupId: group.id, domainId: first, allocated: false,
      attempts: [okAttempt(fresh, true, true), okAttempt(first, false)],
    });
    expect(fx.domainNow(fresh)).toBeUndefined();
    expect(fx.model.domainsOf(ct.id).map((d) => d.id)).toEqual([first]);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "container-attach", domainId: first, errno: null })]);
  });

  it("domains of another driver or another coherency are not tried; the new domain is kept", () => {
    const fx = build();
    const snoop = fx.unit("intel-vtd", { snoopControl: true });
    const nosnoop = fx.unit("intel-vtd", { snoopControl: false });
    const amd = fx.unit("amd-iommu");
    const ct = fx.container("type1");
    const coherent = unwrap(fx.op(containerAttach, ANON, ct.id, fx.groupWith(snoop.id).group.id)).domainId;
    const other = unwrap(fx.op(containerAttach, ANON, ct.id, fx.groupWith(amd.id).group.id));
    expect(other.attempts).toEqual([okAttempt(other.domainId, true)]);
    const r = unwrap(fx.op(containerAttach, ANON, ct.id, fx.groupWith(nosnoop.id).group.id));
    expect(r.attempts).toEqual([okAttempt(r.domainId, true)]);
    expect(fx.domainNow(r.domainId)?.config.enforceCacheCoherency).toBe(false);
    expect(fx.model.domainsOf(ct.id).map((d) => d.id)).toEqual([coherent, other.domainId, r.domainId]);
  });

  it("tries the container's domains newest first; a refusal re-attaches the new domain and goes on; none → the new one is kept", () => {
    const fx = build();
    const [u1, u2, u3] = units(fx, "arm-smmu-v3", 3);
    const ct = fx.container("type1");
    const d1 = unwrap(fx.op(containerAttach, ANON, ct.id, u1!.group.id)).domainId;
    const d2 = unwrap(fx.op(containerAttach, ANON, ct.id, u2!.group.id)).domainId;
    const r = unwrap(fx.op(containerAttach, ANON, ct.id, u3!.group.id));
    expect(r.attempts.map((a) => [a.domainId, a.allocated, a.freed, a.reason])).toEqual([
      [r.domainId, true, false, null],
      [d2, false, false, "different-instance"], [r.domainId, true, false, null],
      [d1, false, false, "different-instance"], [r.domainId, true, false, null],
    ]);
    expect(r.allocated).toBe(true);
    expect(fx.groupNow(u3!.group.id).domainId).toBe(r.domainId);
    // A second group on u1 finds d1 after d2 and the new d3 refused it.
    const back = unwrap(fx.op(containerAttach, ANON, ct.id, fx.groupWith(u1!.unit.id).group.id));
    expect(back.attempts.map((a) => [a.domainId === d1, a.reason])).toEqual([
      [false, null], [false, "different-instance"], [false, null], [false, "different-instance"], [false, null], [true, null],
    ]);
    expect(back).toMatchObject({ domainId: d1, allocated: false });
  });

  it("the new domain's attach failing is the answer; the domain is freed", () => {
    const fx = build();
    // VT-d takes a domain ID per domain on a unit: the existing domain holds
    // one, the second group's default domain the other (its second device
    // keeps it while the first moves), so the new domain finds none.
    const unit = fx.unit("intel-vtd", { domainIds: 2 });
    const ct = fx.container("type1");
    const first = unwrap(fx.op(containerAttach, ANON, ct.id, fx.groupWith(unit.id).group.id)).domainId;
    const { group } = fx.groupWith(unit.id, [{}, {}]);
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(containerAttach, ANON, ct.id, group.id));
    expect(error).toMatchObject({ errno: "ENOSPC", reason: "domain-ids-exhausted", ids: { groupId: group.id } });
    expect(error.ids).not.toHaveProperty("domainId");
    expect(attemptsOf(error)).toEqual([expect.objectContaining({ allocated: true, freed: true, errno: "ENOSPC" })]);
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.domainsOf(ct.id).map((d) => d.id)).toEqual([first]);
  });

  it("arm-smmu takes the context bank at the new domain's first attach (arm_smmu_init_domain_context): ENOSPC there is the answer, the domain freed", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu", { domainIds: 1 });
    const { group } = fx.groupWith(unit.id); // its default domain holds the only context bank
    const ct = fx.container("type1");
    const error = errorOf(fx.op(containerAttach, ANON, ct.id, group.id));
    expect(error).toMatchObject({ errno: "ENOSPC", reason: "context-banks-exhausted" });
    expect(attemptsOf(error)).toEqual([expect.objectContaining({ allocated: true, freed: true, errno: "ENOSPC", reason: "context-banks-exhausted" })]);
    expect(fx.model.domainsOf(ct.id)).toEqual([]);
  });

  it("detach frees the domain with its last group (vfio_iommu_type1_detach_group)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const ct = fx.container("type1");
    const a = fx.groupWith(unit.id).group;
    const b = fx.groupWith(unit.id).group;
    const d = unwrap(fx.op(containerAttach, ANON, ct.id, a.id)).domainId;
    expect(unwrap(fx.op(containerAttach, ANON, ct.id, b.id)).domainId).toBe(d);
    expect(unwrap(fx.op(containerDetach, ANON, ct.id, a.id)).freedDomainId).toBeNull();
    expect(unwrap(fx.op(containerDetach, ANON, ct.id, b.id)).freedDomainId).toBe(d);
    expect(fx.model.domainsOf(ct.id)).toEqual([]);
  });

  it("the same group again changes nothing (§4 D1; VFIO answers EINVAL)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group } = fx.groupWith(unit.id);
    const ct = fx.container("type1");
    const first = unwrap(fx.op(containerAttach, ANON, ct.id, group.id));
    fx.commit();
    expect(unwrap(fx.op(containerAttach, ANON, ct.id, group.id))).toEqual({ groupId: group.id, domainId: first.domainId, allocated: false, attempts: [] });
  });

  it("the qemu policy is refused: EINVAL invalid-argument (VFIO chooses a type1 container's domains)", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group } = fx.groupWith(unit.id);
    const ct = fx.container("type1", "vfio0");
    fx.commit();
    expect(errorOf(attachWith(fx, ct.id, group.id, "qemu"))).toEqual({
      errno: "EINVAL", reason: "invalid-argument", ids: { containerId: ct.id },
      detail: "container vfio0 is a VFIO type1 container: VFIO chooses its domains, there is no qemu policy",
    });
    expect(fx.events()).toEqual([expect.objectContaining({ op: "container-attach", errno: "EINVAL", reason: "invalid-argument" })]);
  });

  it("a client cannot allocate a domain into a type1 container: EINVAL invalid-argument", () => {
    const fx = build();
    const ct = fx.container("type1", "vfio0");
    const before = snapshot(fx.model);
    expect(errorOf(createDomain(fx.model, { type: "paging", driver: "mock", containerId: ct.id }))).toEqual({
      errno: "EINVAL", reason: "invalid-argument", ids: { containerId: ct.id },
      detail: "container vfio0 is a VFIO type1 container; only its own search allocates its domains",
    });
    expect(snapshot(fx.model)).toBe(before);
  });

  describe("with a driver of the test's own", () => {
    /** A non-binding driver whose attach_dev refuses the domains `refuse` names, with a hard ENOSPC. */
    function picky(refuse: (ctx: AttachContext, call: number) => boolean): DriverTable {
      let calls = 0;
      const driver: IommuDriver = {
        name: "picky",
        defaults: { addressWidth: 48, pageSizes: [4096], snoopControl: true, dirtyTracking: false, nesting: false, domainIds: 64, cpuPageSize: 4096, isolatedMsi: true, coherentWalk: true, firstStage: true, bypass: true },
        allocFlags: { dirtyTracking: false, nestParent: false },
        attachDev: (ctx): Result<void> => (refuse(ctx, ++calls) ? fail("domain-ids-exhausted", `picky refuses domain ${ctx.domain.id}`) : OK),
      };
      return { picky: driver };
    }

    function world(drivers: DriverTable) {
      const model = new Model(drivers);
      const unit = unwrap(createUnit(model, { name: "u", driver: "picky" }));
      const groupOn = (name: string) => {
        const group = unwrap(createGroup(model, { name, unitId: unit.id }));
        unwrap(createDevice(model, { name: `${name}-dev`, groupId: group.id }));
        return group;
      };
      const ct = unwrap(createContainer(model, { name: "vfio", kind: "type1" }));
      const attach = (groupId: number) => perform(model, (m) => containerAttach(m, ANONYMOUS, ct.id, groupId)).result;
      return { model, groupOn, ct, attach };
    }

    it("any errno from an existing domain, not only EINVAL, re-attaches the new domain and goes on", () => {
      let existing = 0;
      const { model, groupOn, ct, attach } = world(picky((ctx) => ctx.domain.id === existing));
      existing = unwrap(attach(groupOn("g0").id)).domainId;
      const r = unwrap(attach(groupOn("g1").id));
      expect(r.attempts.map((a) => [a.domainId === existing, a.allocated, a.errno])).toEqual([
        [false, true, null], [true, false, "ENOSPC"], [false, true, null],
      ]);
      expect(r.allocated).toBe(true);
      expect(model.domainsOf(ct.id).map((d) => d.id)).toEqual([existing, r.domainId]);
    });

    it("a failed re-attach of the new domain is the answer: the new domain is freed, the group back where it was", () => {
      // Calls: g0's attach (1); g1: new domain (2), the existing one (3, refused), the new one again (4, refused).
      const { model, groupOn, ct, attach } = world(picky((_ctx, call) => call === 3 || call === 4));
      const existing = unwrap(attach(groupOn("g0").id)).domainId;
      const g1 = groupOn("g1");
      model.takeChanges();
      const before = snapshot(model);
      const error = errorOf(attach(g1.id));
      expect(error).toMatchObject({ errno: "ENOSPC", reason: "domain-ids-exhausted", ids: { groupId: g1.id } });
      expect(error.ids).not.toHaveProperty("domainId");
      expect(attemptsOf(error).map((a) => [a.domainId === existing, a.allocated, a.freed, a.errno])).toEqual([
        [false, true, true, null], [true, false, false, "ENOSPC"], [false, true, true, "ENOSPC"],
      ]);
      expect(snapshot(model)).toBe(before);
    });
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

  it("a replace away from a search's domain frees it, whichever search allocated it", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const manual = fx.domain({ driver: "mock" });
    for (const [kind, policy] of [["iommufd", "kernel"], ["iommufd", "qemu"], ["type1", "kernel"]] as [ContainerKind, SearchPolicy][]) {
      const { group } = fx.groupWith(unit.id);
      const d = unwrap(attachWith(fx, fx.container(kind).id, group.id, policy)).domainId;
      unwrap(fx.op(replaceDomain, ANON, group.id, manual.id));
      expect(fx.domainNow(d), `${kind} ${policy}`).toBeUndefined();
    }
  });
});
