// Kernel-version profiles (src/core/profiles.ts): for every refusal whose code
// a kernel changed, what each profile's kernel returns (the raw errno), how
// the v6.2 contract classifies it and whether it is soft; and the state a
// group attach leaves when it fails part-way on a kernel without the unwind
// (before v6.5, dcf40ed3a20d): the earlier devices on the new domain, the
// group where it was.
import { describe, expect, it } from "vitest";
import { containerAttach, containerDetach } from "../../src/core/container-attach.js";
import { groupCompatibility } from "../../src/core/compat.js";
import type { ErrnoName } from "../../src/core/errno.js";
import { attachGroup, claimOwnership, detachGroup, replaceDomain } from "../../src/core/group-moves.js";
import { deleteDomain, updateHost } from "../../src/core/objects.js";
import { outcomeOf } from "../../src/core/outcome.js";
import { KERNEL_PROFILE_NAMES, KERNEL_PROFILES, type KernelProfileName } from "../../src/core/profiles.js";
import { isSoft, type ErrnoError, type Result } from "../../src/core/result.js";
import type { Reason } from "../../src/core/reasons.js";
import { ANON, build, errorOf, snapshot, unwrap, type Fixture } from "./fixtures.js";

function onProfile(name: KernelProfileName): Fixture {
  const f = build();
  unwrap(updateHost(f.model, { kernelProfile: name }));
  f.commit();
  return f;
}

/** One refusal each profile may answer differently, and the attach that meets it. */
interface Rule {
  readonly rule: string;
  readonly reason: Reason;
  /** Today's detail (the profile adds the kernel's code after it). */
  readonly detail: (ids: { domain: number; device: string; unit: string; other: string }) => string;
  readonly attach: (f: Fixture) => { result: Result<unknown>; ids: { domain: number; device: string; unit: string; other: string } };
}

/** Attach a one-device group behind `unit` to `domain`. */
function attachOne(f: Fixture, unitId: number, domainId: number) {
  const { group, devices } = f.groupWith(unitId);
  const unit = f.model.get("unit", unitId)!;
  return { result: f.op(attachGroup, ANON, group.id, domainId), device: devices[0]!.name, unit: unit.name };
}

