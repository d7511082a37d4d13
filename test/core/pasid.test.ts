// PASID attachments: iommu_attach_device_pasid() and
// iommu_detach_device_pasid() (drivers/iommu/iommu.c), in the core's order
// of checks, with the group's pasid_array as the one place a PASID is taken.
// The drivers' own set_dev_pasid rules are rows of test/drivers/rules.test.ts.
import { describe, expect, it } from "vitest";
import type { Caller } from "../../src/core/caller.js";
import { containerAttach, containerDetach } from "../../src/core/container-attach.js";
import { attachGroup, claimOwnership, releaseOwnership } from "../../src/core/group-moves.js";
import { deleteDevice, deleteDomain, updateDevice, updateUnit } from "../../src/core/objects.js";
import { attachPasid, detachPasid } from "../../src/core/pasid.js";
import type { Reason } from "../../src/core/reasons.js";
import { isSoft } from "../../src/core/result.js";
import { ANON, as, build, errorOf, snapshot, unwrap, type Fixture } from "./fixtures.js";

const VFIO = as("vfio");

/** A mock unit with one group whose device takes PASIDs below 256, and a paging domain for it. */
function setup() {
  const fx = build();
  const unit = fx.unit("mock");
  const group = fx.group(unit.id);
  const device = fx.pasidDevice(group.id, 256);
  const domain = fx.domain({ driver: "mock" });
  return { fx, unit, group, device, domain };
}

