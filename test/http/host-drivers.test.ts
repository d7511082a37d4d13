// POST /v1/devices/{id}/bind and /unbind: host (kernel) drivers over HTTP
// (iommu_device_use_default_domain / iommu_device_unuse_default_domain), and
// what they mean for a claim.
import { describe, expect, it } from "vitest";
import {
  clientForFile, expectInvalid, expectProblem,
  type DeviceView, type EventView, type GroupView, type Method, type MovedView,
} from "../helpers/http.js";

const c = clientForFile();

interface Changed { changed: boolean; device: DeviceView }

async function rig(devices = 2): Promise<{ group: GroupView; devices: DeviceView[] }> {
  const unit = await c.unit({ driver: "mock" });
  return c.groupWith(unit.id, Array.from({ length: devices }, () => ({})));
}

describe("POST /v1/devices/:id/bind and /unbind", () => {
  it("bind answers 200 with the device showing its host driver (and a new version); again: changed false; unbind clears it", async () => {
    const { devices: [d] } = await rig(1);
    const bound = await c.ok<Changed>("POST", `/v1/devices/${d!.id}/bind`, { hostDriver: "nvme" });
    expect(bound).toEqual({ changed: true, device: { ...d!, hostDriver: "nvme", version: expect.any(String) } });
    expect(bound.device.version).not.toBe(d!.version);
    expect(await c.read(`/v1/devices/${d!.id}`)).toEqual(bound.device);
    expect(await c.ok<Changed>("POST", `/v1/devices/${d!.id}/bind`, { hostDriver: "nvme" })).toEqual({ changed: false, device: bound.device });
    const unbound = await c.ok<Changed>("POST", `/v1/devices/${d!.id}/unbind`, {});
    expect(unbound).toEqual({ changed: true, device: d! });
    expect(await c.ok<Changed>("POST", `/v1/devices/${d!.id}/unbind`, {})).toEqual({ changed: false, device: d! });
    const events = (await c.events()).filter((e: EventView) => e.deviceId === d!.id);
    expect(events.map((e) => [e.op, e.errno])).toEqual([
      ["bind-host-driver", null], ["bind-host-driver", null], ["unbind-host-driver", null], ["unbind-host-driver", null],
    ]);
  });

  it("a claim of a group with a bound driver: 403 EPERM host-driver-bound naming the device", async () => {
    const { group, devices: [, gpu] } = await rig();
    await c.ok("POST", `/v1/devices/${gpu!.id}/bind`, { hostDriver: "amdgpu" });
    expectProblem(await c.post(`/v1/groups/${group.id}/claim`, { owner: "vfio" }), 403, "EPERM", "host-driver-bound",
      { soft: false, groupId: group.id, deviceId: gpu!.id });
    await c.ok("POST", `/v1/devices/${gpu!.id}/unbind`, {});
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio" })).group.owner).toBe("vfio");
  });

  it("binding to a device of an owned group: 409 EBUSY group-owned; to a bound device: 409 EBUSY device-has-driver", async () => {
    const { group, devices: [a, b] } = await rig();
    await c.ok("POST", `/v1/devices/${a!.id}/bind`, { hostDriver: "nvme" });
    expectProblem(await c.post(`/v1/devices/${a!.id}/bind`, { hostDriver: "vfio-pci" }), 409, "EBUSY", "device-has-driver", { deviceId: a!.id });
    await c.ok("POST", `/v1/devices/${a!.id}/unbind`, {});
    await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio" });
    expectProblem(await c.post(`/v1/devices/${b!.id}/bind`, { hostDriver: "nvme" }), 409, "EBUSY", "group-owned",
      { groupId: group.id, deviceId: b!.id });
    expect((await c.read<DeviceView>(`/v1/devices/${b!.id}`)).hostDriver).toBeNull();
  });

  it("with a driver holding owner_cnt, another device of a group on a paging domain: 409 EBUSY group-not-default", async () => {
    const { group, devices: [a, b] } = await rig();
    await c.ok("POST", `/v1/devices/${a!.id}/bind`, { hostDriver: "nvme" });
    const dom = await c.domain({ driver: "mock" });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: dom.id });
    expectProblem(await c.post(`/v1/devices/${b!.id}/bind`, { hostDriver: "xhci_hcd" }), 409, "EBUSY", "group-not-default",
      { groupId: group.id, domainId: dom.id, deviceId: b!.id });
  });

  it("If-Match is compared with the device's version: 412 when stale", async () => {
    const { devices: [d] } = await rig(1);
    await c.ok("POST", `/v1/devices/${d!.id}/bind`, { hostDriver: "nvme" });
    const res = await c.send("POST", `/v1/devices/${d!.id}/unbind`, {}, { "if-match": `"${d!.version}"` });
    expectProblem(res, 412, "ESTALE", "precondition-failed");
    expect((await c.read<DeviceView>(`/v1/devices/${d!.id}`)).hostDriver).toBe("nvme");
  });

  it("an unknown device: 404 no-such-device", async () => {
    expectProblem(await c.post("/v1/devices/555555/bind", { hostDriver: "nvme" }), 404, "ENOENT", "no-such-device", { deviceId: 555555 });
    expectProblem(await c.post("/v1/devices/555555/unbind", {}), 404, "ENOENT", "no-such-device", { deviceId: 555555 });
  });

  it.each<{ name: string; method: Method; url: string; body?: unknown; field: string }>([
    { name: "missing hostDriver", method: "POST", url: "/v1/devices/1/bind", body: {}, field: "body.hostDriver" },
    { name: "hostDriver empty", method: "POST", url: "/v1/devices/1/bind", body: { hostDriver: "" }, field: "body.hostDriver" },
    { name: "hostDriver with a space", method: "POST", url: "/v1/devices/1/bind", body: { hostDriver: "my driver" }, field: "body.hostDriver" },
    { name: "hostDriver of the wrong type", method: "POST", url: "/v1/devices/1/bind", body: { hostDriver: 7 }, field: "body.hostDriver" },
    { name: "unknown field on bind", method: "POST", url: "/v1/devices/1/bind", body: { hostDriver: "nvme", force: true }, field: "body.force" },
    { name: "a body on unbind", method: "POST", url: "/v1/devices/1/unbind", body: { hostDriver: "nvme" }, field: "body.hostDriver" },
    { name: "bad id", method: "POST", url: "/v1/devices/x/bind", body: { hostDriver: "nvme" }, field: "params.id" },
  ])("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const seq = await c.lastSeq();
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.lastSeq()).toBe(seq);
  });
});
