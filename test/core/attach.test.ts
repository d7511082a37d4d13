// Every errno path of the attach / replace / detach entry points
// (src/core/ops.ts) and of the group move underneath (src/core/attach.ts).
import { describe, expect, it } from "vitest";
import type { Caller } from "../../src/core/caller.js";
import { errnoCode, type ErrnoName } from "../../src/core/errno.js";
import { Fault } from "../../src/core/entities.js";
import type { Model } from "../../src/core/model.js";
import { updateDevice, updateUnit } from "../../src/core/objects.js";
import {
  attachDevice, attachGroup, detachDevice, detachGroup, replaceDomain, type Moved,
} from "../../src/core/group-moves.js";
import type { Reason } from "../../src/core/reasons.js";
import { isSoft, type Result } from "../../src/core/result.js";
import { containerAttach } from "../../src/core/container-attach.js";
import { groupCompatibility } from "../../src/core/compat.js";
import { ANON, build, errorOf, snapshot, unwrap, type Fixture } from "./fixtures.js";

type Op = (model: Model, caller: Caller, id: number, domainId: number) => Result<Moved>;

/** A mock unit, a one-device group on it and a paging domain. */
function basic(driver: "mock" | "intel-vtd" | "arm-smmu-v3" = "mock") {
  const fx = build();
  const unit = fx.unit(driver);
  const { group, devices } = fx.groupWith(unit.id);
  const domain = fx.domain({ driver });
  const other = fx.domain({ driver });
  return { fx, unit, group, device: devices[0]!, domain, other };
}

describe("ENOENT: no such object", () => {
  const MISSING = 999;
  const rows: { name: string; op: Op; target: "group" | "device"; missing: "subject" | "domain"; reason: Reason; event: string }[] = [
    { name: "attachGroup, no group", op: attachGroup, target: "group", missing: "subject", reason: "no-such-group", event: "attach-group" },
    { name: "attachGroup, no domain", op: attachGroup, target: "group", missing: "domain", reason: "no-such-domain", event: "attach-group" },
    { name: "replaceDomain, no group", op: replaceDomain, target: "group", missing: "subject", reason: "no-such-group", event: "replace-group" },
    { name: "replaceDomain, no domain", op: replaceDomain, target: "group", missing: "domain", reason: "no-such-domain", event: "replace-group" },
    { name: "detachGroup, no group", op: detachGroup, target: "group", missing: "subject", reason: "no-such-group", event: "detach-group" },
    { name: "attachDevice, no device", op: attachDevice, target: "device", missing: "subject", reason: "no-such-device", event: "attach-device" },
    { name: "attachDevice, no domain", op: attachDevice, target: "device", missing: "domain", reason: "no-such-domain", event: "attach-device" },
    { name: "detachDevice, no device", op: detachDevice, target: "device", missing: "subject", reason: "no-such-device", event: "detach-device" },
  ];

  it.each(rows)("$name → ENOENT $reason", ({ op, target, missing, reason, event }) => {
    const { fx, group, device, domain } = basic();
    fx.commit();
    const before = snapshot(fx.model);
    const subject = missing === "subject" ? MISSING : target === "group" ? group.id : device.id;
    const domainId = missing === "domain" ? MISSING : domain.id;
    const error = errorOf(op(fx.model, ANON, subject, domainId));
    expect(error.errno).toBe("ENOENT");
    expect(error.reason).toBe(reason);
    expect(isSoft(error)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
    // A missing group or device: no decision about any object, nothing logged
    // (else random ids would grow the log without bound). A missing domain
    // is a refusal about an existing group: logged.
    const events = fx.events();
    if (missing === "subject") expect(events).toEqual([]);
    else {
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ op: event, errno: "ENOENT", code: -2, reason });
    }
  });
});