describe("attach a PASID (iommu_attach_device_pasid)", () => {
  it("records the attachment, the group's; logs attach-pasid; the driver view sees it on every device that takes PASIDs", () => {
    const { fx, group, device, domain } = setup();
    const sibling = fx.pasidDevice(group.id, 16);
    const deaf = fx.device(group.id);
    fx.commit();
    const a = unwrap(fx.op(attachPasid, ANON, device.id, 7, domain.id));
    expect(a).toEqual({ id: expect.any(Number), deviceId: device.id, pasid: 7, domainId: domain.id });
    expect(fx.model.get("pasid", a.id)).toEqual(a);
    expect(fx.model.pasidAttachmentsOfGroup(group.id)).toEqual([a]);
    expect(fx.model.usage.pasidsOn(device.id)).toEqual([{ pasid: 7, domainType: "paging" }]);
    expect(fx.model.usage.pasidsOn(sibling.id)).toEqual([{ pasid: 7, domainType: "paging" }]);
    // A device that takes no PASID is skipped by the core: nothing is set on it.
    expect(fx.model.usage.pasidsOn(deaf.id)).toEqual([]);
    expect(fx.events()).toEqual([expect.objectContaining({
      op: "attach-pasid", owner: null, groupId: group.id, deviceId: device.id, domainId: domain.id, errno: null, code: 0, reason: null,
    })]);
    // The group's own domain is untouched: a PASID is not the RID.
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
  });

  it("the group's own default domain and the PASID's largest value (max_pasids - 1) are fine", () => {
    const { fx, group, device } = setup();
    expect(unwrap(fx.op(attachPasid, ANON, device.id, 255, group.defaultDomainId))).toMatchObject({ pasid: 255, domainId: group.defaultDomainId });
  });

  /** Each refusal, in the kernel's order of checks: the answer, and that nothing but the event changed. */
  const REFUSALS: {
    name: string;
    arrange: (s: ReturnType<typeof setup>) => { deviceId: number; pasid: number; domainId: number; caller?: Caller };
    errno: string; reason: Reason; soft: boolean; detail: (s: ReturnType<typeof setup>, domainId: number) => string;
  }[] = [
    {
      name: "a driver without set_dev_pasid → EOPNOTSUPP unsupported (before the PASID is looked at)",
      arrange: ({ fx }) => {
        const smmu = fx.unit("arm-smmu");
        return { deviceId: fx.pasidDevice(fx.group(smmu.id).id).id, pasid: 0, domainId: fx.domain({ driver: "arm-smmu" }).id };
      },
      errno: "EOPNOTSUPP", reason: "unsupported", soft: false,
      detail: (_s, d) => `arm-smmu has no PASID support (no set_dev_pasid): domain ${d} cannot be attached to a PASID`,
    },
    {
      name: "a device whose driver's blocked domain has no set_dev_pasid, whatever the domain's → EOPNOTSUPP unsupported (before the driver mismatch)",
      arrange: ({ fx, domain }) => {
        const smmu = fx.unit("arm-smmu");
        return { deviceId: fx.pasidDevice(fx.group(smmu.id).id).id, pasid: 1, domainId: domain.id };
      },
      errno: "EOPNOTSUPP", reason: "unsupported", soft: false,
      detail: (_s, d) => `arm-smmu has no PASID support (no set_dev_pasid): domain ${d} cannot be attached to a PASID`,
    },
    {
      name: "a domain type whose ops have no set_dev_pasid (arm-smmu-v3 identity) → EOPNOTSUPP unsupported",
      arrange: ({ fx, device }) => ({ deviceId: device.id, pasid: 1, domainId: fx.domain({ type: "identity", driver: "arm-smmu-v3" }).id }),
      errno: "EOPNOTSUPP", reason: "unsupported", soft: false,
      detail: (_s, d) => `identity domains of arm-smmu-v3 have no set_dev_pasid: domain ${d} cannot be attached to a PASID`,
    },
    {
      name: "a domain of another driver → EINVAL different-driver, soft (domain_iommu_ops_compatible)",
      arrange: ({ fx, device }) => ({ deviceId: device.id, pasid: 1, domainId: fx.domain({ driver: "intel-vtd" }).id }),
      errno: "EINVAL", reason: "different-driver", soft: true,
      detail: ({ group, unit }, d) => `domain ${d} belongs to intel-vtd; group ${group.name} is behind mock unit ${unit.name}`,
    },
    {
      name: "PASID 0 (IOMMU_NO_PASID) → EINVAL pasid-out-of-range",
      arrange: ({ device, domain }) => ({ deviceId: device.id, pasid: 0, domainId: domain.id }),
      errno: "EINVAL", reason: "pasid-out-of-range", soft: false,
      detail: () => "PASID 0 is IOMMU_NO_PASID, the device's requests without a PASID: attach the device to a domain instead",
    },
    {
      name: "another group's default domain → EINVAL domain-not-attachable",
      arrange: ({ fx, unit, device }) => ({ deviceId: device.id, pasid: 1, domainId: fx.group(unit.id).defaultDomainId }),
      errno: "EINVAL", reason: "domain-not-attachable", soft: false,
      detail: (_s, d) => `domain ${d} is the default domain of another group`,
    },
    {
      name: "a PASID at the device's max_pasids → EINVAL pasid-out-of-range",
      arrange: ({ device, domain }) => ({ deviceId: device.id, pasid: 256, domainId: domain.id }),
      errno: "EINVAL", reason: "pasid-out-of-range", soft: false,
      detail: ({ device }) => `${device.name} takes PASIDs below 256 (max_pasids), not 256`,
    },
    {
      name: "a PASID beyond another device of the group that takes PASIDs → EINVAL pasid-out-of-range naming it",
      arrange: ({ fx, group, device, domain }) => {
        fx.pasidDevice(group.id, 8, {});
        return { deviceId: device.id, pasid: 8, domainId: domain.id };
      },
      errno: "EINVAL", reason: "pasid-out-of-range", soft: false,
      detail: ({ fx, group }) => `${fx.model.devicesOf(group.id)[1]!.name} takes PASIDs below 8 (max_pasids), not 8`,
    },
    {
      name: "a PASID the group has attached already, to the same domain → EBUSY pasid-attached (xa_insert)",
      arrange: ({ fx, device, domain }) => {
        unwrap(fx.op(attachPasid, ANON, device.id, 5, domain.id));
        return { deviceId: device.id, pasid: 5, domainId: domain.id };
      },
      errno: "EBUSY", reason: "pasid-attached", soft: false,
      detail: ({ group, domain }) => `PASID 5 of group ${group.name} is attached to domain ${domain.id}; detach it first`,
    },
    {
      name: "a PASID attached through another device of the group → EBUSY pasid-attached",
      arrange: ({ fx, group, device, domain }) => {
        const other = fx.pasidDevice(group.id, 256);
        unwrap(fx.op(attachPasid, ANON, other.id, 5, domain.id));
        return { deviceId: device.id, pasid: 5, domainId: fx.domain({ driver: "mock" }).id };
      },
      errno: "EBUSY", reason: "pasid-attached", soft: false,
      detail: ({ group, domain }) => `PASID 5 of group ${group.name} is attached to domain ${domain.id}; detach it first`,
    },
    {
      name: "a group owned by someone else → EPERM owned-by-other (§4 D5)",
      arrange: ({ fx, group, device, domain }) => {
        unwrap(fx.op(claimOwnership, VFIO, group.id));
        return { deviceId: device.id, pasid: 1, domainId: domain.id, caller: as("other") };
      },
      errno: "EPERM", reason: "owned-by-other", soft: false,
      detail: ({ group }) => `group ${group.name} is owned by vfio`,
    },
    {
      name: "a unit gone offline → ENODEV unit-offline",
      arrange: ({ fx, unit, device, domain }) => {
        unwrap(updateUnit(fx.model, unit.id, { online: false }));
        return { deviceId: device.id, pasid: 1, domainId: domain.id };
      },
      errno: "ENODEV", reason: "unit-offline", soft: false,
      detail: ({ unit }) => `${unit.name} is offline`,
    },
    {
      name: "a faulty device → ENODEV device-faulty",
      arrange: ({ fx, device, domain }) => {
        unwrap(updateDevice(fx.model, device.id, { faulty: true }));
        return { deviceId: device.id, pasid: 1, domainId: domain.id };
      },
      errno: "ENODEV", reason: "device-faulty", soft: false,
      detail: ({ device }) => `${device.name} is faulty`,
    },
    {
      name: "no such domain → ENOENT no-such-domain (logged: the device exists)",
      arrange: ({ device }) => ({ deviceId: device.id, pasid: 1, domainId: 999_999 }),
      errno: "ENOENT", reason: "no-such-domain", soft: false,
      detail: () => "domain 999999 does not exist",
    },
  ];

  it.each(REFUSALS)("$name", ({ arrange, errno, reason, soft, detail }) => {
    const s = setup();
    const { deviceId, pasid, domainId, caller } = arrange(s);
    s.fx.commit();
    const before = snapshot(s.fx.model);
    const error = errorOf(s.fx.op(attachPasid, caller ?? ANON, deviceId, pasid, domainId));
    expect(error).toMatchObject({ errno, reason, detail: detail(s, domainId) });
    expect(isSoft(error)).toBe(soft);
    expect(snapshot(s.fx.model)).toBe(before);
    expect(s.fx.events()).toEqual([expect.objectContaining({ op: "attach-pasid", deviceId, domainId, errno, reason })]);
  });

  it("an injected fault fails the attach with its errno and stays consumed; nothing else is kept", () => {
    const { fx, device, domain } = setup();
    fx.fault({ deviceId: device.id, errno: "ENOMEM", count: 1 });
    fx.commit();
    const error = errorOf(fx.op(attachPasid, ANON, device.id, 1, domain.id));
    expect(error).toMatchObject({ errno: "ENOMEM", reason: "injected-fault", detail: `injected ENOMEM on ${device.name}` });
    expect(fx.model.count("fault")).toBe(0);
    expect(fx.model.count("pasid")).toBe(0);
    expect(unwrap(fx.op(attachPasid, ANON, device.id, 1, domain.id))).toMatchObject({ pasid: 1 });
  });

  it("no such device → ENOENT no-such-device, not logged", () => {
    const { fx, domain } = setup();
    fx.commit();
    expect(errorOf(fx.op(attachPasid, ANON, 999_999, 1, domain.id))).toMatchObject({ errno: "ENOENT", reason: "no-such-device" });
    expect(fx.events()).toEqual([]);
  });

  it("devices that take no PASID are skipped (v6.15): with none that takes one, the PASID is taken without a driver call", () => {
    const fx = build();
    const unit = fx.unit("mock", {}, { online: false });
    const group = fx.group(unit.id);
    const device = fx.device(group.id);
    const domain = fx.domain({ driver: "mock" });
    // Offline unit, yet no refusal: no set_dev_pasid is called at all.
    const a = unwrap(fx.op(attachPasid, ANON, device.id, 1_000_000, domain.id));
    expect(fx.model.pasidAttachmentsOfGroup(group.id)).toEqual([a]);
    // ... and the group's pasid_array is not empty: a claim is refused.
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id))).toMatchObject({ errno: "EBUSY", reason: "pasid-in-use" });
  });

  it("arm-smmu-v3: a PASID attach finalises an unbound domain on the device's SMMU (it then takes an ASID)", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3");
    const device = fx.pasidDevice(fx.group(unit.id).id);
    const domain = fx.domain({ driver: "arm-smmu-v3" });
    expect(domain.unitId).toBeNull();
    unwrap(fx.op(attachPasid, ANON, device.id, 1, domain.id));
    expect(fx.domainNow(domain.id)?.unitId).toBe(unit.id);
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(1);
  });

  it("an owned group's owner may attach and detach its PASIDs", () => {
    const { fx, group, device, domain } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    expect(unwrap(fx.op(attachPasid, VFIO, device.id, 9, domain.id))).toMatchObject({ pasid: 9 });
    expect(unwrap(fx.op(detachPasid, VFIO, device.id, 9))).toMatchObject({ pasid: 9 });
  });
});

