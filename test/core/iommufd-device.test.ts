// iommufd device objects (drivers/iommu/iommufd/device.c, through VFIO's
// device cdev): bind claims the group's DMA ownership per device
// (iommu_device_claim_dma_owner, refcounted for one owner) after the
// coherency and MSI-isolation preconditions; attach moves the group for its
// first device and joins the others to the same domain
// (iommufd_hw_pagetable_attach); replace moves the group and all its
// attached devices; the last detach returns the group to its blocking
// domain; the last unbind releases it to its default domain.
import { describe, expect, it } from "vitest";
import type { Caller } from "../../src/core/caller.js";
import { containerAttach } from "../../src/core/container-attach.js";
import type { Device, Group } from "../../src/core/entities.js";
import { attachGroup, claimOwnership, detachGroup, releaseOwnership, replaceDomain } from "../../src/core/group-moves.js";
import { bindHostDriver } from "../../src/core/host-driver.js";
import {
  attachIommufd, bindIommufd, detachIommufd, replaceIommufd, unbindIommufd,
  type AttachTarget, type IommufdParams,
} from "../../src/core/iommufd-device.js";
import { createDomain, deleteDevice, updateHost, updateUnit } from "../../src/core/objects.js";
import { attachPasid, detachPasid } from "../../src/core/pasid.js";
import type { Reason } from "../../src/core/reasons.js";
import { isSoft, type ErrnoError } from "../../src/core/result.js";
import { setContainer, unsetContainer } from "../../src/core/vfio-group.js";
import { DRIVER_NAMES, type DriverName } from "../../src/drivers/index.js";
import { ANON, as, build, errorOf, snapshot, unwrap, type Fixture } from "./fixtures.js";

const VMM = as("vmm");
const OTHER = as("other");
const ADMIN: Caller = { owner: "ops", admin: true };
const UNSAFE: IommufdParams = { allowUnsafeInterrupts: true };

/** A mock unit with a group of `n` devices, two paging domains and a container. */
function setup(n = 2, flags: { requiresIdentity?: boolean }[] = []) {
  const fx = build();
  const unit = fx.unit("mock");
  const { group, devices } = fx.groupWith(unit.id, Array.from({ length: n }, (_, i) => flags[i] ?? {}));
  const domain = fx.domain({ driver: "mock" });
  const other = fx.domain({ driver: "mock" });
  const container = fx.container();
  return { fx, unit, group, devices, domain, other, container };
}
type Setup = ReturnType<typeof setup>;

function bind(fx: Fixture, caller: Caller, device: Device, params?: IommufdParams) {
  return unwrap(fx.op(bindIommufd, caller, device.id, params));
}

function attach(fx: Fixture, caller: Caller, device: Device, target: AttachTarget) {
  return unwrap(fx.op(attachIommufd, caller, device.id, target));
}

function boundDomain(fx: Fixture, device: Device): number | null | undefined {
  return fx.model.iommufdDeviceOf(device.id)?.domainId;
}

/** The group's blocking domain (allocated by the first claim). */
function blocking(fx: Fixture, group: Group): number {
  return fx.groupNow(group.id).blockingDomainId!;
}

/** A refusal changes nothing but its event (and consumed faults): the error, checked against the catalogue. */
function refused(fx: Fixture, run: () => { ok: boolean }, errno: string, reason: Reason): ErrnoError {
  fx.commit();
  const before = snapshot(fx.model);
  const error = errorOf(run() as never);
  expect(error).toMatchObject({ errno, reason });
  expect(snapshot(fx.model)).toBe(before);
  return error;
}