const RULES: Record<string, Rule> = {
  "intel-vtd snoop-control": {
    rule: "intel-vtd snoop-control", reason: "snoop-control",
    detail: ({ domain, unit }) => `domain ${domain} enforces cache coherency (force_snooping); ${unit} has no snoop control`,
    attach: (f) => {
      const unit = f.unit("intel-vtd", { snoopControl: false });
      const domain = f.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } });
      const r = attachOne(f, unit.id, domain.id);
      return { result: r.result, ids: { domain: domain.id, device: r.device, unit: r.unit, other: "" } };
    },
  },
  "intel-vtd address-width": {
    rule: "intel-vtd address-width", reason: "address-width",
    detail: ({ domain, unit }) => `domain ${domain} is 48-bit; ${unit} translates 39 bits`,
    attach: (f) => {
      const unit = f.unit("intel-vtd", { addressWidth: 39 });
      const domain = f.domain({ driver: "intel-vtd", config: { addressWidth: 48 } });
      const r = attachOne(f, unit.id, domain.id);
      return { result: r.result, ids: { domain: domain.id, device: r.device, unit: r.unit, other: "" } };
    },
  },
  "arm-smmu-v3 different-instance": {
    rule: "arm-smmu-v3 different-instance", reason: "different-instance",
    detail: ({ domain, device, unit, other }) => `domain ${domain} is finalised on ${other}, ${device} is behind ${unit}`,
    attach: (f) => {
      const other = f.unit("arm-smmu-v3");
      const unit = f.unit("arm-smmu-v3");
      const domain = f.domain({ unitId: other.id });
      const r = attachOne(f, unit.id, domain.id);
      return { result: r.result, ids: { domain: domain.id, device: r.device, unit: r.unit, other: other.name } };
    },
  },
  "virtio-iommu different-instance": {
    rule: "virtio-iommu different-instance", reason: "different-instance",
    detail: ({ domain, device, unit, other }) => `domain ${domain} is finalised on ${other}, ${device} is behind ${unit}`,
    attach: (f) => {
      const other = f.unit("virtio-iommu");
      const unit = f.unit("virtio-iommu");
      const domain = f.domain({ unitId: other.id });
      const r = attachOne(f, unit.id, domain.id);
      return { result: r.result, ids: { domain: domain.id, device: r.device, unit: r.unit, other: other.name } };
    },
  },
  "virtio-iommu granule-too-large": {
    rule: "virtio-iommu granule-too-large", reason: "granule-too-large",
    detail: ({ domain, unit }) => `${unit} granule 65536 exceeds the CPU page size 4096 (domain ${domain})`,
    attach: (f) => {
      const unit = f.unit("virtio-iommu", { pageSizes: [65536], cpuPageSize: 4096 });
      const domain = f.domain({ driver: "virtio-iommu" });
      const r = attachOne(f, unit.id, domain.id);
      return { result: r.result, ids: { domain: domain.id, device: r.device, unit: r.unit, other: "" } };
    },
  },
  // A control: SMMUv2 returned EINVAL for another SMMU's domain before the
  // series too (arm_smmu_attach_dev; the series only dropped its dev_err).
  "arm-smmu different-instance": {
    rule: "arm-smmu different-instance", reason: "different-instance",
    detail: ({ domain, device, unit, other }) => `domain ${domain} is finalised on ${other}, ${device} is behind ${unit}`,
    attach: (f) => {
      const other = f.unit("arm-smmu");
      const unit = f.unit("arm-smmu");
      // SMMUv2 finalises at the first attach: a group behind `other` binds the domain there.
      const domain = f.domain({ driver: "arm-smmu" });
      if (!attachOne(f, other.id, domain.id).result.ok) throw new Error("setup attach failed");
      f.commit(); // the setup's event is not the one the row checks
      const r = attachOne(f, unit.id, domain.id);
      return { result: r.result, ids: { domain: domain.id, device: r.device, unit: r.unit, other: other.name } };
    },
  },
};

/** profile × rule: the raw errno that kernel returns, the errno the contract classifies it as, soft. */
const TABLE: [KernelProfileName, string, ErrnoName, ErrnoName, boolean][] = [
  ["6.1", "intel-vtd snoop-control", "EOPNOTSUPP", "ENODEV", false],
  ["6.1", "intel-vtd address-width", "EFAULT", "ENODEV", false],
  ["6.1", "arm-smmu-v3 different-instance", "ENXIO", "ENODEV", false],
  ["6.1", "virtio-iommu different-instance", "EXDEV", "ENODEV", false],
  ["6.1", "virtio-iommu granule-too-large", "EINVAL", "EINVAL", true],
  ["6.1", "arm-smmu different-instance", "EINVAL", "EINVAL", true],
  ["6.2", "intel-vtd snoop-control", "EINVAL", "EINVAL", true],
  ["6.2", "intel-vtd address-width", "EINVAL", "EINVAL", true],
  ["6.2", "arm-smmu-v3 different-instance", "EINVAL", "EINVAL", true],
  ["6.2", "virtio-iommu different-instance", "EINVAL", "EINVAL", true],
  ["6.2", "virtio-iommu granule-too-large", "ENODEV", "ENODEV", false],
  ["6.2", "arm-smmu different-instance", "EINVAL", "EINVAL", true],
  ["6.5+", "intel-vtd snoop-control", "EINVAL", "EINVAL", true],
  ["6.5+", "intel-vtd address-width", "EINVAL", "EINVAL", true],
  ["6.5+", "arm-smmu-v3 different-instance", "EINVAL", "EINVAL", true],
  ["6.5+", "virtio-iommu different-instance", "EINVAL", "EINVAL", true],
  ["6.5+", "virtio-iommu granule-too-large", "ENODEV", "ENODEV", false],
  ["6.5+", "arm-smmu different-instance", "EINVAL", "EINVAL", true],
];