describe("attach-device needs a group with exactly one device", () => {
  it.each([
    ["attachDevice", attachDevice, "attach-device"],
    ["detachDevice", detachDevice, "detach-device"],
  ] as const)("%s on a two-device group → EINVAL group-has-multiple-devices (hard)", (_name, op, eventOp) => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group, devices } = fx.groupWith(unit.id, [{}, {}]);
    const domain = fx.domain({ driver: "mock" });
    fx.commit();
    const error = errorOf(op(fx.model, ANON, devices[0]!.id, domain.id));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "group-has-multiple-devices" });
    expect(error.ids).toMatchObject({ deviceId: devices[0]!.id, groupId: group.id });
    expect(isSoft(error)).toBe(false);
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
    expect(fx.events()).toEqual([expect.objectContaining({
      op: eventOp, deviceId: devices[0]!.id, domainId: domain.id, errno: "EINVAL", code: -22, reason: "group-has-multiple-devices",
    })]);
  });

  it("attachDevice on a one-device group moves the group and records the group id", () => {
    const { fx, group, device, domain } = basic();
    fx.commit();
    expect(fx.op(attachDevice, ANON, device.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: domain.id, changed: true } });
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
    expect(fx.events()).toEqual([expect.objectContaining({
      op: "attach-device", deviceId: device.id, groupId: group.id, domainId: domain.id, errno: null, code: 0,
    })]);
    expect(fx.op(detachDevice, ANON, device.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: group.defaultDomainId, changed: true } });
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
  });
});