describe("bind (iommufd_device_bind)", () => {
  it("claims the group: it moves to its blocking domain (allocated once), owned by the client; the device is bound, not attached; logged", () => {
    const { fx, group, devices: [a] } = setup();
    fx.commit();
    const r = bind(fx, VMM, a!);
    expect(r).toEqual({ changed: true, iommufd: { id: r.iommufd.id, deviceId: a!.id, owner: "vmm", domainId: null } });
    const g = fx.groupNow(group.id);
    expect(g).toMatchObject({ owner: "vmm", domainId: g.blockingDomainId });
    expect(fx.domainNow(g.blockingDomainId!)).toMatchObject({ type: "blocked" });
    expect(fx.events()).toEqual([expect.objectContaining({
      op: "bind-iommufd", owner: "vmm", groupId: group.id, deviceId: a!.id, domainId: null, containerId: null, errno: null, code: 0,
    })]);
  });

  it("binding a bound device to the same context again changes nothing (a lost answer can be retried)", () => {
    const { fx, devices: [a] } = setup();
    const first = bind(fx, VMM, a!);
    fx.commit();
    expect(bind(fx, VMM, a!)).toEqual({ changed: false, iommufd: first.iommufd });
    const changes = fx.model.takeChanges();
    expect(changes.rows.iommufd.size + changes.rows.group.size).toBe(0);
  });

  it("several devices of a group bound by one client share the claim (owner_cnt counted); the last unbind releases it", () => {
    const { fx, group, devices: [a, b] } = setup();
    bind(fx, VMM, a!);
    const blocked = blocking(fx, group);
    fx.commit();
    bind(fx, VMM, b!);
    expect(fx.model.takeChanges().rows.group.size).toBe(0);
    expect(fx.model.iommufdDevicesOfGroup(group.id).map((i) => i.deviceId)).toEqual([a!.id, b!.id]);

    expect(unwrap(fx.op(unbindIommufd, VMM, a!.id))).toMatchObject({ released: false, domainId: blocked });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: "vmm", domainId: blocked });
    expect(unwrap(fx.op(unbindIommufd, VMM, b!.id))).toMatchObject({ released: true, domainId: group.defaultDomainId });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, domainId: group.defaultDomainId, blockingDomainId: blocked });
    expect(fx.model.count("iommufd")).toBe(0);
  });

  const REFUSALS: {
    name: string; setup?: () => Setup; arrange?: (s: Setup) => void; caller?: Caller; params?: IommufdParams;
    errno: string; reason: Reason; detail: (s: Setup) => string; ids: (s: Setup) => Record<string, number>; soft?: boolean;
  }[] = [
    {
      name: "no owner → EINVAL invalid-argument",
      caller: ANON, errno: "EINVAL", reason: "invalid-argument",
      detail: () => "binding a device to iommufd needs an owner: the client whose iommufd context it joins", ids: () => ({}),
    },
    {
      name: "an IOMMU without IOMMU_CAP_CACHE_COHERENCY (SMMUv2 without coherent walks) → EINVAL not-cache-coherent, before the MSI check",
      setup: () => {
        const fx = build();
        const unit = fx.unit("arm-smmu", { snoopControl: false, isolatedMsi: false });
        const { group, devices } = fx.groupWith(unit.id, [{}, {}]);
        return { fx, unit, group, devices, domain: fx.domain({ driver: "arm-smmu" }), other: fx.domain({ driver: "arm-smmu" }), container: fx.container() };
      },
      errno: "EINVAL", reason: "not-cache-coherent",
      detail: ({ unit, devices: [a] }) => `${unit.name} (arm-smmu) cannot keep ${a!.name}'s DMA cache coherent (no IOMMU_CAP_CACHE_COHERENCY), and iommufd always maps with IOMMU_CACHE`,
      ids: ({ devices: [a] }) => ({ deviceId: a!.id }),
    },
    {
      name: "MSIs the platform cannot isolate, unsafe interrupts not allowed → EPERM msi-not-isolated",
      setup: () => {
        const fx = build();
        const unit = fx.unit("mock", { isolatedMsi: false });
        const { group, devices } = fx.groupWith(unit.id, [{}, {}]);
        return { fx, unit, group, devices, domain: fx.domain({ driver: "mock" }), other: fx.domain({ driver: "mock" }), container: fx.container() };
      },
      errno: "EPERM", reason: "msi-not-isolated",
      detail: ({ unit, devices: [a] }) => `${a!.name}'s MSIs cannot be isolated behind ${unit.name} (no interrupt remapping or ITS), and the host does not allow unsafe interrupts (--allow-unsafe-interrupts)`,
      ids: ({ group, devices: [a] }) => ({ deviceId: a!.id, groupId: group.id }),
    },
    {
      name: "another device of the group bound to another client's context → EPERM owned-by-other",
      arrange: ({ fx, devices: [, b] }) => { bind(fx, OTHER, b!); },
      errno: "EPERM", reason: "owned-by-other",
      detail: ({ group }) => `group ${group.name} is owned by other's iommufd context`, ids: ({ group, devices: [a] }) => ({ groupId: group.id, deviceId: a!.id }),
    },
    {
      name: "the device itself bound to another client's context → EPERM owned-by-other",
      arrange: ({ fx, devices: [a] }) => { bind(fx, OTHER, a!); },
      errno: "EPERM", reason: "owned-by-other",
      detail: ({ group }) => `group ${group.name} is owned by other's iommufd context`, ids: ({ group, devices: [a] }) => ({ groupId: group.id, deviceId: a!.id }),
    },
    {
      name: "the group claimed by another client → EPERM owned-by-other",
      arrange: ({ fx, group }) => { unwrap(fx.op(claimOwnership, OTHER, group.id)); },
      errno: "EPERM", reason: "owned-by-other",
      detail: ({ group }) => `group ${group.name} is owned by other`, ids: ({ group, devices: [a] }) => ({ groupId: group.id, deviceId: a!.id }),
    },
    {
      name: "the group claimed as a whole by the same client (a vfio_group owner, not its iommufd context) → EPERM group-claimed",
      arrange: ({ fx, group }) => { unwrap(fx.op(claimOwnership, VMM, group.id)); },
      errno: "EPERM", reason: "group-claimed",
      detail: ({ group }) => `group ${group.name} is claimed by vmm as a whole (a group claim), which is not an iommufd context; release the group, then bind its devices`,
      ids: ({ group, devices: [a] }) => ({ groupId: group.id, deviceId: a!.id }),
    },
    {
      name: "a host driver bound to another device of the group (it holds owner_cnt) → EPERM host-driver-bound naming that device",
      arrange: ({ fx, devices: [, b] }) => { unwrap(fx.op(bindHostDriver, ANON, b!.id, "nvme")); },
      errno: "EPERM", reason: "host-driver-bound",
      detail: ({ group, devices: [, b] }) => `${b!.name} of group ${group.name} is bound to host driver nvme; unbind it first`,
      ids: ({ group, devices: [, b] }) => ({ groupId: group.id, deviceId: b!.id }),
    },
    {
      name: "the group on a paging domain → EBUSY group-not-default (__iommu_take_dma_ownership)",
      arrange: ({ fx, group, domain }) => { unwrap(fx.op(attachGroup, ANON, group.id, domain.id)); },
      errno: "EBUSY", reason: "group-not-default",
      detail: ({ group, domain }) => `group ${group.name} is on domain ${domain.id}, not its default domain`,
      ids: ({ group, domain, devices: [a] }) => ({ groupId: group.id, domainId: domain.id, deviceId: a!.id }),
    },
    {
      name: "PASIDs attached on the group → EBUSY pasid-in-use",
      setup: () => {
        const fx = build();
        const unit = fx.unit("mock");
        const group = fx.group(unit.id);
        const devices = [fx.device(group.id), fx.pasidDevice(group.id)];
        return { fx, unit, group, devices, domain: fx.domain({ driver: "mock" }), other: fx.domain({ driver: "mock" }), container: fx.container() };
      },
      arrange: ({ fx, devices: [, p], domain }) => { unwrap(fx.op(attachPasid, ANON, p!.id, 1, domain.id)); },
      errno: "EBUSY", reason: "pasid-in-use",
      detail: ({ group }) => `group ${group.name} has PASIDs attached; detach them first`,
      ids: ({ group, devices: [a] }) => ({ groupId: group.id, deviceId: a!.id }),
    },
    {
      name: "a device of the group that needs identity mappings (RMRR) cannot be blocked → EINVAL requires-identity naming it (hard, §1.3)",
      setup: () => setup(2, [{}, { requiresIdentity: true }]), soft: false,
      errno: "EINVAL", reason: "requires-identity",
      detail: ({ devices: [, b] }) => `${b!.name} has firmware-reserved regions and needs a 1:1 mapping; it cannot be blocked`,
      ids: ({ group, devices: [, b] }) => ({ groupId: group.id, deviceId: b!.id }),
    },
    {
      name: "the unit offline: the blocking domain cannot be attached → ENODEV unit-offline",
      arrange: ({ fx, unit }) => { unwrap(updateUnit(fx.model, unit.id, { online: false })); },
      errno: "ENODEV", reason: "unit-offline",
      detail: ({ unit }) => `${unit.name} is offline`, ids: ({ group, devices: [a] }) => ({ groupId: group.id, deviceId: a!.id }),
    },
  ];

  it.each(REFUSALS)("$name", ({ setup: make, arrange, caller, params, errno, reason, detail, ids, soft }) => {
    const s = (make ?? (() => setup()))();
    arrange?.(s);
    const { fx, devices: [a] } = s;
    const error = refused(fx, () => fx.op(bindIommufd, caller ?? VMM, a!.id, params), errno, reason);
    expect(error.detail).toBe(detail(s));
    expect(error.ids ?? {}).toEqual(ids(s));
    expect(isSoft(error)).toBe(soft ?? false);
    expect(fx.model.iommufdDeviceOf(a!.id)?.owner).not.toBe((caller ?? VMM).owner);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "bind-iommufd", deviceId: a!.id, errno, reason })]);
  });

  it("with unsafe interrupts allowed (allow_unsafe_interrupts), a device without isolated MSIs binds", () => {
    const fx = build();
    const unit = fx.unit("virtio-iommu");
    expect(unit.capabilities.isolatedMsi).toBe(false);
    const { devices: [d] } = fx.groupWith(unit.id);
    expect(errorOf(fx.op(bindIommufd, VMM, d!.id)).reason).toBe("msi-not-isolated");
    expect(bind(fx, VMM, d!, UNSAFE).changed).toBe(true);
  });

  // device_iommu_capable(dev, IOMMU_CAP_CACHE_COHERENCY) per driver, from
  // each driver's capable() (absent: false), with and without the unit's
  // coherent walks (snoopControl).
  const COHERENT: Record<DriverName, [withSnoop: boolean, withoutSnoop: boolean]> = {
    "intel-vtd": [true, true], // intel_iommu_capable: always
    "amd-iommu": [true, true], // amd_iommu_capable: always
    "arm-smmu-v3": [true, false], // arm_smmu_capable: ARM_SMMU_FEAT_COHERENCY
    "arm-smmu": [true, false], // arm_smmu_capable: ARM_SMMU_FEAT_COHERENT_WALK
    "apple-dart": [false, false], // no capable op
    "virtio-iommu": [true, true], // viommu_capable: always
    mock: [true, true], // mock_domain_capable: always
  };
  it.each(DRIVER_NAMES.flatMap((driver) => [true, false].map((snoop) => [driver, snoop] as const)))(
    "%s, snoopControl %s: IOMMU_CAP_CACHE_COHERENCY as its capable() answers",
    (driver, snoop) => {
      const fx = build();
      const unit = fx.unit(driver, { snoopControl: snoop, cpuPageSize: 16384, pageSizes: [16384] });
      const { devices: [d] } = fx.groupWith(unit.id);
      const r = fx.op(bindIommufd, VMM, d!.id, UNSAFE);
      const coherent = COHERENT[driver][snoop ? 0 : 1];
      if (coherent) expect(unwrap(r).changed).toBe(true);
      else expect(errorOf(r)).toMatchObject({ errno: "EINVAL", reason: "not-cache-coherent" });
    },
  );

  it.each<[DriverName, boolean]>([
    ["intel-vtd", true], ["amd-iommu", true], ["arm-smmu-v3", true], ["arm-smmu", false], ["apple-dart", false],
    ["virtio-iommu", false], ["mock", true],
  ])("%s: isolated MSIs by default: %s", (driver, isolated) => {
    expect(build().unit(driver).capabilities.isolatedMsi).toBe(isolated);
  });

  it("a missing device → ENOENT no-such-device, not logged", () => {
    const { fx } = setup();
    fx.commit();
    expect(errorOf(fx.op(bindIommufd, VMM, 9999))).toMatchObject({ errno: "ENOENT", reason: "no-such-device" });
    expect(fx.events()).toEqual([]);
  });
});