describe("detach a PASID (iommu_detach_device_pasid)", () => {
  /** PASID 3 attached to the setup's domain (by the group's owner, if one claims it first). */
  function attached(owner?: Caller): ReturnType<typeof setup> & { attachmentId: number } {
    const s = setup();
    if (owner) unwrap(s.fx.op(claimOwnership, owner, s.group.id));
    const a = unwrap(s.fx.op(attachPasid, owner ?? ANON, s.device.id, 3, s.domain.id));
    s.fx.commit();
    return { ...s, attachmentId: a.id };
  }

  it("removes the attachment and logs detach-pasid naming its domain", () => {
    const { fx, group, device, domain } = attached();
    expect(unwrap(fx.op(detachPasid, ANON, device.id, 3))).toMatchObject({ deviceId: device.id, pasid: 3, domainId: domain.id });
    expect(fx.model.pasidAttachmentsOfGroup(group.id)).toEqual([]);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "detach-pasid", groupId: group.id, deviceId: device.id, domainId: domain.id, errno: null })]);
  });

  it("through another device of the group: the PASID is the group's", () => {
    const { fx, group, domain } = attached();
    const other = fx.pasidDevice(group.id);
    expect(unwrap(fx.op(detachPasid, ANON, other.id, 3))).toMatchObject({ pasid: 3, domainId: domain.id });
    expect(fx.model.count("pasid")).toBe(0);
  });

  it("never fails on hardware state: with the unit offline and the device faulty", () => {
    const { fx, unit, device } = attached();
    unwrap(updateUnit(fx.model, unit.id, { online: false }));
    unwrap(updateDevice(fx.model, device.id, { faulty: true }));
    fx.fault({ deviceId: device.id, errno: "EIO" });
    expect(fx.op(detachPasid, ANON, device.id, 3).ok).toBe(true);
    expect(fx.model.count("fault")).toBe(1);
  });

  it.each<[string, Caller | undefined, (s: ReturnType<typeof attached>) => [Caller, number, number], string, Reason, (s: ReturnType<typeof attached>) => string]>([
    ["a PASID the group does not have → ENOENT no-such-pasid (logged)", undefined, ({ device }) => [ANON, device.id, 4], "ENOENT", "no-such-pasid",
      ({ device, group }) => `PASID 4 is not attached on ${device.name}'s group ${group.name}`],
    ["an owned group by someone else → EPERM owned-by-other", VFIO, ({ device }) => [as("other"), device.id, 3],
      "EPERM", "owned-by-other", ({ group }) => `group ${group.name} is owned by vfio`],
  ])("%s", (_name, owner, arrange, errno, reason, detail) => {
    const s = attached(owner);
    const [caller, deviceId, pasid] = arrange(s);
    const before = snapshot(s.fx.model);
    expect(errorOf(s.fx.op(detachPasid, caller, deviceId, pasid))).toMatchObject({ errno, reason, detail: detail(s) });
    expect(snapshot(s.fx.model)).toBe(before);
    expect(s.fx.events()).toEqual([expect.objectContaining({ op: "detach-pasid", deviceId, domainId: null, errno, reason })]);
  });
});