describe("attach / replace / detach", () => {
  it("attach while on another non-default domain → EBUSY group-attached (use replace)", () => {
    const { fx, group, domain, other } = basic();
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    fx.commit();
    const error = errorOf(fx.op(attachGroup, ANON, group.id, other.id));
    expect(error).toMatchObject({ errno: "EBUSY", reason: "group-attached", ids: { groupId: group.id, domainId: domain.id } });
    expect(isSoft(error)).toBe(false);
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "attach-group", errno: "EBUSY", code: -16, domainId: other.id })]);
  });

  it("attach the same domain twice → ok, changed false, no driver call (an injected fault is not consumed)", () => {
    const { fx, group, device, domain } = basic();
    expect(fx.op(attachGroup, ANON, group.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: domain.id, changed: true } });
    const fault = fx.fault({ deviceId: device.id, errno: "ENOMEM", count: 1 });
    fx.commit();
    expect(fx.op(attachGroup, ANON, group.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: domain.id, changed: false } });
    expect(fx.op(attachDevice, ANON, device.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: domain.id, changed: false } });
    expect(fx.model.get("fault", fault.id)).toEqual(fault);
    const drained = fx.model.takeChanges();
    expect(drained.rows.fault.size).toBe(0);
    expect(drained.rows.group.size).toBe(0);
    expect(drained.events.map((e) => [e.op, e.code])).toEqual([["attach-group", 0], ["attach-device", 0]]);
  });

  it("replace moves a group between paging domains without EBUSY", () => {
    const { fx, group, domain, other } = basic();
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    fx.commit();
    expect(fx.op(replaceDomain, ANON, group.id, other.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: other.id, changed: true } });
    expect(fx.groupNow(group.id).domainId).toBe(other.id);
    expect(fx.model.attachedGroupCount(domain.id)).toBe(0);
    expect([...fx.model.groupsAttachedTo(other.id)]).toEqual([group.id]);
    expect(fx.events()).toEqual([expect.objectContaining({ op: "replace-group", errno: null, code: 0, domainId: other.id })]);
  });

  it("replace from the default domain works like attach", () => {
    const { fx, group, domain } = basic();
    expect(unwrap(fx.op(replaceDomain, ANON, group.id, domain.id)).changed).toBe(true);
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
  });

  it("replace to the current domain → ok, changed false, no driver call", () => {
    const { fx, group, device, domain } = basic();
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    const fault = fx.fault({ deviceId: device.id, errno: "ENOMEM" });
    fx.commit();
    expect(fx.op(replaceDomain, ANON, group.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: domain.id, changed: false } });
    expect(fx.model.get("fault", fault.id)?.remaining).toBe(1);
  });

  it("a failing replace (injected ENOMEM) leaves the old domain attached", () => {
    const { fx, group, device, domain, other } = basic();
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    fx.fault({ deviceId: device.id, errno: "ENOMEM" });
    fx.commit();
    expect(errorOf(fx.op(replaceDomain, ANON, group.id, other.id))).toMatchObject({ errno: "ENOMEM", reason: "injected-fault" });
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
    expect([...fx.model.groupsAttachedTo(domain.id)]).toEqual([group.id]);
  });

  it("detaching a domain that is not the current one changes nothing", () => {
    const { fx, group, domain, other } = basic();
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    fx.commit();
    expect(fx.op(detachGroup, ANON, group.id, other.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: domain.id, changed: false } });
    expect(fx.groupNow(group.id).domainId).toBe(domain.id);
    const drained = fx.model.takeChanges();
    expect(drained.rows.group.size).toBe(0);
    expect(drained.events).toEqual([expect.objectContaining({ op: "detach-group", errno: null, code: 0 })]);
  });

  it("detach → back to the default domain", () => {
    const { fx, group, domain } = basic();
    unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
    fx.commit();
    expect(fx.op(detachGroup, ANON, group.id, domain.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: group.defaultDomainId, changed: true } });
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
    expect(fx.model.attachedGroupCount(domain.id)).toBe(0);
    // Back on its default domain: the paging domain holds no domain ID on the unit now.
    expect(fx.model.devicesAttachedOn(group.unitId, domain.id)).toBe(0);
    expect(fx.model.devicesAttachedOn(group.unitId, group.defaultDomainId)).toBe(1);
    // The manual domain is not freed by the detach.
    expect(fx.domainNow(domain.id)).toBeDefined();
  });

  it("domain of another driver → EINVAL different-driver (soft)", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const { group } = fx.groupWith(unit.id);
    const amd = fx.domain({ driver: "amd-iommu" });
    fx.commit();
    const error = errorOf(fx.op(attachGroup, ANON, group.id, amd.id));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "different-driver" });
    expect(isSoft(error)).toBe(true);
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
    expect(fx.events()).toEqual([expect.objectContaining({ errno: "EINVAL", code: -22, reason: "different-driver" })]);
  });

  it.each([["attachGroup", attachGroup], ["replaceDomain", replaceDomain]] as const)(
    "%s to the default (dma) domain of another group → EINVAL domain-not-attachable (hard)",
    (_name, op) => {
      const fx = build();
      const unit = fx.unit("mock");
      const a = fx.groupWith(unit.id).group;
      const b = fx.groupWith(unit.id).group;
      fx.commit();
      const error = errorOf(op(fx.model, ANON, a.id, b.defaultDomainId));
      expect(error).toMatchObject({ errno: "EINVAL", reason: "domain-not-attachable" });
      expect(isSoft(error)).toBe(false);
      expect(fx.groupNow(a.id).domainId).toBe(a.defaultDomainId);
    },
  );

  it("unit offline → ENODEV unit-offline", () => {
    const { fx, unit, group, domain } = basic();
    unwrap(updateUnit(fx.model, unit.id, { online: false }));
    fx.commit();
    const error = errorOf(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(error).toMatchObject({ errno: "ENODEV", reason: "unit-offline" });
    expect(isSoft(error)).toBe(false);
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
    expect(fx.events()).toEqual([expect.objectContaining({ errno: "ENODEV", code: -19, reason: "unit-offline" })]);
  });

  it("device faulty → ENODEV device-faulty, naming the device", () => {
    const { fx, group, device, domain } = basic();
    unwrap(updateDevice(fx.model, device.id, { faulty: true }));
    fx.commit();
    const error = errorOf(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(error).toMatchObject({ errno: "ENODEV", reason: "device-faulty", ids: { deviceId: device.id } });
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
  });
});