describe("while devices of a group are bound, the group is iommufd's", () => {
  const ROUTES: [string, (s: Setup) => { ok: boolean }][] = [
    ["a group claim, even by the same client", ({ fx, group }) => fx.op(claimOwnership, VMM, group.id)],
    ["a release", ({ fx, group }) => fx.op(releaseOwnership, VMM, group.id)],
    ["a group attach", ({ fx, group, domain }) => fx.op(attachGroup, VMM, group.id, domain.id)],
    ["a group replace", ({ fx, group, domain }) => fx.op(replaceDomain, VMM, group.id, domain.id)],
    ["a group detach", ({ fx, group }) => fx.op(detachGroup, VMM, group.id, fx.groupNow(group.id).domainId)],
    ["an administrator's group attach", ({ fx, group, domain }) => fx.op(attachGroup, ADMIN, group.id, domain.id)],
    ["a container attach of the group (VFIO_GROUP_SET_CONTAINER)", ({ fx, group, container }) => fx.op(setContainer, VMM, container.id, group.id)],
    ["a container detach of the group", ({ fx, group, container }) => fx.op(unsetContainer, VMM, container.id, group.id)],
  ];
  it.each(ROUTES)("%s → EPERM iommufd-bound, naming the bound device", (_what, run) => {
    const s = setup();
    bind(s.fx, VMM, s.devices[0]!);
    const error = refused(s.fx, () => run(s), "EPERM", "iommufd-bound");
    expect(error.detail).toBe(`${s.devices[0]!.name} of group ${s.group.name} is bound to vmm's iommufd context, which holds the group's DMA ownership; use /v1/devices/{id}/iommufd`);
    expect(error.ids).toEqual({ groupId: s.group.id, deviceId: s.devices[0]!.id });
  });

  it("a host driver cannot be bound to another device of it (EBUSY group-owned), nor the bound device removed (EBUSY device-has-driver)", () => {
    const { fx, group, devices: [a, b] } = setup();
    bind(fx, VMM, a!);
    refused(fx, () => fx.op(bindHostDriver, ANON, b!.id, "nvme"), "EBUSY", "group-owned");
    const error = errorOf(deleteDevice(fx.model, a!.id));
    expect(error).toMatchObject({ errno: "EBUSY", reason: "device-has-driver", detail: `${a!.name} is bound to vmm's iommufd context; unbind it before removing the device` });
    expect(fx.groupNow(group.id).owner).toBe("vmm");
  });
});