describe("what a PASID attachment holds", () => {
  function withPasid(fx: Fixture, deviceId: number, domainId: number, caller: Caller = ANON) {
    return unwrap(fx.op(attachPasid, caller, deviceId, 1, domainId));
  }

  it("its domain is in use: EBUSY domain-in-use until the PASID is detached", () => {
    const { fx, device, domain } = setup();
    withPasid(fx, device.id, domain.id);
    expect(errorOf(deleteDomain(fx.model, domain.id))).toEqual({
      errno: "EBUSY", reason: "domain-in-use", detail: `domain ${domain.id} is attached to 1 PASID(s)`, ids: { domainId: domain.id },
    });
    unwrap(fx.op(detachPasid, ANON, device.id, 1));
    expect(deleteDomain(fx.model, domain.id).ok).toBe(true);
  });

  it("the device it was made through cannot be removed: EBUSY pasid-in-use", () => {
    const { fx, device, domain } = setup();
    withPasid(fx, device.id, domain.id);
    expect(errorOf(deleteDevice(fx.model, device.id))).toEqual({
      errno: "EBUSY", reason: "pasid-in-use", ids: { deviceId: device.id },
      detail: `1 PASID(s) were attached through ${device.name}; detach them before removing the device`,
    });
  });

  it("an automatic domain a PASID is attached to is kept when its last group leaves", () => {
    const { fx, group, device } = setup();
    const ioas = fx.container();
    const auto = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id)).domainId;
    withPasid(fx, device.id, auto);
    expect(unwrap(fx.op(containerDetach, ANON, ioas.id, group.id))).toMatchObject({ freedDomainId: null });
    expect(fx.domainNow(auto)).toMatchObject({ auto: true });
    // Its last user, the PASID, goes: iommufd destroys the automatic domain with it.
    unwrap(fx.op(detachPasid, ANON, device.id, 1));
    expect(fx.domainNow(auto)).toBeUndefined();
  });

  it("a claim is EBUSY pasid-in-use while the group has PASIDs (__iommu_take_dma_ownership), and succeeds once they are detached", () => {
    const { fx, group, device, domain } = setup();
    withPasid(fx, device.id, domain.id);
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id))).toEqual({
      errno: "EBUSY", reason: "pasid-in-use", detail: `group ${group.name} has PASIDs attached; detach them first`, ids: { groupId: group.id },
    });
    expect(snapshot(fx.model)).toBe(before);
    unwrap(fx.op(detachPasid, ANON, device.id, 1));
    expect(unwrap(fx.op(claimOwnership, VFIO, group.id)).changed).toBe(true);
  });

  it("a claim of a group off its default domain is EBUSY group-not-default first, whatever its PASIDs", () => {
    const { fx, group, device, domain } = setup();
    withPasid(fx, device.id, domain.id);
    unwrap(fx.op(attachGroup, ANON, group.id, fx.domain({ driver: "mock" }).id));
    expect(errorOf(fx.op(claimOwnership, VFIO, group.id))).toMatchObject({ errno: "EBUSY", reason: "group-not-default" });
  });

  it("the owner's release is EBUSY pasid-in-use while PASIDs are attached (the kernel WARNs and keeps the ownership, §4 D17)", () => {
    const { fx, group, device, domain } = setup();
    unwrap(fx.op(claimOwnership, VFIO, group.id));
    withPasid(fx, device.id, domain.id, VFIO);
    fx.commit();
    const before = snapshot(fx.model);
    expect(errorOf(fx.op(releaseOwnership, VFIO, group.id))).toEqual({
      errno: "EBUSY", reason: "pasid-in-use", detail: `group ${group.name} has PASIDs attached; detach them before releasing it`, ids: { groupId: group.id },
    });
    expect(snapshot(fx.model)).toBe(before);
  });
});