// The core's own refusals before any driver op (attach.ts checkCoreRules):
// a device whose firmware asked for 1:1 mappings is never blocked
// (__iommu_device_set_domain), an untrusted one never on identity
// (iommu_get_default_domain_type). The device can never take a domain of
// that type, so no other domain of it helps: hard.
describe("the core's rules for the static domains", () => {
  const ROWS = [
    { rule: "a requires-identity device on the static blocked domain", type: "blocked", flags: { requiresIdentity: true }, reason: "requires-identity",
      detail: (dev: string) => `${dev} has firmware-reserved regions and needs a 1:1 mapping; it cannot be blocked` },
    { rule: "an untrusted device on the static identity domain", type: "identity", flags: { untrusted: true }, reason: "untrusted-device",
      detail: (dev: string) => `${dev} is untrusted (external-facing); it cannot bypass translation` },
  ] as const;
  const OPS = [["attachGroup", attachGroup], ["replaceDomain", replaceDomain]] as const;

  describe.each(OPS)("%s", (opName, op) => {
    it.each(ROWS)("$rule (the 2nd of 2 devices) → hard EINVAL $reason, naming it; nothing changes", ({ type, flags, reason, detail }) => {
      const fx = build();
      const unit = fx.unit("intel-vtd");
      const { group, devices } = fx.groupWith(unit.id, [{}, flags]);
      const target = fx.domain({ type, driver: "intel-vtd" });
      fx.commit();
      const before = snapshot(fx.model);
      const error = errorOf(fx.op(op, ANON, group.id, target.id));
      expect(error).toEqual({
        errno: "EINVAL", reason, detail: detail(devices[1]!.name), ids: { deviceId: devices[1]!.id, groupId: group.id, domainId: target.id },
      });
      expect(isSoft(error)).toBe(false);
      expect(snapshot(fx.model)).toBe(before);
      expect(fx.events()).toEqual([expect.objectContaining({
        op: opName === "attachGroup" ? "attach-group" : "replace-group", errno: "EINVAL", code: -22, reason, detail: detail(devices[1]!.name),
      })]);
    });
  });

  it.each([
    ["a requires-identity device on the static identity domain", "identity", { requiresIdentity: true }],
    ["an untrusted device on the static blocked domain", "blocked", { untrusted: true }],
    ["an untrusted device on a paging domain", "paging", { untrusted: true }],
  ] as const)("%s → attached", (_name, type, flags) => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const { group } = fx.groupWith(unit.id, [flags]);
    const target = type === "paging" ? fx.domain({ driver: "intel-vtd" }) : fx.domain({ type, driver: "intel-vtd" });
    expect(fx.op(attachGroup, ANON, group.id, target.id)).toEqual({ ok: true, value: { groupId: group.id, domainId: target.id, changed: true } });
  });

  it("the dry run reports the same refusal", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const { group } = fx.groupWith(unit.id, [{ untrusted: true }]);
    const identity = fx.domain({ type: "identity", driver: "intel-vtd" });
    const verdict = unwrap(groupCompatibility(fx.model, group.id, { limit: 100 })).verdicts.find((v) => v.domainId === identity.id);
    expect(verdict).toMatchObject({ compatible: false, errno: "EINVAL", soft: false, reason: "untrusted-device" });
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
  });
});