describe("attach (iommufd_device_attach, iommufd_hw_pagetable_attach)", () => {
  it("the first device attaches the group from its blocking domain; a second joins the same domain without a driver call", () => {
    const { fx, group, devices: [a, b], domain } = setup();
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    fx.commit();
    expect(attach(fx, VMM, a!, { domainId: domain.id })).toEqual({
      iommufdId: fx.model.iommufdDeviceOf(a!.id)!.id, deviceId: a!.id, groupId: group.id, domainId: domain.id,
      changed: true, allocated: false, attempts: [],
    });
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
    expect([boundDomain(fx, a!), boundDomain(fx, b!)]).toEqual([domain.id, null]);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "attach-iommufd", owner: "vmm", groupId: group.id, deviceId: a!.id, domainId: domain.id, errno: null })]);
    // A fault on the second device would fail any driver call: joining makes none.
    fx.fault({ deviceId: b!.id, errno: "ENOMEM" });
    expect(attach(fx, VMM, b!, { domainId: domain.id }).changed).toBe(true);
    expect(boundDomain(fx, b!)).toBe(domain.id);
    expect(fx.model.faultsOn({ deviceId: b!.id })).toHaveLength(1);
  });

  it("a device of the group attaching to another domain than its group's other devices → EINVAL group-on-another-domain (hard)", () => {
    const { fx, group, devices: [a, b], domain, other } = setup();
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    attach(fx, VMM, a!, { domainId: domain.id });
    const error = refused(fx, () => fx.op(attachIommufd, VMM, b!.id, { domainId: other.id }), "EINVAL", "group-on-another-domain");
    expect(error).toMatchObject({
      detail: `the devices of group ${group.name} attached through iommufd are on domain ${domain.id}, not domain ${other.id}; attach ${b!.name} there, or detach them first`,
      ids: { deviceId: b!.id, groupId: group.id, domainId: domain.id },
    });
    expect(isSoft(error)).toBe(false);
  });

  it("through a container: the first device runs the container search; the second joins its domain, past the automatic domains before it (EINVAL)", () => {
    const fx = build();
    const [smmu0, smmu1] = [fx.unit("arm-smmu-v3"), fx.unit("arm-smmu-v3")];
    const container = fx.container();
    // An automatic domain finalised on the other SMMU, first in the container.
    const elsewhere = unwrap(containerAttach(fx.model, ANON, container.id, fx.groupWith(smmu0.id).group.id)).domainId;
    const { group, devices: [a, b] } = fx.groupWith(smmu1.id, [{}, {}]);
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    const first = attach(fx, VMM, a!, { containerId: container.id });
    expect(first).toMatchObject({ changed: true, allocated: true });
    expect(first.attempts.map((t) => [t.domainId, t.allocated, t.errno, t.reason])).toEqual([
      [elsewhere, false, "EINVAL", "different-instance"], [first.domainId, true, null, null],
    ]);
    expect(fx.groupNow(group.id).domainId).toBe(first.domainId);
    fx.commit();
    const joined = attach(fx, VMM, b!, { containerId: container.id });
    expect(joined).toMatchObject({ domainId: first.domainId, changed: true, allocated: false });
    expect(joined.attempts.map((t) => [t.domainId, t.errno, t.reason, t.soft])).toEqual([
      [elsewhere, "EINVAL", "group-on-another-domain", false], [first.domainId, null, null, false],
    ]);
    expect([boundDomain(fx, a!), boundDomain(fx, b!)]).toEqual([first.domainId, first.domainId]);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "attach-iommufd", deviceId: b!.id, containerId: container.id, domainId: first.domainId, errno: null })]);
  });

  it("through a container without the group's domain: every automatic domain and a fresh one (freed) → EINVAL group-on-another-domain", () => {
    const { fx, unit, group, devices: [a, b], domain, container } = setup();
    // One automatic domain in the container, on another group.
    const other = fx.groupWith(unit.id).group;
    const auto = unwrap(containerAttach(fx.model, ANON, container.id, other.id)).domainId;
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    attach(fx, VMM, a!, { domainId: domain.id });
    const error = refused(fx, () => fx.op(attachIommufd, VMM, b!.id, { containerId: container.id }), "EINVAL", "group-on-another-domain") as ErrnoError & { attempts: { domainId: number; allocated: boolean; freed: boolean; reason: string }[] };
    expect(error.attempts.map((t) => [t.domainId === auto, t.allocated, t.freed, t.reason])).toEqual([
      [true, false, false, "group-on-another-domain"], [false, true, true, "group-on-another-domain"],
    ]);
    expect(error.ids).toMatchObject({ domainId: domain.id });
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
  });

  it("attaching an attached device again replaces its domain (VFIO_DEVICE_ATTACH_IOMMUFD_PT → iommufd_device_replace): the whole group and its attached devices move", () => {
    const { fx, group, devices: [a, b], domain, other } = setup();
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    attach(fx, VMM, a!, { domainId: domain.id });
    attach(fx, VMM, b!, { domainId: domain.id });
    expect(attach(fx, VMM, a!, { domainId: domain.id }).changed).toBe(false);
    expect(attach(fx, VMM, a!, { domainId: other.id })).toMatchObject({ changed: true, domainId: other.id });
    expect(fx.groupNow(group.id).domainId).toBe(other.id);
    expect([boundDomain(fx, a!), boundDomain(fx, b!)]).toEqual([other.id, other.id]);
  });

  const TARGET_REFUSALS: { name: string; target: (s: Setup) => AttachTarget; errno: string; reason: Reason; soft?: boolean; logged?: false }[] = [
    { name: "both a container and a domain → EINVAL invalid-argument", target: ({ container, domain }) => ({ containerId: container.id, domainId: domain.id }), errno: "EINVAL", reason: "invalid-argument" },
    { name: "neither → EINVAL invalid-argument", target: () => ({}), errno: "EINVAL", reason: "invalid-argument" },
    { name: "a missing container (what the device would move through: not logged, §4 D13) → ENOENT no-such-container", target: () => ({ containerId: 9999 }), errno: "ENOENT", reason: "no-such-container", logged: false },
    { name: "a missing domain → ENOENT no-such-domain", target: () => ({ domainId: 9999 }), errno: "ENOENT", reason: "no-such-domain" },
    { name: "a blocked domain (not a page table) → EINVAL domain-not-attachable", target: ({ fx }) => ({ domainId: fx.domain({ type: "blocked", driver: "mock" }).id }), errno: "EINVAL", reason: "domain-not-attachable" },
    { name: "the group's own default domain → EINVAL domain-not-attachable", target: ({ group }) => ({ domainId: group.defaultDomainId }), errno: "EINVAL", reason: "domain-not-attachable" },
    { name: "another driver's domain → EINVAL different-driver (soft)", target: ({ fx }) => ({ domainId: fx.domain({ driver: "intel-vtd" }).id }), errno: "EINVAL", reason: "different-driver", soft: true },
    { name: "another client's domain → EPERM owned-by-other", target: ({ fx }) => ({ domainId: unwrap(createDomain(fx.model, { type: "paging", driver: "mock" }, OTHER)).id }), errno: "EPERM", reason: "owned-by-other" },
  ];
  it.each(TARGET_REFUSALS)("$name; nothing changes", ({ target, errno, reason, soft, logged }) => {
    const s = setup();
    bind(s.fx, VMM, s.devices[0]!);
    const t = target(s);
    const error = refused(s.fx, () => s.fx.op(attachIommufd, VMM, s.devices[0]!.id, t), errno, reason);
    expect(isSoft(error)).toBe(soft ?? false);
    expect(boundDomain(s.fx, s.devices[0]!)).toBeNull();
    expect(s.fx.events()).toEqual(logged === false ? [] : [expect.objectContaining({ op: "attach-iommufd", deviceId: s.devices[0]!.id, errno, reason })]);
  });

  it("a device not bound → ENOENT not-bound (logged); another client's binding → EPERM owned-by-other; an administrator may", () => {
    const { fx, devices: [a, b], domain } = setup();
    fx.commit();
    expect(errorOf(fx.op(attachIommufd, VMM, a!.id, { domainId: domain.id }))).toMatchObject({
      errno: "ENOENT", reason: "not-bound", detail: `${a!.name} is not bound to iommufd; bind it first (POST /v1/devices/${a!.id}/iommufd)`, ids: { deviceId: a!.id },
    });
    expect(fx.events()).toEqual([expect.objectContaining({ op: "attach-iommufd", errno: "ENOENT", reason: "not-bound" })]);
    bind(fx, VMM, a!);
    expect(errorOf(fx.op(attachIommufd, OTHER, a!.id, { domainId: domain.id }))).toMatchObject({ errno: "EPERM", reason: "owned-by-other" });
    expect(errorOf(fx.op(attachIommufd, VMM, b!.id, { domainId: domain.id })).reason).toBe("not-bound");
    expect(attach(fx, ADMIN, a!, { domainId: domain.id }).domainId).toBe(domain.id);
  });

  it("a first attach the driver refuses (injected ENOMEM) leaves the group on its blocking domain, the device unattached, the fault consumed", () => {
    const { fx, group, devices: [a], domain } = setup(1);
    bind(fx, VMM, a!);
    const fault = fx.fault({ deviceId: a!.id, errno: "ENOMEM" });
    const error = errorOf(fx.op(attachIommufd, VMM, a!.id, { domainId: domain.id }));
    expect(error).toMatchObject({ errno: "ENOMEM", reason: "injected-fault" });
    expect(fx.groupNow(group.id).domainId).toBe(blocking(fx, group));
    expect(boundDomain(fx, a!)).toBeNull();
    expect(fx.model.get("fault", fault.id)).toBeUndefined();
  });
});

