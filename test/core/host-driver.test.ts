// Host drivers and DMA ownership (drivers/iommu/iommu.c): a kernel driver
// bound to a device holds one count of its group's owner_cnt
// (iommu_device_use_default_domain), as a DMA-ownership claim does, so that a
// claim is EPERM while one is bound and a driver cannot be bound while the
// group is owned (or, with owner_cnt held, off its default domain or with
// PASIDs attached).
import { describe, expect, it } from "vitest";
import { attachGroup, claimOwnership, releaseOwnership } from "../../src/core/group-moves.js";
import { bindHostDriver, unbindHostDriver } from "../../src/core/host-driver.js";
import { deleteDevice } from "../../src/core/objects.js";
import { attachPasid, detachPasid } from "../../src/core/pasid.js";
import type { Reason } from "../../src/core/reasons.js";
import { isSoft } from "../../src/core/result.js";
import { ANON, as, build, errorOf, snapshot, unwrap } from "./fixtures.js";

const VFIO = as("vfio");
const ADMIN = as("admin");

/** A mock unit with a two-device group (the first takes PASIDs) and a paging domain. */
function setup() {
  const fx = build();
  const unit = fx.unit("mock");
  const group = fx.group(unit.id);
  const nic = fx.pasidDevice(group.id);
  const gpu = fx.device(group.id);
  const domain = fx.domain({ driver: "mock" });
  return { fx, unit, group, nic, gpu, domain };
}
type Setup = ReturnType<typeof setup>;

describe("bind a host driver (iommu_device_use_default_domain)", () => {
  it("records the driver on the device and logs bind-host-driver; binding it again changes nothing", () => {
    const { fx, group, nic } = setup();
    fx.commit();
    expect(unwrap(fx.op(bindHostDriver, ADMIN, nic.id, "nvme"))).toEqual({ deviceId: nic.id, changed: true });
    expect(fx.model.get("device", nic.id)?.hostDriver).toBe("nvme");
    expect(fx.events()).toEqual([expect.objectContaining({
      op: "bind-host-driver", owner: "admin", groupId: group.id, deviceId: nic.id, domainId: null, errno: null, code: 0,
    })]);
    expect(unwrap(fx.op(bindHostDriver, ADMIN, nic.id, "nvme"))).toEqual({ deviceId: nic.id, changed: false });
    expect(fx.model.takeChanges().rows.device.size).toBe(0);
  });

  it.each<[string, (s: Setup) => void]>([
    ["its group is on a paging domain", ({ fx, group, domain }) => { unwrap(fx.op(attachGroup, ANON, group.id, domain.id)); }],
    ["its group has PASIDs attached", ({ fx, nic, domain }) => { unwrap(fx.op(attachPasid, ANON, nic.id, 1, domain.id)); }],
  ])("with owner_cnt at 0 nothing else is checked: bound although %s", (_what, arrange) => {
    const s = setup();
    arrange(s);
    expect(unwrap(s.fx.op(bindHostDriver, ADMIN, s.gpu.id, "amdgpu")).changed).toBe(true);
  });

  const REFUSALS: { name: string; arrange: (s: Setup) => void; errno: string; reason: Reason; detail: (s: Setup) => string; ids: (s: Setup) => Record<string, number> }[] = [
    {
      name: "the device is bound to another driver → EBUSY device-has-driver (driver core)",
      arrange: ({ fx, gpu }) => { unwrap(fx.op(bindHostDriver, ADMIN, gpu.id, "nouveau")); },
      errno: "EBUSY", reason: "device-has-driver",
      detail: ({ gpu }) => `${gpu.name} is bound to nouveau; unbind it before binding amdgpu`, ids: ({ gpu }) => ({ deviceId: gpu.id }),
    },
    {
      name: "the group is owned → EBUSY group-owned",
      arrange: ({ fx, group }) => { unwrap(fx.op(claimOwnership, VFIO, group.id)); },
      errno: "EBUSY", reason: "group-owned",
      detail: ({ group }) => `group ${group.name} is owned by vfio; its DMA is not the kernel's`,
      ids: ({ group, gpu }) => ({ groupId: group.id, deviceId: gpu.id }),
    },
    {
      name: "another device's driver holds owner_cnt and the group is off its default domain → EBUSY group-not-default",
      arrange: ({ fx, group, nic, domain }) => {
        unwrap(fx.op(bindHostDriver, ADMIN, nic.id, "nvme"));
        unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
      },
      errno: "EBUSY", reason: "group-not-default",
      detail: ({ group, nic, domain }) => `group ${group.name} is on domain ${domain.id}, not its default domain, and ${nic.name} is bound to nvme`,
      ids: ({ group, gpu, domain }) => ({ groupId: group.id, domainId: domain.id, deviceId: gpu.id }),
    },
    {
      name: "another device's driver holds owner_cnt and the group has PASIDs → EBUSY pasid-in-use",
      arrange: ({ fx, nic, domain }) => {
        unwrap(fx.op(bindHostDriver, ADMIN, nic.id, "idxd"));
        unwrap(fx.op(attachPasid, ANON, nic.id, 1, domain.id));
      },
      errno: "EBUSY", reason: "pasid-in-use",
      detail: ({ group, nic }) => `group ${group.name} has PASIDs attached, and ${nic.name} is bound to idxd`,
      ids: ({ group, gpu }) => ({ groupId: group.id, deviceId: gpu.id }),
    },
  ];

  it.each(REFUSALS)("$name", ({ arrange, errno, reason, detail, ids }) => {
    const s = setup();
    arrange(s);
    s.fx.commit();
    const before = snapshot(s.fx.model);
    const error = errorOf(s.fx.op(bindHostDriver, ADMIN, s.gpu.id, "amdgpu"));
    expect(error).toEqual({ errno, reason, detail: detail(s), ids: ids(s) });
    expect(isSoft(error)).toBe(false);
    expect(snapshot(s.fx.model)).toBe(before);
    expect(s.fx.events()).toEqual([expect.objectContaining({ op: "bind-host-driver", deviceId: s.gpu.id, errno, reason })]);
  });

  it("no such device → ENOENT, not logged", () => {
    const { fx } = setup();
    fx.commit();
    expect(errorOf(fx.op(bindHostDriver, ADMIN, 999_999, "nvme"))).toMatchObject({ errno: "ENOENT", reason: "no-such-device" });
    expect(fx.events()).toEqual([]);
  });
});