describe("injected faults", () => {
  const rows: { injected: ErrnoName; errno: ErrnoName; driverErrno: ErrnoName | undefined }[] = [
    { injected: "ENOMEM", errno: "ENOMEM", driverErrno: undefined },
    { injected: "ENOSPC", errno: "ENOSPC", driverErrno: undefined },
    { injected: "EBUSY", errno: "EBUSY", driverErrno: undefined },
    { injected: "ENODEV", errno: "ENODEV", driverErrno: undefined },
    { injected: "EINVAL", errno: "EINVAL", driverErrno: undefined },
    { injected: "EIO", errno: "ENODEV", driverErrno: "EIO" },
    { injected: "ETIMEDOUT", errno: "ENODEV", driverErrno: "ETIMEDOUT" },
    { injected: "EPERM", errno: "ENODEV", driverErrno: "EPERM" },
    { injected: "EOPNOTSUPP", errno: "ENODEV", driverErrno: "EOPNOTSUPP" },
  ];

  describe.each(["device", "unit"] as const)("on the %s", (scope) => {
    it.each(rows)("$injected → $errno (driverErrno $driverErrno)", ({ injected, errno, driverErrno }) => {
      const { fx, unit, group, device, domain } = basic();
      const fault = fx.fault({ ...(scope === "device" ? { deviceId: device.id } : { unitId: unit.id }), errno: injected, count: 1 });
      fx.commit();
      const error = errorOf(fx.op(attachGroup, ANON, group.id, domain.id));
      expect(error.errno).toBe(errno);
      expect(error.reason).toBe("injected-fault");
      expect(error.driverErrno).toBe(driverErrno);
      expect(error.ids?.deviceId).toBe(device.id);
      // A driver's EINVAL from attach_dev means "incompatible" by contract.
      expect(isSoft(error)).toBe(errno === "EINVAL");
      expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
      const drained = fx.model.takeChanges();
      // The fault was consumed (count 1 → gone) even though the attach failed.
      expect(drained.rows.fault.get(fault.id)?.after).toBeNull();
      expect(drained.rows.group.size).toBe(0);
      expect(drained.events).toEqual([expect.objectContaining({ op: "attach-group", errno, code: errnoCode(errno), reason: "injected-fault" })]);
    });
  });

  it("the count decrements on every failed attempt and the fault then expires", () => {
    const { fx, group, device, domain } = basic();
    const fault = fx.fault({ deviceId: device.id, errno: "ENOMEM", count: 2 });
    fx.commit();
    expect(errorOf(fx.op(attachGroup, ANON, group.id, domain.id)).errno).toBe("ENOMEM");
    expect(fx.model.get("fault", fault.id)?.remaining).toBe(1);
    expect(errorOf(fx.op(attachGroup, ANON, group.id, domain.id)).errno).toBe("ENOMEM");
    expect(fx.model.get("fault", fault.id)).toBeUndefined();
    expect(fx.model.faultsOn({ deviceId: device.id })).toEqual([]);
    expect(unwrap(fx.op(attachGroup, ANON, group.id, domain.id)).changed).toBe(true);
    // The spent fault is not a client's delete: no topology event.
    expect(fx.events().map((e) => [e.op, e.code])).toEqual([["attach-group", -12], ["attach-group", -12], ["attach-group", 0]]);
  });

  it("a device fault is hit before a unit fault", () => {
    const { fx, unit, group, device, domain } = basic();
    const unitFault = fx.fault({ unitId: unit.id, errno: "ENOSPC" });
    const devFault = fx.fault({ deviceId: device.id, errno: "ENOMEM" });
    expect(errorOf(fx.op(attachGroup, ANON, group.id, domain.id)).errno).toBe("ENOMEM");
    expect(fx.model.get("fault", devFault.id)).toBeUndefined();
    expect(fx.model.get("fault", unitFault.id)?.remaining).toBe(1);
    expect(errorOf(fx.op(attachGroup, ANON, group.id, domain.id)).errno).toBe("ENOSPC");
  });

  it("an unknown errno name in a fault row is treated as ENODEV", () => {
    const { fx, group, device, domain } = basic();
    fx.model.put("fault", Fault.make({ id: fx.model.allocateId("fault"), deviceId: device.id, errno: "EWHATEVER", remaining: 1 }));
    const error = errorOf(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(error.errno).toBe("ENODEV");
    expect(error.driverErrno).toBeUndefined();
  });
});

describe("all or nothing", () => {
  it("mock: the 3rd of 3 devices is no-dirty → EINVAL naming it; the group stays", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group, devices } = fx.groupWith(unit.id, [{}, {}, { noDirty: true }]);
    const domain = fx.domain({ unitId: unit.id, config: { dirtyTracking: true } });
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "dirty-tracking", ids: { deviceId: devices[2]!.id } });
    expect(isSoft(error)).toBe(true);
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
    expect(snapshot(fx.model)).toBe(before);
    expect(fx.model.hasChanges()).toBe(true); // the event
    expect(fx.model.takeChanges().rows.group.size).toBe(0);
  });

  it("arm-smmu-v3: the 3rd device lacks CANWBS → EINVAL; the domain is not finalised, no ASID is taken", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3");
    const { group, devices } = fx.groupWith(unit.id, [{ canwbs: true }, { canwbs: true }, { canwbs: false }]);
    const domain = fx.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } });
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(error).toMatchObject({ errno: "EINVAL", reason: "cache-coherency", ids: { deviceId: devices[2]!.id } });
    expect(fx.domainNow(domain.id)?.unitId).toBeNull();
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(0);
    expect([...fx.model.domainsBoundTo(unit.id)].includes(domain.id)).toBe(false);
    expect(snapshot(fx.model)).toBe(before);
  });

  it("a fault on the 2nd device: consumed, the 3rd device is never tried, the group stays", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group, devices } = fx.groupWith(unit.id, [{}, {}, {}]);
    const domain = fx.domain({ driver: "mock" });
    const f2 = fx.fault({ deviceId: devices[1]!.id, errno: "ENOMEM" });
    const f3 = fx.fault({ deviceId: devices[2]!.id, errno: "ENOSPC" });
    fx.commit();
    const error = errorOf(fx.op(attachGroup, ANON, group.id, domain.id));
    expect(error).toMatchObject({ errno: "ENOMEM", ids: { deviceId: devices[1]!.id } });
    expect(fx.model.get("fault", f2.id)).toBeUndefined();
    expect(fx.model.get("fault", f3.id)?.remaining).toBe(1);
    expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
  });

  it("a 3-device group attaches as a whole and binds the domain once", () => {
    const fx = build();
    const unit = fx.unit("arm-smmu-v3");
    const { group } = fx.groupWith(unit.id, [{ canwbs: true }, { canwbs: true }, { canwbs: true }]);
    const domain = fx.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } });
    expect(unwrap(fx.op(attachGroup, ANON, group.id, domain.id)).changed).toBe(true);
    expect(fx.domainNow(domain.id)?.unitId).toBe(unit.id);
    expect(fx.model.pagingDomainsBoundTo(unit.id)).toBe(1);
  });
});