describe("replace (iommufd_device_replace)", () => {
  it("a device not attached → EINVAL device-not-attached", () => {
    const { fx, devices: [a], domain } = setup();
    bind(fx, VMM, a!);
    const error = refused(fx, () => fx.op(replaceIommufd, VMM, a!.id, { domainId: domain.id }), "EINVAL", "device-not-attached");
    expect(error).toMatchObject({ detail: `${a!.name} is not attached through iommufd; attach it first`, ids: { deviceId: a!.id } });
    expect(isSoft(error)).toBe(false);
  });

  it("moves the group and every attached device; the current domain again changes nothing; an automatic domain left is freed", () => {
    const { fx, group, devices: [a, b], domain, container } = setup();
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    const auto = attach(fx, VMM, a!, { containerId: container.id }).domainId;
    attach(fx, VMM, b!, { containerId: container.id });
    expect(unwrap(fx.op(replaceIommufd, VMM, b!.id, { domainId: auto })).changed).toBe(false);
    fx.commit();
    expect(unwrap(fx.op(replaceIommufd, VMM, b!.id, { domainId: domain.id }))).toMatchObject({ changed: true, domainId: domain.id });
    expect([fx.groupNow(group.id).domainId, boundDomain(fx, a!), boundDomain(fx, b!)]).toEqual([domain.id, domain.id, domain.id]);
    expect(fx.domainNow(auto)).toBeUndefined();
    expect(fx.events()).toEqual([expect.objectContaining({ op: "replace-iommufd", deviceId: b!.id, domainId: domain.id, errno: null })]);
  });

  it("through a container: the automatic domains in order, the current one unchanged; none fitting, a new one", () => {
    const { fx, group, devices: [a], domain, container } = setup(1);
    bind(fx, VMM, a!);
    attach(fx, VMM, a!, { domainId: domain.id });
    const first = unwrap(fx.op(replaceIommufd, VMM, a!.id, { containerId: container.id }));
    expect(first).toMatchObject({ changed: true, allocated: true, attempts: [expect.objectContaining({ allocated: true, errno: null })] });
    expect(fx.groupNow(group.id).domainId).toBe(first.domainId);
    const again = unwrap(fx.op(replaceIommufd, VMM, a!.id, { containerId: container.id }));
    expect(again).toMatchObject({ changed: false, allocated: false, domainId: first.domainId, attempts: [expect.objectContaining({ domainId: first.domainId, errno: null })] });
  });

  it("through a container on a kernel without the unwind (6.2): a new domain refused by the second device is freed, and no device is left on it", () => {
    const { fx, group, devices: [a, b], domain, container } = setup(2);
    unwrap(updateHost(fx.model, { kernelProfile: "6.2" }));
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    attach(fx, VMM, a!, { domainId: domain.id });
    fx.fault({ deviceId: b!.id, errno: "EIO" });
    const error = errorOf(fx.op(replaceIommufd, VMM, a!.id, { containerId: container.id })) as ErrnoError & { attempts: { domainId: number; freed: boolean }[] };
    expect(error).toMatchObject({ errno: "ENODEV", reason: "injected-fault" });
    expect(error.stranded).toBeUndefined();
    const [fresh] = error.attempts;
    expect(fresh).toMatchObject({ freed: true });
    expect(fx.domainNow(fresh!.domainId)).toBeUndefined();
    expect([a!, b!].map((d) => fx.model.get("device", d.id)!.strandedOnDomainId)).toEqual([null, null]);
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
  });

  it("a replace the driver refuses (another driver's domain, soft EINVAL) changes nothing", () => {
    const { fx, devices: [a], domain } = setup(1);
    bind(fx, VMM, a!);
    attach(fx, VMM, a!, { domainId: domain.id });
    const vtd = fx.domain({ driver: "intel-vtd" });
    const error = refused(fx, () => fx.op(replaceIommufd, VMM, a!.id, { domainId: vtd.id }), "EINVAL", "different-driver");
    expect(isSoft(error)).toBe(true);
  });
});

