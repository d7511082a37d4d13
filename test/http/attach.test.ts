// The attach contract over HTTP: the errno → status table through real
// requests, the problem document, and the attach / replace / detach / claim /
// release / dry-run routes.
import { describe, expect, it } from "vitest";
import {
  clientForFile, expectProblem, uniqueName,
  type CompatibilityView, type DeviceFlagsView, type DeviceView, type DomainView, type MovedView, type Res,
} from "../helpers/http.js";

const c = clientForFile();

/** A unit with one group of devices (one default device) and its state. */
async function rig(driver: string, capabilities: Record<string, unknown> = {}, devices: Partial<DeviceFlagsView>[] = [{}]) {
  const unit = await c.unit({ driver, capabilities });
  const { group, devices: devs } = await c.groupWith(unit.id, devices);
  return { unit, group, devices: devs };
}

interface Case {
  name: string;
  /** Builds the situation and sends the request that must fail. */
  run(): Promise<{ res: Res<unknown>; groupId?: number; stays?: number }>;
  status: number;
  errno: Parameters<typeof expectProblem>[2];
  reason: string;
  soft: boolean;
  driverErrno?: string;
}

const cases: Case[] = [
  {
    name: "EINVAL snoop-control (intel, unit without snoop control, coherent domain)",
    status: 409, errno: "EINVAL", reason: "snoop-control", soft: true,
    async run() {
      const { unit, group } = await rig("intel-vtd", { snoopControl: false });
      const d = await c.domain({ unitId: unit.id, config: { enforceCacheCoherency: true } });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL address-width (intel, 48-bit domain on a 39-bit unit)",
    status: 409, errno: "EINVAL", reason: "address-width", soft: true,
    async run() {
      const { group } = await rig("intel-vtd", { addressWidth: 39 });
      const d = await c.domain({ driver: "intel-vtd", config: { addressWidth: 48 } });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL different-driver (amd domain, intel group)",
    status: 409, errno: "EINVAL", reason: "different-driver", soft: true,
    async run() {
      const { group } = await rig("intel-vtd");
      const d = await c.domain({ driver: "amd-iommu" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL different-instance (arm-smmu-v3 domain finalised on another SMMU)",
    status: 409, errno: "EINVAL", reason: "different-instance", soft: true,
    async run() {
      const other = await c.unit({ driver: "arm-smmu-v3" });
      const d = await c.domain({ unitId: other.id });
      const { group } = await rig("arm-smmu-v3");
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL cache-coherency (arm-smmu-v3 device without CANWBS)",
    status: 409, errno: "EINVAL", reason: "cache-coherency", soft: true,
    async run() {
      const { group } = await rig("arm-smmu-v3", {}, [{ canwbs: false }]);
      const d = await c.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL dirty-tracking (mock no-dirty device, dirty domain)",
    status: 409, errno: "EINVAL", reason: "dirty-tracking", soft: true,
    async run() {
      const { unit, group } = await rig("mock", {}, [{ noDirty: true }]);
      const d = await c.domain({ unitId: unit.id, config: { dirtyTracking: true } });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL requires-identity (claim of a group with an RMRR device; hard: no blocking domain can take it)",
    status: 409, errno: "EINVAL", reason: "requires-identity", soft: false,
    async run() {
      const { group } = await rig("intel-vtd", {}, [{ requiresIdentity: true }]);
      return { res: await c.post(`/v1/groups/${group.id}/claim`, { owner: "vfio" }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL untrusted-device (the static identity domain for an external-facing device; hard)",
    status: 409, errno: "EINVAL", reason: "untrusted-device", soft: false,
    async run() {
      const { group } = await rig("intel-vtd", {}, [{ untrusted: true }]);
      const d = (await c.post<{ id: number }>("/v1/domains", { type: "identity", driver: "intel-vtd" })).body;
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL bypass-unsupported (the static identity domain on a DART without bypass; hard)",
    status: 409, errno: "EINVAL", reason: "bypass-unsupported", soft: false,
    async run() {
      const { group } = await rig("apple-dart", { bypass: false });
      const d = (await c.post<{ id: number }>("/v1/domains", { type: "identity", driver: "apple-dart" })).body;
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL iommu-coherency (intel domain built for coherent walks, unit without)",
    status: 409, errno: "EINVAL", reason: "iommu-coherency", soft: true,
    async run() {
      const { group } = await rig("intel-vtd", { coherentWalk: false });
      const d = await c.domain({ driver: "intel-vtd" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL first-stage (intel first-stage domain, unit in legacy mode)",
    status: 409, errno: "EINVAL", reason: "first-stage", soft: true,
    async run() {
      const { group } = await rig("intel-vtd", { firstStage: false });
      const d = await c.domain({ driver: "intel-vtd" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL group-has-multiple-devices (device attach in a shared group, not soft)",
    status: 409, errno: "EINVAL", reason: "group-has-multiple-devices", soft: false,
    async run() {
      const { unit, group, devices } = await rig("intel-vtd", {}, [{}, {}]);
      const d = await c.domain({ unitId: unit.id });
      return { res: await c.post(`/v1/devices/${devices[0]!.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EINVAL domain-not-attachable (another group's default domain, not soft)",
    status: 409, errno: "EINVAL", reason: "domain-not-attachable", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const other = await c.group(unit.id);
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: other.defaultDomainId }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EBUSY group-attached (attach while on another paging domain)",
    status: 409, errno: "EBUSY", reason: "group-attached", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const a = await c.domain({ unitId: unit.id });
      const b = await c.domain({ unitId: unit.id });
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: b.id }), groupId: group.id, stays: a.id };
    },
  },
  {
    name: "EBUSY pasid-in-use (arm-smmu-v3 stage-2 domain, device with PASIDs)",
    status: 409, errno: "EBUSY", reason: "pasid-in-use", soft: false,
    async run() {
      const unit = await c.unit({ driver: "arm-smmu-v3" });
      const group = await c.group(unit.id);
      const device = await c.expect<DeviceView>(201, "POST", "/v1/devices", { name: uniqueName("dev"), groupId: group.id, maxPasids: 256 });
      const s1 = await c.domain({ unitId: unit.id });
      await c.expect(201, "POST", `/v1/devices/${device.id}/pasids`, { pasid: 1, domainId: s1.id });
      const d = await c.domain({ unitId: unit.id, config: { nestParent: true } });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EBUSY group-not-default (claim while attached)",
    status: 409, errno: "EBUSY", reason: "group-not-default", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const a = await c.domain({ unitId: unit.id });
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
      return { res: await c.post(`/v1/groups/${group.id}/claim`, { owner: "vfio" }), groupId: group.id, stays: a.id };
    },
  },
  {
    name: "ENOSPC domain-ids-exhausted (intel unit with two domain IDs; a two-device group's default domain keeps its ID while its first device moves)",
    status: 507, errno: "ENOSPC", reason: "domain-ids-exhausted", soft: false,
    async run() {
      const unit = await c.unit({ driver: "intel-vtd", capabilities: { domainIds: 2 } });
      const first = await c.groupWith(unit.id);
      const second = await c.groupWith(unit.id, [{}, {}]);
      const a = await c.domain({ unitId: unit.id });
      const b = await c.domain({ unitId: unit.id });
      await c.ok("POST", `/v1/groups/${first.group.id}/attach`, { domainId: a.id });
      return { res: await c.post(`/v1/groups/${second.group.id}/attach`, { domainId: b.id }), groupId: second.group.id, stays: second.group.domainId };
    },
  },
  {
    name: "ENOSPC context-banks-exhausted (arm-smmu with one context bank, held by the group's default domain)",
    status: 507, errno: "ENOSPC", reason: "context-banks-exhausted", soft: false,
    async run() {
      const unit = await c.unit({ driver: "arm-smmu", capabilities: { domainIds: 1 } });
      const { group } = await c.groupWith(unit.id);
      const b = await c.domain({ unitId: unit.id });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: b.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "ENOMEM injected through POST /v1/faults",
    status: 507, errno: "ENOMEM", reason: "injected-fault", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const d = await c.domain({ unitId: unit.id });
      await c.fault({ unitId: unit.id, errno: "ENOMEM", count: 1 });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "ENOSPC injected (a contract code passes through unchanged)",
    status: 507, errno: "ENOSPC", reason: "injected-fault", soft: false,
    async run() {
      const { unit, group } = await rig("amd-iommu");
      const d = await c.domain({ unitId: unit.id });
      await c.fault({ unitId: unit.id, errno: "ENOSPC" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "EBUSY injected (a contract code passes through unchanged)",
    status: 409, errno: "EBUSY", reason: "injected-fault", soft: false,
    async run() {
      const { unit, group } = await rig("amd-iommu");
      const d = await c.domain({ unitId: unit.id });
      await c.fault({ unitId: unit.id, errno: "EBUSY" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    // include/linux/iommu.h (attach_dev): EINVAL means "incompatible", and
    // the caller's classification is by errno: it is soft whoever returned it.
    name: "EINVAL injected is soft like any driver EINVAL",
    status: 409, errno: "EINVAL", reason: "injected-fault", soft: true,
    async run() {
      const { unit, group } = await rig("amd-iommu");
      const d = await c.domain({ unitId: unit.id });
      await c.fault({ unitId: unit.id, errno: "EINVAL" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "ENODEV unit-offline (PATCH online:false)",
    status: 422, errno: "ENODEV", reason: "unit-offline", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const d = await c.domain({ unitId: unit.id });
      await c.ok("PATCH", `/v1/units/${unit.id}`, { online: false });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "ENODEV device-faulty (PATCH faulty:true)",
    status: 422, errno: "ENODEV", reason: "device-faulty", soft: false,
    async run() {
      const { unit, group, devices } = await rig("intel-vtd");
      const d = await c.domain({ unitId: unit.id });
      await c.ok("PATCH", `/v1/devices/${devices[0]!.id}`, { faulty: true });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "ENODEV granule-too-large (virtio-iommu 64K granule: hard, not EINVAL)",
    status: 422, errno: "ENODEV", reason: "granule-too-large", soft: false,
    async run() {
      const { group } = await rig("virtio-iommu", { pageSizes: [65536], cpuPageSize: 4096 });
      const d = await c.domain({ driver: "virtio-iommu" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  },
  ...["EIO", "EAGAIN", "ETIMEDOUT", "EFAULT"].map((raw): Case => ({
    name: `unknown driver errno ${raw} → ENODEV with driverErrno ${raw}`,
    status: 422, errno: "ENODEV", reason: "injected-fault", soft: false, driverErrno: raw,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const d = await c.domain({ unitId: unit.id });
      await c.fault({ unitId: unit.id, errno: raw });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), groupId: group.id, stays: group.domainId };
    },
  })),
  {
    name: "EPERM owned-by-other (claimed group, other owner)",
    status: 403, errno: "EPERM", reason: "owned-by-other", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const d = await c.domain({ unitId: unit.id });
      const claimed = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio-a" });
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id, owner: "vfio-b" }), groupId: group.id, stays: claimed.group.domainId };
    },
  },
  {
    name: "EPERM owned-by-other (anonymous caller on a claimed group)",
    status: 403, errno: "EPERM", reason: "owned-by-other", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const d = await c.domain({ unitId: unit.id });
      const claimed = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio-a" });
      return { res: await c.post(`/v1/groups/${group.id}/replace`, { domainId: d.id }), groupId: group.id, stays: claimed.group.domainId };
    },
  },
  {
    name: "EPERM not-owned (release of a group nobody owns)",
    status: 403, errno: "EPERM", reason: "not-owned", soft: false,
    async run() {
      const { group } = await rig("intel-vtd");
      return { res: await c.post(`/v1/groups/${group.id}/release`, { owner: "vfio" }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "ENOENT no-such-domain (domainId 9999)",
    status: 404, errno: "ENOENT", reason: "no-such-domain", soft: false,
    async run() {
      const { group } = await rig("intel-vtd");
      return { res: await c.post(`/v1/groups/${group.id}/attach`, { domainId: 9999 }), groupId: group.id, stays: group.domainId };
    },
  },
  {
    name: "ENOENT no-such-domain on replace (iommufd selftest: replace onto a missing id)",
    status: 404, errno: "ENOENT", reason: "no-such-domain", soft: false,
    async run() {
      const { unit, group } = await rig("intel-vtd");
      const a = await c.domain({ unitId: unit.id });
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
      return { res: await c.post(`/v1/groups/${group.id}/replace`, { domainId: 9999 }), groupId: group.id, stays: a.id };
    },
  },
  {
    name: "ENOENT no-such-group",
    status: 404, errno: "ENOENT", reason: "no-such-group", soft: false,
    async run() {
      const d = await c.domain({ driver: "intel-vtd" });
      return { res: await c.post(`/v1/groups/9999/attach`, { domainId: d.id }) };
    },
  },
  {
    name: "ENOENT no-such-device",
    status: 404, errno: "ENOENT", reason: "no-such-device", soft: false,
    async run() {
      const d = await c.domain({ driver: "intel-vtd" });
      return { res: await c.post(`/v1/devices/9999/attach`, { domainId: d.id }) };
    },
  },
  {
    name: "EOPNOTSUPP unsupported (dirty-tracking domain on arm-smmu)",
    status: 501, errno: "EOPNOTSUPP", reason: "unsupported", soft: false,
    async run() {
      const unit = await c.unit({ driver: "arm-smmu" });
      return { res: await c.post("/v1/domains", { type: "paging", unitId: unit.id, config: { dirtyTracking: true } }) };
    },
  },
];

describe("errno → status through real requests", () => {
  it.each(cases)("$name → $status $errno", async ({ run, status, errno, reason, soft, driverErrno }) => {
    const { res, groupId, stays } = await run();
    const body = expectProblem(res, status, errno, reason, { soft });
    expect(body.title).not.toBe("");
    if (driverErrno) expect(body.driverErrno).toBe(driverErrno);
    else expect(body.driverErrno).toBeUndefined();
    // A refused attach leaves the group where it was.
    if (groupId !== undefined) expect((await c.groupNow(groupId)).domainId).toBe(stays);
  });
});

describe("the problem document", () => {
  it("carries type, title, status, detail, instance, errno, code, soft, reason, requestId", async () => {
    const { unit, group } = await rig("intel-vtd", { snoopControl: false });
    const d = await c.domain({ unitId: unit.id, config: { enforceCacheCoherency: true } });
    const res = await c.send("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id }, { "x-request-id": "req-snoop-1" });
    const body = expectProblem(res, 409, "EINVAL", "snoop-control", { soft: true, code: -22 });
    expect(body).toMatchObject({
      type: "urn:iommu-arbiter:problem:snoop-control",
      title: "Domain enforces cache coherency; unit has no snoop control",
      instance: `/v1/groups/${group.id}/attach`,
      requestId: "req-snoop-1",
    });
    expect(body.detail).toContain(unit.name);
    expect(res.headers["x-request-id"]).toBe("req-snoop-1");
  });

  it("names the group, domain and device a driver refusal is about", async () => {
    const { unit, group, devices } = await rig("intel-vtd", { snoopControl: false });
    const d = await c.domain({ unitId: unit.id, config: { enforceCacheCoherency: true } });
    const body = expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), 409, "EINVAL", "snoop-control");
    expect({ groupId: body.groupId, domainId: body.domainId, deviceId: body.deviceId }).toEqual({ groupId: group.id, domainId: d.id, deviceId: devices[0]!.id });
  });

  it("EBUSY names the group and the domain it is busy on", async () => {
    const { unit, group } = await rig("intel-vtd");
    const a = await c.domain({ unitId: unit.id });
    const b = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: b.id }), 409, "EBUSY", "group-attached", { groupId: group.id, domainId: a.id });
  });
});

describe("attach / replace / detach", () => {
  it("attach answers {changed, group, domain}; the same attach again is changed:false with no driver call", async () => {
    const { unit, group } = await rig("intel-vtd");
    const d = await c.domain({ unitId: unit.id });
    const res = await c.post<MovedView>(`/v1/groups/${group.id}/attach`, { domainId: d.id });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["changed", "domain", "group"]);
    expect(res.body.changed).toBe(true);
    expect(res.body.group).toEqual({ ...group, domainId: d.id, version: expect.any(String) });
    expect(res.body.domain).toEqual({ ...d, attachedGroupCount: 1, version: expect.any(String) });
    expect(await c.groupNow(group.id)).toEqual(res.body.group);

    const f = await c.fault({ unitId: unit.id, errno: "ENOMEM" });
    const again = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
    expect(again).toEqual({ ...res.body, changed: false });
    expect((await c.faults()).find((x) => x.id === f.id)?.remaining).toBe(1);
    await c.del(`/v1/faults/${f.id}`);
  });

  it("replace moves between paging domains with no EBUSY; same domain is changed:false", async () => {
    const { unit, group } = await rig("intel-vtd");
    const a = await c.domain({ unitId: unit.id });
    const b = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
    const moved = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/replace`, { domainId: b.id });
    expect(moved).toMatchObject({ changed: true, group: { id: group.id, domainId: b.id }, domain: { id: b.id, attachedGroupCount: 1 } });
    expect((await c.read<DomainView>(`/v1/domains/${a.id}`)).attachedGroupCount).toBe(0);
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/replace`, { domainId: b.id })).changed).toBe(false);
    // From the default domain too.
    const other = await rig("intel-vtd");
    const c2 = await c.domain({ unitId: other.unit.id });
    expect((await c.ok<MovedView>("POST", `/v1/groups/${other.group.id}/replace`, { domainId: c2.id })).group.domainId).toBe(c2.id);
  });

  it("a failing replace (injected ENOMEM) leaves the old domain attached", async () => {
    const { unit, group } = await rig("intel-vtd");
    const a = await c.domain({ unitId: unit.id });
    const b = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
    await c.fault({ unitId: unit.id, errno: "ENOMEM" });
    expectProblem(await c.post(`/v1/groups/${group.id}/replace`, { domainId: b.id }), 507, "ENOMEM", "injected-fault");
    expect((await c.groupNow(group.id)).domainId).toBe(a.id);
    expect(await c.groupsOn(a.id)).toEqual([group.id]);
    expect(await c.groupsOn(b.id)).toEqual([]);
  });

  it("detach of the current domain returns to the default domain; of another domain changes nothing", async () => {
    const { unit, group } = await rig("intel-vtd");
    const a = await c.domain({ unitId: unit.id });
    const b = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
    const noop = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/detach`, { domainId: b.id });
    expect(noop).toMatchObject({ changed: false, group: { domainId: a.id }, domain: { id: a.id } });
    const back = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/detach`, { domainId: a.id });
    expect(back).toMatchObject({ changed: true, group: { domainId: group.defaultDomainId }, domain: { id: group.defaultDomainId, type: "dma" } });
  });

  it("detach succeeds even when the unit went offline (must-succeed path)", async () => {
    const { unit, group } = await rig("intel-vtd");
    const a = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
    await c.ok("PATCH", `/v1/units/${unit.id}`, { online: false });
    await c.fault({ unitId: unit.id, errno: "ENOMEM" });
    const back = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/detach`, { domainId: a.id });
    expect(back.group.domainId).toBe(group.defaultDomainId);
  });

  it("device attach / detach work for a device alone in its group", async () => {
    const { unit, group, devices } = await rig("intel-vtd");
    const d = await c.domain({ unitId: unit.id });
    const dev = devices[0]!;
    const on = await c.ok<MovedView>("POST", `/v1/devices/${dev.id}/attach`, { domainId: d.id });
    expect(on).toMatchObject({ changed: true, group: { id: group.id, domainId: d.id, deviceIds: [dev.id] }, domain: { id: d.id } });
    expect((await c.ok<MovedView>("POST", `/v1/devices/${dev.id}/attach`, { domainId: d.id })).changed).toBe(false);
    const off = await c.ok<MovedView>("POST", `/v1/devices/${dev.id}/detach`, { domainId: d.id });
    expect(off).toMatchObject({ changed: true, group: { domainId: group.defaultDomainId } });
  });

  it("device detach in a shared group is refused: 409 EINVAL group-has-multiple-devices", async () => {
    const { unit, group, devices } = await rig("intel-vtd", {}, [{}, {}]);
    const d = await c.domain({ unitId: unit.id });
    expectProblem(await c.post(`/v1/devices/${devices[1]!.id}/detach`, { domainId: d.id }), 409, "EINVAL", "group-has-multiple-devices", { deviceId: devices[1]!.id, groupId: group.id });
  });
});

describe("claim / release", () => {
  it("claim moves the group to its blocking domain; the owner drives it; release returns it to default", async () => {
    const { unit, group } = await rig("intel-vtd");
    const paging = await c.domain({ unitId: unit.id });
    const claimed = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio" });
    const blocking = claimed.group.blockingDomainId!;
    expect(claimed).toMatchObject({
      changed: true,
      group: { id: group.id, owner: "vfio", domainId: blocking },
      domain: { id: blocking, type: "blocked", name: `${group.name}-blocking`, driver: "intel-vtd", unitId: unit.id },
    });
    expect(blocking).not.toBe(group.defaultDomainId);
    // Claiming again as the same owner is an idempotent no-op.
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio" })).changed).toBe(false);
    // The owner attaches; detach goes back to the blocking domain, not the default.
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/attach`, { domainId: paging.id, owner: "vfio" })).group.domainId).toBe(paging.id);
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/detach`, { domainId: paging.id, owner: "vfio" })).group.domainId).toBe(blocking);
    // Someone else may not release.
    expectProblem(await c.post(`/v1/groups/${group.id}/release`, { owner: "intruder" }), 403, "EPERM", "owned-by-other", { groupId: group.id });
    const released = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/release`, { owner: "vfio" });
    expect(released).toMatchObject({ changed: true, group: { owner: null, domainId: group.defaultDomainId, blockingDomainId: blocking } });
    // A second claim reuses the blocking domain.
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, { owner: "other" })).group.blockingDomainId).toBe(blocking);
  });

  it("release while attached to a paging domain returns the group to its default domain", async () => {
    const { unit, group } = await rig("intel-vtd");
    const paging = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio" });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: paging.id, owner: "vfio" });
    const released = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/release`, { owner: "vfio" });
    expect(released.group).toMatchObject({ owner: null, domainId: group.defaultDomainId });
    expect(await c.groupsOn(paging.id)).toEqual([]);
  });

  it("another group's blocking domain cannot be attached", async () => {
    const { unit, group } = await rig("intel-vtd");
    const other = await c.groupWith(unit.id);
    const claimed = await c.ok<MovedView>("POST", `/v1/groups/${other.group.id}/claim`, { owner: "vfio" });
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: claimed.group.blockingDomainId }), 409, "EINVAL", "domain-not-attachable");
    expect((await c.groupNow(group.id)).domainId).toBe(group.domainId);
  });
});

describe("all or nothing", () => {
  it("a multi-device group with one incompatible device stays on its domain", async () => {
    const { group, devices } = await rig("arm-smmu-v3", {}, [{ canwbs: true }, { canwbs: true }, { canwbs: false }]);
    const coherent = await c.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } });
    const seq = await c.lastSeq();
    const body = expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: coherent.id }), 409, "EINVAL", "cache-coherency", { soft: true, deviceId: devices[2]!.id });
    expect(body.detail).toContain(devices[2]!.name);
    expect(await c.groupNow(group.id)).toEqual(group);
    // The domain was not finalised on the SMMU by the devices that passed.
    expect(await c.read<DomainView>(`/v1/domains/${coherent.id}`)).toEqual(coherent);
    const events = await c.events(seq);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ op: "attach-group", groupId: group.id, errno: "EINVAL", reason: "cache-coherency" });
  });

  it("a multi-device group already on a paging domain stays there when a replace fails on its last device", async () => {
    const { unit, group, devices } = await rig("mock", {}, [{}, {}, {}]);
    const a = await c.domain({ unitId: unit.id });
    const b = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
    const f = await c.fault({ deviceId: devices[2]!.id, errno: "ENOMEM" });
    expectProblem(await c.post(`/v1/groups/${group.id}/replace`, { domainId: b.id }), 507, "ENOMEM", "injected-fault", { deviceId: devices[2]!.id });
    expect((await c.groupNow(group.id)).domainId).toBe(a.id);
    expect(await c.groupsOn(b.id)).toEqual([]);
    // The fault the failed attempt hit is consumed (the only trace it leaves).
    expect((await c.faults()).find((x) => x.id === f.id)).toBeUndefined();
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/replace`, { domainId: b.id })).group.domainId).toBe(b.id);
  });
});

describe("GET /v1/groups/:id/compatibility (dry run)", () => {
  it("lists a verdict per candidate domain and changes nothing: events, faults and state unchanged", async () => {
    const unit = await c.unit({ driver: "intel-vtd", capabilities: { snoopControl: false, addressWidth: 39 } });
    const { group } = await c.groupWith(unit.id);
    const ct = await c.container();
    const good = await c.domain({ unitId: unit.id, containerId: ct.id });
    const snoop = await c.domain({ unitId: unit.id, containerId: ct.id, config: { enforceCacheCoherency: true } });
    const wide = await c.domain({ driver: "intel-vtd", containerId: ct.id, config: { addressWidth: 48 } });
    const amd = await c.domain({ driver: "amd-iommu", containerId: ct.id });

    const seq = await c.lastSeq();
    const faults = await c.faults();
    const before = { group: await c.groupNow(group.id), domains: await c.read(`/v1/domains?containerId=${ct.id}`) };

    const res = await c.read<CompatibilityView>(`/v1/groups/${group.id}/compatibility?containerId=${ct.id}`);
    expect(res).toMatchObject({ groupId: group.id, attachable: true, next: null });
    const byId = new Map(res.verdicts.map((v) => [v.domainId, v]));
    expect(res.verdicts.map((v) => v.domainId)).toEqual([good.id, snoop.id, wide.id, amd.id]);
    expect(byId.get(good.id)).toEqual({ domainId: good.id, compatible: true, current: false, errno: null, code: 0, soft: false, reason: null, detail: null });
    expect(byId.get(snoop.id)).toMatchObject({ compatible: false, errno: "EINVAL", code: -22, soft: true, reason: "snoop-control" });
    expect(byId.get(wide.id)).toMatchObject({ compatible: false, errno: "EINVAL", soft: true, reason: "address-width" });
    expect(byId.get(amd.id)).toMatchObject({ compatible: false, errno: "EINVAL", soft: true, reason: "different-driver" });

    expect(await c.lastSeq()).toBe(seq);
    expect(await c.faults()).toEqual(faults);
    expect({ group: await c.groupNow(group.id), domains: await c.read(`/v1/domains?containerId=${ct.id}`) }).toEqual(before);
  });

  it("reports a pending injected fault as the answer it would give, without consuming it", async () => {
    const { unit, group } = await rig("intel-vtd");
    const d = await c.domain({ unitId: unit.id });
    const f = await c.fault({ unitId: unit.id, errno: "EIO", count: 1 });
    const seq = await c.lastSeq();
    const res = await c.read<CompatibilityView>(`/v1/groups/${group.id}/compatibility?after=${d.id - 1}&limit=1`);
    expect(res.verdicts).toEqual([expect.objectContaining({ domainId: d.id, compatible: false, errno: "ENODEV", soft: false, reason: "injected-fault" })]);
    expect((await c.faults()).find((x) => x.id === f.id)?.remaining).toBe(1);
    expect(await c.lastSeq()).toBe(seq);
    // The real attach does hit it.
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), 422, "ENODEV", "injected-fault", { driverErrno: "EIO" });
  });

  it("marks the current domain and says attachable:false while the group is on a chosen domain", async () => {
    const { unit, group } = await rig("intel-vtd");
    const a = await c.domain({ unitId: unit.id });
    const b = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: a.id });
    const res = await c.read<CompatibilityView>(`/v1/groups/${group.id}/compatibility?after=${a.id - 1}&limit=2`);
    expect(res.attachable).toBe(false);
    expect(res.verdicts).toEqual([
      expect.objectContaining({ domainId: a.id, compatible: true, current: true }),
      expect.objectContaining({ domainId: b.id, compatible: true, current: false }),
    ]);
  });

  it("pages with after/limit/next and never lists other groups' default or blocking domains", async () => {
    const { unit, group } = await rig("mock");
    const other = await c.groupWith(unit.id);
    const claimed = await c.ok<MovedView>("POST", `/v1/groups/${other.group.id}/claim`, { owner: "x" });
    for (let i = 0; i < 3; i++) await c.domain({ unitId: unit.id });
    const all = await c.read<CompatibilityView>(`/v1/groups/${group.id}/compatibility?limit=1000`);
    const ids = all.verdicts.map((v) => v.domainId);
    expect(ids).toContain(group.defaultDomainId);
    expect(ids).not.toContain(other.group.defaultDomainId);
    expect(ids).not.toContain(claimed.group.blockingDomainId);
    const walked: number[] = [];
    let after = 0;
    for (;;) {
      const page = await c.read<CompatibilityView>(`/v1/groups/${group.id}/compatibility?after=${after}&limit=2`);
      walked.push(...page.verdicts.map((v) => v.domainId));
      if (page.next === null) break;
      expect(page.next).toBe(page.verdicts[1]!.domainId);
      after = page.next;
    }
    expect(walked).toEqual(ids);
  });

  it("answers 404 for an unknown group", async () => {
    expectProblem(await c.get("/v1/groups/9999/compatibility"), 404, "ENOENT", "no-such-group", { groupId: 9999 });
  });
});