describe("detach always succeeds", () => {
  type Basic = ReturnType<typeof basic>;
  const breakers: [string, (s: Basic) => void][] = [
    ["unit offline", (s) => { unwrap(updateUnit(s.fx.model, s.unit.id, { online: false })); }],
    ["device faulty", (s) => { unwrap(updateDevice(s.fx.model, s.device.id, { faulty: true })); }],
    ["device fault injected", (s) => { s.fx.fault({ deviceId: s.device.id, errno: "ENOMEM" }); }],
    ["unit fault injected", (s) => { s.fx.fault({ unitId: s.unit.id, errno: "EIO" }); }],
  ];
  const ops: [string, (s: Basic) => Result<Moved>][] = [
    ["detachGroup", (s) => detachGroup(s.fx.model, ANON, s.group.id, s.domain.id)],
    ["detachDevice", (s) => detachDevice(s.fx.model, ANON, s.device.id, s.domain.id)],
  ];
  describe.each(ops)("%s", (_op, detach) => {
    it.each(breakers)("%s: the group returns to its default domain, no fault consumed", (_name, breakIt) => {
      const s = basic();
      const { fx, group, domain } = s;
      unwrap(fx.op(attachGroup, ANON, group.id, domain.id));
      breakIt(s);
      const faultsBefore = JSON.stringify([...fx.model.all("fault")]);
      expect(detach(s)).toEqual({ ok: true, value: { groupId: group.id, domainId: group.defaultDomainId, changed: true } });
      expect(fx.groupNow(group.id).domainId).toBe(group.defaultDomainId);
      expect(fx.model.attachedGroupCount(domain.id)).toBe(0);
      expect(JSON.stringify([...fx.model.all("fault")])).toBe(faultsBefore);
    });
  });
});