describe("detach (iommufd_device_detach)", () => {
  it("one of two attached devices leaves: the group stays; the last returns the group to its blocking domain and frees the automatic domain", () => {
    const { fx, group, devices: [a, b], container } = setup();
    bind(fx, VMM, a!);
    bind(fx, VMM, b!);
    const auto = attach(fx, VMM, a!, { containerId: container.id }).domainId;
    attach(fx, VMM, b!, { containerId: container.id });
    fx.commit();
    expect(unwrap(fx.op(detachIommufd, VMM, a!.id))).toMatchObject({ changed: true, domainId: auto, freedDomainId: null });
    expect([fx.groupNow(group.id).domainId, boundDomain(fx, a!), boundDomain(fx, b!)]).toEqual([auto, null, auto]);
    const last = unwrap(fx.op(detachIommufd, VMM, b!.id));
    expect(last).toMatchObject({ changed: true, domainId: blocking(fx, group), freedDomainId: auto });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: "vmm", domainId: blocking(fx, group) });
    expect(fx.domainNow(auto)).toBeUndefined();
    expect(fx.events().map((e) => [e.op, e.deviceId, e.domainId])).toEqual([
      ["detach-iommufd", a!.id, auto], ["detach-iommufd", b!.id, blocking(fx, group)],
    ]);
  });

  it("a device not attached: nothing changes (vfio_iommufd_physical_detach_ioas returns)", () => {
    const { fx, group, devices: [a] } = setup();
    bind(fx, VMM, a!);
    fx.commit();
    expect(unwrap(fx.op(detachIommufd, VMM, a!.id))).toMatchObject({ changed: false, domainId: blocking(fx, group), freedDomainId: null });
    const changes = fx.model.takeChanges();
    expect(changes.rows.group.size + changes.rows.iommufd.size).toBe(0);
  });

  it("never fails on hardware state: with the unit offline and the device faulty", () => {
    const { fx, unit, group, devices: [a], domain } = setup(1);
    bind(fx, VMM, a!);
    attach(fx, VMM, a!, { domainId: domain.id });
    unwrap(updateUnit(fx.model, unit.id, { online: false }));
    fx.fault({ deviceId: a!.id, errno: "EIO" });
    expect(unwrap(fx.op(detachIommufd, VMM, a!.id)).domainId).toBe(blocking(fx, group));
  });
});

