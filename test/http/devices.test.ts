// /v1/devices: create, list, get, patch, delete, and bad input on every
// device route (attach / detach outcomes live in attach.test.ts).
import { beforeAll, describe, expect, it } from "vitest";
import { Device } from "../../src/core/entities.js";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem, uniqueName,
  type DeviceView, type GroupView, type Method, type PageView, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();
let unit: UnitView;
let group: GroupView;

beforeAll(async () => {
  unit = await c.unit({ driver: "mock" });
  group = await c.group(unit.id);
});

const NO_FLAGS = { noDirty: false, canwbs: false, requiresIdentity: false, untrusted: false };

describe("POST /v1/devices", () => {
  it("creates a device with default flags and answers 201", async () => {
    const name = uniqueName("0000:00:02.0");
    const res = await c.post<DeviceView>("/v1/devices", { name, groupId: group.id });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ ...Device.make({ id: expect.any(Number), name, groupId: group.id, flags: NO_FLAGS, faulty: false }), version: expect.any(String) });
    expect((await c.groupNow(group.id)).deviceIds).toContain(res.body.id);
  });

  it("merges the given flags over the defaults", async () => {
    const d = await c.device(group.id, { noDirty: true, canwbs: true });
    expect(d.flags).toEqual({ ...NO_FLAGS, noDirty: true, canwbs: true });
  });

  it("refuses an unknown group with 404 no-such-group", async () => {
    expectProblem(await c.post("/v1/devices", { name: uniqueName("d"), groupId: 555555 }), 404, "ENOENT", "no-such-group", { groupId: 555555 });
  });

  it("refuses a taken name with 409 EEXIST name-taken", async () => {
    const d = await c.device(group.id);
    expectProblem(await c.post("/v1/devices", { name: d.name, groupId: group.id }), 409, "EEXIST", "name-taken", { deviceId: d.id });
  });

  it("refuses to add a device to a group attached to a paging domain: 409 EBUSY group-attached", async () => {
    const { group: g } = await c.groupWith(unit.id);
    const dom = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${g.id}/attach`, { domainId: dom.id });
    expectProblem(await c.post("/v1/devices", { name: uniqueName("late"), groupId: g.id }), 409, "EBUSY", "group-attached", { groupId: g.id });
    expect((await c.groupNow(g.id)).deviceIds).toHaveLength(1);
  });

  it("refuses a group's first device when its default domain gets no ID (iommu_setup_default_domain): 507 ENOSPC, the group stays empty", async () => {
    const vtd = await c.unit({ driver: "intel-vtd", capabilities: { domainIds: 1 } });
    await c.groupWith(vtd.id); // its default domain holds the only domain ID
    const empty = await c.group(vtd.id);
    expectProblem(await c.post("/v1/devices", { name: uniqueName("probe"), groupId: empty.id }), 507, "ENOSPC", "domain-ids-exhausted", {
      soft: false, groupId: empty.id, domainId: empty.defaultDomainId,
    });
    expect((await c.groupNow(empty.id)).deviceIds).toEqual([]);
  });

  // Its probe fails in __iommu_device_set_domain: the owned group is on its blocking domain.
  it("refuses a device needing identity mappings in an owned group: 409 EINVAL requires-identity, not soft", async () => {
    const { group: g } = await c.groupWith(unit.id);
    await c.ok("POST", `/v1/groups/${g.id}/claim`, { owner: "vfio" });
    const name = uniqueName("rmrr");
    expectProblem(await c.post("/v1/devices", { name, groupId: g.id, flags: { requiresIdentity: true } }), 409, "EINVAL", "requires-identity", {
      soft: false, groupId: g.id,
      detail: `${name} needs a 1:1 mapping for firmware-reserved regions; group ${g.name} is owned by vfio and cannot return to its blocking domain`,
    });
    expect((await c.groupNow(g.id)).deviceIds).toHaveLength(1);
    // Released, the group takes it (and then refuses a claim, see attach.test.ts).
    await c.ok("POST", `/v1/groups/${g.id}/release`, { owner: "vfio" });
    await c.device(g.id, { requiresIdentity: true });
  });
});

describe("GET /v1/devices and /v1/devices/:id", () => {
  it("pages through devices with after/limit/next", async () => {
    for (let i = 0; i < 5; i++) await c.device(group.id);
    await expectPaging(c, "/v1/devices", 5);
  });

  it("answers 200 with the device, 404 no-such-device for an unknown id", async () => {
    const d = await c.device(group.id, { canwbs: true });
    expect(await c.read(`/v1/devices/${d.id}`)).toEqual(d);
    expectProblem(await c.get("/v1/devices/555555"), 404, "ENOENT", "no-such-device", { deviceId: 555555 });
  });
});

describe("PATCH /v1/devices/:id", () => {
  it("merges flags and sets faulty; GET shows the change", async () => {
    const d = await c.device(group.id, { canwbs: true });
    const a = await c.ok<DeviceView>("PATCH", `/v1/devices/${d.id}`, { flags: { noDirty: true } });
    expect(a.flags).toEqual({ ...NO_FLAGS, canwbs: true, noDirty: true });
    const b = await c.ok<DeviceView>("PATCH", `/v1/devices/${d.id}`, { faulty: true });
    expect(b).toEqual({ ...a, faulty: true, version: expect.any(String) });
    expect(b.version).not.toBe(a.version);
    expect(await c.read(`/v1/devices/${d.id}`)).toEqual(b);
  });

  it("answers 404 for an unknown device", async () => {
    expectProblem(await c.patch("/v1/devices/555555", { faulty: true }), 404, "ENOENT", "no-such-device");
  });

  it("refuses requiresIdentity for a device of an owned group: 409 EINVAL requires-identity, the device unchanged", async () => {
    const { group: g, devices } = await c.groupWith(unit.id);
    await c.ok("POST", `/v1/groups/${g.id}/claim`, { owner: "vfio" });
    expectProblem(await c.patch(`/v1/devices/${devices[0]!.id}`, { flags: { requiresIdentity: true } }), 409, "EINVAL", "requires-identity", {
      soft: false, groupId: g.id, deviceId: devices[0]!.id,
    });
    expect(await c.read(`/v1/devices/${devices[0]!.id}`)).toEqual(devices[0]);
  });

  it("refuses untrusted for a device of a group on the identity domain: 409 EINVAL untrusted-device", async () => {
    const smmu = await c.unit({ driver: "arm-smmu-v3" });
    const { group: g, devices } = await c.groupWith(smmu.id);
    const identity = (await c.post<{ id: number }>("/v1/domains", { type: "identity", driver: "arm-smmu-v3" })).body;
    await c.ok("POST", `/v1/groups/${g.id}/attach`, { domainId: identity.id });
    expectProblem(await c.patch(`/v1/devices/${devices[0]!.id}`, { flags: { untrusted: true } }), 409, "EINVAL", "untrusted-device", {
      soft: false, groupId: g.id, deviceId: devices[0]!.id,
      detail: `${devices[0]!.name} is untrusted; group ${g.name} is on identity domain ${identity.id}`,
    });
  });
});

describe("DELETE /v1/devices/:id", () => {
  it("deletes a device with 204 and removes it from its group", async () => {
    const d = await c.device(group.id);
    const res = await c.del(`/v1/devices/${d.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expectProblem(await c.get(`/v1/devices/${d.id}`), 404, "ENOENT", "no-such-device");
    expect((await c.groupNow(group.id)).deviceIds).not.toContain(d.id);
  });

  it("removes the faults injected on the device", async () => {
    const d = await c.device(group.id);
    const f = await c.fault({ deviceId: d.id, errno: "ENOMEM" });
    expect((await c.del(`/v1/devices/${d.id}`)).status).toBe(204);
    expect((await c.faults()).map((x) => x.id)).not.toContain(f.id);
  });

  it("refuses while the device's group is attached to a paging domain: 409 EBUSY group-attached", async () => {
    const { group: g, devices: [d] } = await c.groupWith(unit.id);
    const dom = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${g.id}/attach`, { domainId: dom.id });
    expectProblem(await c.del(`/v1/devices/${d!.id}`), 409, "EBUSY", "group-attached", { deviceId: d!.id, groupId: g.id });
    expect((await c.get(`/v1/devices/${d!.id}`)).status).toBe(200);
    await c.ok("POST", `/v1/groups/${g.id}/detach`, { domainId: dom.id });
    expect((await c.del(`/v1/devices/${d!.id}`)).status).toBe(204);
  });

  it("answers 404 for an unknown device", async () => {
    expectProblem(await c.del("/v1/devices/555555"), 404, "ENOENT", "no-such-device");
  });
});

describe("bad input", () => {
  const rows: { name: string; method: Method; url: string; body?: unknown; field?: string }[] = [
    { name: "groupId of the wrong type", method: "POST", url: "/v1/devices", body: { name: "d-x", groupId: "one" }, field: "body.groupId" },
    { name: "missing groupId", method: "POST", url: "/v1/devices", body: { name: "d-x" }, field: "body.groupId" },
    { name: "missing name", method: "POST", url: "/v1/devices", body: { groupId: 1 }, field: "body.name" },
    { name: "unknown field", method: "POST", url: "/v1/devices", body: { name: "d-x", groupId: 1, bdf: "00:01.0" }, field: "body.bdf" },
    { name: "unknown flag", method: "POST", url: "/v1/devices", body: { name: "d-x", groupId: 1, flags: { ats: true } }, field: "body.flags.ats" },
    { name: "flag of the wrong type", method: "POST", url: "/v1/devices", body: { name: "d-x", groupId: 1, flags: { canwbs: "yes" } }, field: "body.flags.canwbs" },
    { name: "flags not an object", method: "POST", url: "/v1/devices", body: { name: "d-x", groupId: 1, flags: "noDirty" }, field: "body.flags" },
    { name: "bad id on GET", method: "GET", url: "/v1/devices/abc", field: "params.id" },
    { name: "bad id on PATCH", method: "PATCH", url: "/v1/devices/abc", body: { faulty: true }, field: "params.id" },
    { name: "bad id on DELETE", method: "DELETE", url: "/v1/devices/abc", field: "params.id" },
    { name: "empty patch", method: "PATCH", url: "/v1/devices/1", body: {}, field: "body" },
    { name: "patch faulty of the wrong type", method: "PATCH", url: "/v1/devices/1", body: { faulty: "very" }, field: "body.faulty" },
    { name: "patch of the group", method: "PATCH", url: "/v1/devices/1", body: { groupId: 2 }, field: "body.groupId" },
    { name: "patch of an unknown flag", method: "PATCH", url: "/v1/devices/1", body: { flags: { turbo: true } }, field: "body.flags.turbo" },
    { name: "bad list parameter", method: "GET", url: "/v1/devices?after=first", field: "querystring.after" },
    { name: "attach: bad id", method: "POST", url: "/v1/devices/abc/attach", body: { domainId: 1 }, field: "params.id" },
    { name: "attach: missing domainId", method: "POST", url: "/v1/devices/1/attach", body: {}, field: "body.domainId" },
    { name: "attach: domainId of the wrong type", method: "POST", url: "/v1/devices/1/attach", body: { domainId: { id: 1 } }, field: "body.domainId" },
    { name: "attach: unknown field", method: "POST", url: "/v1/devices/1/attach", body: { domainId: 1, groupId: 1 }, field: "body.groupId" },
    { name: "detach: bad id", method: "POST", url: "/v1/devices/0/detach", body: { domainId: 1 }, field: "params.id" },
    { name: "detach: missing domainId", method: "POST", url: "/v1/devices/1/detach", body: { owner: "vfio" }, field: "body.domainId" },
    { name: "detach: unknown field", method: "POST", url: "/v1/devices/1/detach", body: { domainId: 1, all: true }, field: "body.all" },
  ];

  it.each(rows)("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const before = await c.read<PageView<DeviceView>>("/v1/devices?limit=1000");
    const seq = await c.lastSeq();
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.read<PageView<DeviceView>>("/v1/devices?limit=1000")).toEqual(before);
    expect(await c.lastSeq()).toBe(seq);
  });

  it.each([
    ["POST", "/v1/devices"],
    ["PATCH", "/v1/devices/1"],
    ["POST", "/v1/devices/1/attach"],
    ["POST", "/v1/devices/1/detach"],
  ] as const)("malformed JSON on %s %s → 400", async (method, url) => {
    expectInvalid(await c.raw(method, url, '{"domainId": 1,}'));
  });
});