describe("the profile table", () => {
  it("has one row per profile and rule", () => {
    expect(TABLE.map(([p, r]) => `${p} ${r}`).sort())
      .toEqual(KERNEL_PROFILE_NAMES.flatMap((p) => Object.keys(RULES).map((r) => `${p} ${r}`)).sort());
  });

  it("the default is today's rules: no code of its own, and the unwind", () => {
    expect(KERNEL_PROFILES["6.5+"]).toMatchObject({ codes: [], unwindsPartialAttach: true });
    expect(KERNEL_PROFILES["6.2"]).toMatchObject({ codes: [], unwindsPartialAttach: false });
    expect(KERNEL_PROFILES["6.1"].unwindsPartialAttach).toBe(false);
  });

  it.each(TABLE)("%s %s: the kernel returns %s, the contract classifies it %s, soft %s", (profile, rule, raw, errno, soft) => {
    const f = onProfile(profile);
    const { result, ids } = RULES[rule]!.attach(f);
    const error = errorOf(result);
    const changed = KERNEL_PROFILES[profile].codes.length > 0 && raw !== (rule.endsWith("granule-too-large") ? "ENODEV" : "EINVAL");
    expect(error).toMatchObject({ errno, reason: RULES[rule]!.reason });
    expect(error.driverErrno).toBe(raw === errno ? undefined : raw);
    expect(isSoft(error)).toBe(soft);
    expect(error.detail).toBe(RULES[rule]!.detail(ids) + (changed ? `; Linux ${profile} returns ${raw}` : ""));
    // The event log says the same: classified errno, soft judged from the stored columns, the raw code in the detail.
    // One attempt (the objects the rule set up are topology events before it).
    const [event, ...more] = f.events().filter((e) => e.kind == null);
    expect(more).toEqual([]);
    expect(event).toMatchObject({ op: "attach-group", errno, soft, reason: RULES[rule]!.reason, detail: error.detail });
  });

  it("an injected fault keeps the code it was injected with under every profile", () => {
    for (const profile of KERNEL_PROFILE_NAMES) {
      const f = onProfile(profile);
      const unit = f.unit("arm-smmu-v3");
      const domain = f.domain({ unitId: unit.id });
      const { group } = f.groupWith(unit.id);
      f.fault({ unitId: unit.id, errno: "ENXIO" });
      const error = errorOf(f.op(attachGroup, ANON, group.id, domain.id));
      expect(error, profile).toMatchObject({ errno: "ENODEV", driverErrno: "ENXIO", reason: "injected-fault", detail: `injected ENXIO on ${unit.name}` });
    }
  });
});

/** A three-device group behind an SMMUv3, a domain finalised there, and a fault on the second device. */
function partial(profile: KernelProfileName) {
  const f = onProfile(profile);
  const unit = f.unit("arm-smmu-v3");
  const { group, devices } = f.groupWith(unit.id, [{}, {}, {}]);
  const target = f.domain({ unitId: unit.id, name: "target" });
  f.fault({ deviceId: devices[1]!.id, errno: "EIO" });
  f.commit();
  return { f, unit, group, devices, target };
}

const strandedOn = (f: Fixture, ids: readonly number[]) => ids.map((id) => f.model.get("device", id)!.strandedOnDomainId);