describe("unbind (vfio_iommufd_physical_unbind → iommufd_device_unbind)", () => {
  it("an attached device is detached first; the last binding releases the group to its default domain (the blocking domain kept)", () => {
    const { fx, group, devices: [a], container } = setup(1);
    bind(fx, VMM, a!);
    const auto = attach(fx, VMM, a!, { containerId: container.id }).domainId;
    const blocked = blocking(fx, group);
    fx.commit();
    expect(unwrap(fx.op(unbindIommufd, VMM, a!.id))).toEqual({
      iommufdId: expect.any(Number), deviceId: a!.id, groupId: group.id, domainId: group.defaultDomainId,
      changed: true, freedDomainId: auto, released: true,
    });
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, domainId: group.defaultDomainId, blockingDomainId: blocked });
    expect(fx.model.iommufdDeviceOf(a!.id)).toBeUndefined();
    expect(fx.events()).toEqual([expect.objectContaining({ op: "unbind-iommufd", deviceId: a!.id, domainId: group.defaultDomainId, errno: null })]);
    // The group is the kernel's again: claimable, attachable.
    unwrap(fx.op(claimOwnership, OTHER, group.id));
  });

  it("the last binding with PASIDs attached → EBUSY pasid-in-use (the kernel WARNs and keeps the ownership, §4 D17); with another binding left it unbinds", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.group(unit.id);
    const a = fx.pasidDevice(group.id);
    const b = fx.device(group.id);
    const domain = fx.domain({ driver: "mock" });
    bind(fx, VMM, a);
    bind(fx, VMM, b);
    unwrap(fx.op(attachPasid, VMM, a.id, 5, domain.id));
    expect(unwrap(fx.op(unbindIommufd, VMM, b.id)).released).toBe(false);
    const error = refused(fx, () => fx.op(unbindIommufd, VMM, a.id), "EBUSY", "pasid-in-use");
    expect(error.detail).toBe(`group ${group.name} has PASIDs attached; detach them before unbinding its last device from iommufd`);
    unwrap(fx.op(detachPasid, VMM, a.id, 5));
    expect(unwrap(fx.op(unbindIommufd, VMM, a.id)).released).toBe(true);
  });

  it("a device not bound → ENOENT not-bound; another client's binding → EPERM owned-by-other", () => {
    const { fx, devices: [a] } = setup();
    expect(errorOf(fx.op(unbindIommufd, VMM, a!.id))).toMatchObject({ errno: "ENOENT", reason: "not-bound" });
    bind(fx, VMM, a!);
    refused(fx, () => fx.op(unbindIommufd, OTHER, a!.id), "EPERM", "owned-by-other");
  });
});