describe("automatic domains", () => {
  it("an auto domain is freed after a replace away from it", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group } = fx.groupWith(unit.id);
    const ioas = fx.container();
    const manual = fx.domain({ driver: "mock" });
    const found = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(found.allocated).toBe(true);
    const auto = fx.domainNow(found.domainId);
    expect(auto).toMatchObject({ auto: true, containerId: ioas.id, type: "paging" });
    fx.commit();
    expect(unwrap(fx.op(replaceDomain, ANON, group.id, manual.id)).changed).toBe(true);
    expect(fx.domainNow(found.domainId)).toBeUndefined();
    expect(fx.model.domainsOf(ioas.id)).toEqual([]);
    const drained = fx.model.takeChanges();
    expect(drained.rows.domain.get(found.domainId)?.after).toBeNull();
    expect(drained.rows.group.get(group.id)?.after?.domainId).toBe(manual.id);
  });

  it("an auto domain is freed after a detach; a manual one is not", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const { group } = fx.groupWith(unit.id);
    const ioas = fx.container();
    const found = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    unwrap(fx.op(detachGroup, ANON, group.id, found.domainId));
    expect(fx.domainNow(found.domainId)).toBeUndefined();
  });

  it("an auto domain still used by another group is kept after a replace away", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const a = fx.groupWith(unit.id).group;
    const b = fx.groupWith(unit.id).group;
    const ioas = fx.container();
    const manual = fx.domain({ driver: "mock" });
    const first = unwrap(fx.op(containerAttach, ANON, ioas.id, a.id));
    const second = unwrap(fx.op(containerAttach, ANON, ioas.id, b.id));
    expect(second).toMatchObject({ domainId: first.domainId, allocated: false });
    unwrap(fx.op(replaceDomain, ANON, a.id, manual.id));
    expect(fx.domainNow(first.domainId)).toBeDefined();
    unwrap(fx.op(replaceDomain, ANON, b.id, manual.id));
    expect(fx.domainNow(first.domainId)).toBeUndefined();
  });
});

describe("events", () => {
  it("every attempt is recorded, in order, with its errno and negative code", () => {
    const { fx, unit, group, device, domain, other } = basic();
    fx.commit();
    fx.op(attachGroup, ANON, group.id, domain.id); // ok
    fx.op(attachGroup, ANON, group.id, other.id); // EBUSY
    fx.op(attachGroup, ANON, group.id, domain.id); // ok, unchanged
    fx.fault({ deviceId: device.id, errno: "EIO" });
    fx.op(replaceDomain, ANON, group.id, other.id); // ENODEV (EIO)
    unwrap(updateUnit(fx.model, unit.id, { online: false }));
    fx.op(replaceDomain, ANON, group.id, other.id); // ENODEV unit-offline
    fx.op(detachGroup, { owner: "nobody" }, group.id, domain.id); // ok
    fx.op(attachGroup, ANON, 4242, domain.id); // ENOENT, no such group: not logged
    fx.op(attachGroup, ANON, group.id, 4242); // ENOENT, no such domain: logged
    const events = fx.events();
    // The fault injected and the unit taken offline on the way are topology changes, logged in their place.
    expect(events.map((e) => [e.op, e.kind ?? null, e.errno, e.code, e.reason])).toEqual([
      ["attach-group", null, null, 0, null],
      ["attach-group", null, "EBUSY", -16, "group-attached"],
      ["attach-group", null, null, 0, null],
      ["create", "fault", null, 0, null],
      ["replace-group", null, "ENODEV", -19, "injected-fault"],
      ["update", "unit", null, 0, null],
      ["replace-group", null, "ENODEV", -19, "unit-offline"],
      ["detach-group", null, null, 0, null],
      ["attach-group", null, "ENOENT", -2, "no-such-domain"],
    ]);
    expect(events[5]).toMatchObject({ objectId: unit.id, groupId: null, domainId: null });
    expect(events[7]).toMatchObject({ owner: "nobody", groupId: group.id, domainId: domain.id });
    expect(events[4]?.detail).toContain("EIO");
    expect(events.every((e) => e.owner === null || e.owner === "nobody")).toBe(true);
    expect(fx.model.takeChanges().events).toEqual([]);
  });
});