describe("unbind a host driver (iommu_device_unuse_default_domain)", () => {
  it("clears the driver and logs unbind-host-driver; unbinding an unbound device changes nothing", () => {
    const { fx, group, nic } = setup();
    unwrap(fx.op(bindHostDriver, ADMIN, nic.id, "nvme"));
    fx.commit();
    expect(unwrap(fx.op(unbindHostDriver, ADMIN, nic.id))).toEqual({ deviceId: nic.id, changed: true });
    expect(fx.model.get("device", nic.id)?.hostDriver).toBeNull();
    expect(fx.events()).toEqual([expect.objectContaining({ op: "unbind-host-driver", groupId: group.id, deviceId: nic.id, errno: null })]);
    expect(unwrap(fx.op(unbindHostDriver, ADMIN, nic.id))).toEqual({ deviceId: nic.id, changed: false });
  });

  it("with PASIDs attached → EBUSY pasid-in-use (the kernel WARNs and keeps owner_cnt, §4 D17); after the detach it unbinds", () => {
    const { fx, group, nic, domain } = setup();
    unwrap(fx.op(bindHostDriver, ADMIN, nic.id, "idxd"));
    unwrap(fx.op(attachPasid, ANON, nic.id, 2, domain.id));
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(fx.op(unbindHostDriver, ADMIN, nic.id))).toEqual({
      errno: "EBUSY", reason: "pasid-in-use", ids: { deviceId: nic.id, groupId: group.id },
      detail: `group ${group.name} has PASIDs attached; detach them before unbinding idxd from ${nic.name}`,
    });
    expect(snapshot(fx.model)).toBe(before);
    unwrap(fx.op(detachPasid, ANON, nic.id, 2));
    expect(unwrap(fx.op(unbindHostDriver, ADMIN, nic.id)).changed).toBe(true);
  });

  it("a device with a bound driver cannot be removed: EBUSY device-has-driver", () => {
    const { fx, gpu } = setup();
    unwrap(fx.op(bindHostDriver, ADMIN, gpu.id, "amdgpu"));
    expect(errorOf(deleteDevice(fx.model, gpu.id))).toEqual({
      errno: "EBUSY", reason: "device-has-driver", ids: { deviceId: gpu.id },
      detail: `${gpu.name} is bound to host driver amdgpu; unbind it before removing the device`,
    });
  });
});

describe("DMA ownership against bound drivers (owner_cnt)", () => {
  it("a claim with a driver bound to a device of the group → EPERM host-driver-bound (iommu_group_claim_dma_owner); after the unbind it succeeds", () => {
    const { fx, group, gpu } = setup();
    unwrap(fx.op(bindHostDriver, ADMIN, gpu.id, "amdgpu"));
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(claimOwnership, VFIO, group.id));
    expect(error).toEqual({
      errno: "EPERM", reason: "host-driver-bound", ids: { groupId: group.id, deviceId: gpu.id },
      detail: `${gpu.name} of group ${group.name} is bound to host driver amdgpu; unbind it first`,
    });
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "claim", owner: "vfio", groupId: group.id, errno: "EPERM", reason: "host-driver-bound" })]);
    unwrap(fx.op(unbindHostDriver, ADMIN, gpu.id));
    expect(unwrap(fx.op(claimOwnership, VFIO, group.id)).changed).toBe(true);
  });

  it("EPERM comes before EBUSY, as owner_cnt is checked first: a bound driver and a group off its default domain", () => {
    const { fx, group, gpu, domain } = setup();
    unwrap(fx.op(bindHostDriver, ADMIN, gpu.id, "amdgpu"));
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id))).toMatchObject({ errno: "EPERM", reason: "host-driver-bound" });
  });

  it("the owner's claim again is still a no-op (§4 D2); release then lets a driver bind", () => {
    const { fx, group, gpu } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    expect(unwrap(fx.op(claimOwnership, VFIO, group.id)).changed).toBe(false);
    unwrap(fx.op(releaseOwnership, VFIO, group.id));
    expect(unwrap(fx.op(bindHostDriver, ADMIN, gpu.id, "amdgpu")).changed).toBe(true);
  });
});