describe("a group attach that fails on its second device", () => {
  it.each(["6.1", "6.2"] as const)("%s (no unwind): the first device stays on the new domain, the group and the others where they were", (profile) => {
    const { f, group, devices, target } = partial(profile);
    const ids = devices.map((d) => d.id);
    const error = errorOf(f.op(attachGroup, ANON, group.id, target.id));
    const note = `no unwind before Linux 6.5: the attach leaves device ${ids[0]} on domain ${target.id}`;
    expect(error).toMatchObject({
      errno: "ENODEV", driverErrno: "EIO", reason: "injected-fault", detail: `injected EIO on ${devices[1]!.name}`,
      ids: { groupId: group.id, domainId: target.id, deviceId: ids[1] }, stranded: { domainId: target.id, deviceIds: [ids[0]] },
    });
    expect(outcomeOf(error).detail).toBe(`injected EIO on ${devices[1]!.name}; ${note}`);
    expect(f.groupNow(group.id).domainId).toBe(group.defaultDomainId);
    expect(strandedOn(f, ids)).toEqual([target.id, null, null]);
    expect(f.model.strandedDeviceCount(target.id)).toBe(1);
    const [event] = f.events();
    expect(event).toMatchObject({ op: "attach-group", errno: "ENODEV", reason: "injected-fault", detail: `injected EIO on ${devices[1]!.name}; ${note}` });
  });

  it("6.5+ (the unwind): nothing but the consumed fault and the event remains", () => {
    const { f, group, devices, target } = partial("6.5+");
    const before = snapshot(f.model, { withFaults: false });
    const error = errorOf(f.op(attachGroup, ANON, group.id, target.id));
    expect(error.stranded).toBeUndefined();
    expect(error.detail).toBe(`injected EIO on ${devices[1]!.name}`);
    expect(snapshot(f.model, { withFaults: false })).toBe(before);
  });

  it("a failure on the first device strands nothing, whatever the profile", () => {
    const f = onProfile("6.1");
    const unit = f.unit("arm-smmu-v3");
    const { group, devices } = f.groupWith(unit.id, [{}, {}]);
    const target = f.domain({ unitId: unit.id });
    f.fault({ deviceId: devices[0]!.id, errno: "EIO" });
    expect(errorOf(f.op(attachGroup, ANON, group.id, target.id)).stranded).toBeUndefined();
    expect(strandedOn(f, devices.map((d) => d.id))).toEqual([null, null]);
  });

  it("6.1: a binding driver's domain stays finalised on the instance the first device reached (6.5+ undoes it, §4 D12)", () => {
    for (const [profile, unitId] of [["6.1", true], ["6.5+", false]] as const) {
      const f = onProfile(profile);
      const unit = f.unit("arm-smmu-v3");
      const { group } = f.groupWith(unit.id, [{ canwbs: true }, { canwbs: false }]);
      const domain = f.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } });
      expect(errorOf(f.op(attachGroup, ANON, group.id, domain.id)).reason).toBe("cache-coherency");
      expect(f.domainNow(domain.id)!.unitId, profile).toBe(unitId ? unit.id : null);
    }
  });

  it("the stranded state is cleared by the group's next move that reaches every device", () => {
    const { f, group, devices, target } = partial("6.1");
    const ids = devices.map((d) => d.id);
    errorOf(f.op(attachGroup, ANON, group.id, target.id));
    expect(strandedOn(f, ids)).toEqual([target.id, null, null]);
    // The fault was consumed: the same attach now reaches every device.
    expect(unwrap(f.op(attachGroup, ANON, group.id, target.id))).toEqual({ groupId: group.id, domainId: target.id, changed: true });
    expect(strandedOn(f, ids)).toEqual([null, null, null]);
    expect(f.model.strandedDeviceCount(target.id)).toBe(0);
  });

  it("a detach while the group is on its default domain changes nothing, strands included (__iommu_group_set_domain returns early)", () => {
    const { f, group, devices, target } = partial("6.1");
    const ids = devices.map((d) => d.id);
    errorOf(f.op(attachGroup, ANON, group.id, target.id));
    expect(unwrap(f.op(detachGroup, ANON, group.id, group.defaultDomainId))).toMatchObject({ changed: false });
    expect(strandedOn(f, ids)).toEqual([target.id, null, null]);
    // A move to another domain reaches every device and clears it.
    const other = f.domain({ unitId: f.groupNow(group.id).unitId });
    unwrap(f.op(replaceDomain, ANON, group.id, other.id));
    expect(strandedOn(f, ids)).toEqual([null, null, null]);
  });

  it("an automatic domain only strands keep is freed when the strands are cleared (iommufd frees it with its last user)", () => {
    const f = onProfile("6.1");
    const unit = f.unit("arm-smmu-v3");
    const ioas = f.container();
    const holder = f.groupWith(unit.id).group;
    const auto = unwrap(f.op(containerAttach, ANON, ioas.id, holder.id)).domainId;
    const { group, devices } = f.groupWith(unit.id, [{}, {}]);
    f.fault({ deviceId: devices[1]!.id, errno: "EIO" });
    errorOf(f.op(attachGroup, ANON, group.id, auto));
    expect(strandedOn(f, devices.map((d) => d.id))).toEqual([auto, null]);
    unwrap(f.op(containerDetach, ANON, ioas.id, holder.id));
    expect(f.domainNow(auto)).toMatchObject({ auto: true }); // a device is still on it
    unwrap(f.op(replaceDomain, ANON, group.id, f.domain({ unitId: unit.id }).id));
    expect(f.domainNow(auto)).toBeUndefined();
  });

  it("a domain devices are stranded on cannot be deleted (EBUSY domain-in-use)", () => {
    const { f, group, target } = partial("6.1");
    errorOf(f.op(attachGroup, ANON, group.id, target.id));
    const error = errorOf(f.op(deleteDomain, target.id));
    expect(error).toMatchObject({
      errno: "EBUSY", reason: "domain-in-use", ids: { domainId: target.id },
      detail: `domain ${target.id} still translates 1 device(s) a partial group attach left on it`,
    });
  });

  it("the dry run says what the attach would leave, and changes nothing (no fault consumed, nothing stranded)", () => {
    const { f, group, devices, target } = partial("6.1");
    const before = snapshot(f.model);
    const verdicts = unwrap(groupCompatibility(f.model, group.id, { limit: 100 })).verdicts;
    expect(verdicts.find((v) => v.domainId === target.id)).toMatchObject({
      compatible: false, errno: "ENODEV", reason: "injected-fault",
      detail: `injected EIO on ${devices[1]!.name}; no unwind before Linux 6.5: the attach leaves device ${devices[0]!.id} on domain ${target.id}`,
    });
    expect(snapshot(f.model)).toBe(before);
  });
});