describe("container attach of a whole group (VFIO_GROUP_SET_CONTAINER): the claim's refusals", () => {
  it.each<[string, (s: Setup) => void, string, Reason]>([
    ["a host driver bound to a device of the group → EPERM host-driver-bound", ({ fx, devices: [, b] }) => { unwrap(fx.op(bindHostDriver, ANON, b!.id, "nvme")); }, "EPERM", "host-driver-bound"],
    ["a device that needs identity mappings → EINVAL requires-identity", ({ fx, group }) => { fx.device(group.id, { requiresIdentity: true }); }, "EINVAL", "requires-identity"],
  ])("%s; nothing changes", (_what, arrange, errno, reason) => {
    const s = setup();
    arrange(s);
    refused(s.fx, () => s.fx.op(setContainer, ANON, s.container.id, s.group.id), errno, reason);
    expect(s.fx.events()).toEqual([expect.objectContaining({ op: "container-attach", errno, reason })]);
  });

  it("PASIDs on the group → EBUSY pasid-in-use", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const group = fx.group(unit.id);
    const p = fx.pasidDevice(group.id);
    const container = fx.container();
    unwrap(fx.op(attachPasid, ANON, p.id, 1, fx.domain({ driver: "mock" }).id));
    refused(fx, () => fx.op(setContainer, ANON, container.id, group.id), "EBUSY", "pasid-in-use");
  });

  it("a group its owner claimed, or one already in the container, goes to the search as before", () => {
    const { fx, group, container } = setup();
    unwrap(fx.op(claimOwnership, VMM, group.id));
    const r = unwrap(fx.op(setContainer, VMM, container.id, group.id));
    expect(unwrap(fx.op(setContainer, VMM, container.id, group.id))).toMatchObject({ domainId: r.domainId, attempts: [] });
    expect(unwrap(fx.op(unsetContainer, VMM, container.id, group.id)).domainId).toBe(blocking(fx, group));
  });

  it("an unclaimed group is attached from, and detached back to, its default domain (where VFIO's release leaves it)", () => {
    const { fx, group, container } = setup();
    const r = unwrap(fx.op(setContainer, ANON, container.id, group.id));
    expect(fx.groupNow(group.id)).toMatchObject({ owner: null, domainId: r.domainId });
    expect(unwrap(fx.op(unsetContainer, ANON, container.id, group.id)).domainId).toBe(group.defaultDomainId);
  });
});