describe("a first claim refused by the second device (6.1)", () => {
  it("the blocking domain goes with the claim's rollback, so the first device is not left on it (§4 D28)", () => {
    const f = onProfile("6.1");
    const unit = f.unit("intel-vtd");
    const { group, devices } = f.groupWith(unit.id, [{}, {}]);
    const fault = f.fault({ deviceId: devices[1]!.id, errno: "EIO", count: 2 });
    f.commit();
    const error = errorOf(f.op(claimOwnership, { owner: "vm" }, group.id));
    expect(error).toMatchObject({ errno: "ENODEV", driverErrno: "EIO", ids: { groupId: group.id, deviceId: devices[1]!.id } });
    expect(error.stranded).toBeUndefined();
    expect(error.ids).not.toHaveProperty("domainId");
    expect(f.groupNow(group.id)).toMatchObject({ owner: null, blockingDomainId: null });
    expect(strandedOn(f, devices.map((d) => d.id))).toEqual([null, null]);
    expect(f.model.get("fault", fault.id)?.remaining).toBe(1);
  });
});

describe("the container search under a profile", () => {
  /** A container whose automatic domain is finalised on one SMMU, and a group behind another. */
  function searchAcross(profile: KernelProfileName, driver: "arm-smmu-v3" | "virtio-iommu") {
    const f = onProfile(profile);
    const first = f.unit(driver);
    const second = f.unit(driver);
    const container = f.container();
    const { group: g1 } = f.groupWith(first.id);
    unwrap(f.op(containerAttach, ANON, container.id, g1.id));
    const { group, devices } = f.groupWith(second.id);
    f.commit();
    return { f, container, group, device: devices[0]!, first, second, auto: f.groupNow(g1.id).domainId };
  }

  it("6.5+: another SMMU's automatic domain is EINVAL, so the search moves on and allocates", () => {
    const { f, container, group, auto } = searchAcross("6.5+", "arm-smmu-v3");
    const found = unwrap(f.op(containerAttach, ANON, container.id, group.id));
    expect(found.allocated).toBe(true);
    expect(found.attempts.map((a) => [a.domainId, a.errno])).toEqual([[auto, "EINVAL"], [found.domainId, null]]);
  });

  it.each([["arm-smmu-v3", "ENXIO"], ["virtio-iommu", "EXDEV"]] as const)(
    "6.1: %s answers another instance's domain with %s, which the contract reads as ENODEV: the search ends there",
    (driver, raw) => {
      const { f, container, group, device, first, second, auto } = searchAcross("6.1", driver);
      const error = errorOf(f.op(containerAttach, ANON, container.id, group.id)) as ErrnoError & { attempts: unknown[] };
      const detail = `domain ${auto} is finalised on ${first.name}, ${device.name} is behind ${second.name}; Linux 6.1 returns ${raw}`;
      expect(error).toMatchObject({ errno: "ENODEV", driverErrno: raw, reason: "different-instance", detail });
      expect(error.attempts).toEqual([{ domainId: auto, allocated: false, freed: false, errno: "ENODEV", code: -19, soft: false, reason: "different-instance", detail }]);
      expect(f.groupNow(group.id).domainId).toBe(group.defaultDomainId);
    },
  );

  it("6.1: the virtio granule refusal is EINVAL there, soft by the contract: the search's answer is a soft EINVAL", () => {
    const f = onProfile("6.1");
    const unit = f.unit("virtio-iommu", { pageSizes: [65536], cpuPageSize: 4096 });
    const container = f.container();
    const { group } = f.groupWith(unit.id);
    const error = errorOf(f.op(containerAttach, ANON, container.id, group.id));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "granule-too-large" });
    expect(error.driverErrno).toBeUndefined();
    expect(isSoft(error)).toBe(true);
    expect(error.detail).toMatch(/; Linux 6\.1 returns EINVAL$/);
  });

  it("6.1: devices a failed attach left on a domain the failed search frees again stay where they were (§4 D28)", () => {
    const f = onProfile("6.1");
    const unit = f.unit("arm-smmu-v3");
    // The first device is CANWBS: the domain iommufd allocates for it enforces coherency.
    const container = f.container();
    const { group, devices } = f.groupWith(unit.id, [{ canwbs: true }, { canwbs: false }]);
    f.commit();
    const error = errorOf(f.op(containerAttach, ANON, container.id, group.id)) as ErrnoError & { attempts: { domainId: number; freed: boolean; detail: string | null }[] };
    expect(error.reason).toBe("cache-coherency");
    expect(error.stranded).toBeUndefined();
    const [tried] = error.attempts;
    expect(tried).toMatchObject({ freed: true, detail: `domain ${tried!.domainId} enforces cache coherency; ${devices[1]!.name} lacks CANWBS` });
    expect(f.domainNow(tried!.domainId)).toBeUndefined();
    expect(strandedOn(f, devices.map((d) => d.id))).toEqual([null, null]);
    // The same attach to a domain that outlives it does leave the first device there.
    const kept = f.domain({ unitId: unit.id, config: { enforceCacheCoherency: true } });
    expect(errorOf(f.op(attachGroup, ANON, group.id, kept.id)).stranded).toEqual({ domainId: kept.id, deviceIds: [devices[0]!.id] });
    expect(strandedOn(f, devices.map((d) => d.id))).toEqual([kept.id, null]);
  });
});
