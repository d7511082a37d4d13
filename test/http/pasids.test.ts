// /v1/devices/{id}/pasids: PASID attachments over HTTP
// (iommu_attach_device_pasid / iommu_detach_device_pasid): create, list,
// delete, every refusal's status, and bad input naming the field.
import { describe, expect, it } from "vitest";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem, uniqueName,
  type DeviceView, type DomainView, type EventView, type GroupView, type Method, type PageView,
} from "../helpers/http.js";

const c = clientForFile();

interface PasidView { id: number; deviceId: number; pasid: number; domainId: number; version: string }

/** A group on a new unit of `driver` with one device taking PASIDs below `maxPasids`, and a paging domain of the driver. */
async function rig(driver = "mock", maxPasids = 1024): Promise<{ group: GroupView; device: DeviceView; domain: DomainView }> {
  const unit = await c.unit({ driver });
  const group = await c.group(unit.id);
  const device = await c.expect<DeviceView>(201, "POST", "/v1/devices", { name: uniqueName("pdev"), groupId: group.id, maxPasids });
  return { group, device, domain: await c.domain({ driver }) };
}

describe("POST /v1/devices/:id/pasids", () => {
  it("a device is created with its PASID width (default 0)", async () => {
    const { device } = await rig("mock", 1 << 20);
    expect(device).toMatchObject({ maxPasids: 1 << 20, hostDriver: null });
    const unit = await c.unit({ driver: "mock" });
    expect(await c.device((await c.group(unit.id)).id)).toMatchObject({ maxPasids: 0 });
  });

  it("attaches: 201 with the attachment and its ETag; listed for every device of the group; logged", async () => {
    const { group, device, domain } = await rig();
    const res = await c.post<PasidView>(`/v1/devices/${device.id}/pasids`, { pasid: 42, domainId: domain.id });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(Number), deviceId: device.id, pasid: 42, domainId: domain.id, version: expect.any(String) });
    expect(res.headers.etag).toBe(`"${res.body.version}"`);
    const sibling = await c.expect<DeviceView>(201, "POST", "/v1/devices", { name: uniqueName("sib"), groupId: group.id, maxPasids: 64 });
    for (const d of [device, sibling]) {
      expect(await c.read<PageView<PasidView>>(`/v1/devices/${d.id}/pasids`)).toEqual({ items: [res.body], next: null });
    }
    const events = (await c.events()).filter((e: EventView) => e.op === "attach-pasid" && e.deviceId === device.id);
    expect(events).toEqual([expect.objectContaining({ groupId: group.id, domainId: domain.id, errno: null })]);
  });

  it("lists a group's PASIDs in pages", async () => {
    const { device, domain } = await rig();
    for (const pasid of [1, 2, 3, 4, 5]) await c.expect(201, "POST", `/v1/devices/${device.id}/pasids`, { pasid, domainId: domain.id });
    expect(await expectPaging(c, `/v1/devices/${device.id}/pasids`, 5)).toHaveLength(5);
  });

  it.each<{ name: string; status: number; errno: Parameters<typeof expectProblem>[2]; reason: string; soft: boolean; run: () => Promise<{ url: string; body: unknown; ids?: Record<string, number> }> }>([
    {
      name: "a driver without set_dev_pasid → 501 EOPNOTSUPP unsupported", status: 501, errno: "EOPNOTSUPP", reason: "unsupported", soft: false,
      run: async () => {
        const { device, domain } = await rig("virtio-iommu");
        return { url: `/v1/devices/${device.id}/pasids`, body: { pasid: 1, domainId: domain.id }, ids: { domainId: domain.id } };
      },
    },
    {
      name: "PASID 0 → 409 EINVAL pasid-out-of-range", status: 409, errno: "EINVAL", reason: "pasid-out-of-range", soft: false,
      run: async () => {
        const { device, domain } = await rig();
        return { url: `/v1/devices/${device.id}/pasids`, body: { pasid: 0, domainId: domain.id } };
      },
    },
    {
      name: "a PASID beyond the device's width → 409 EINVAL pasid-out-of-range naming the device", status: 409, errno: "EINVAL", reason: "pasid-out-of-range", soft: false,
      run: async () => {
        const { device, domain } = await rig("mock", 16);
        return { url: `/v1/devices/${device.id}/pasids`, body: { pasid: 16, domainId: domain.id }, ids: { deviceId: device.id } };
      },
    },
    {
      name: "a domain of another driver → 409 EINVAL different-driver, soft", status: 409, errno: "EINVAL", reason: "different-driver", soft: true,
      run: async () => {
        const { device } = await rig();
        const other = await c.domain({ driver: "intel-vtd" });
        return { url: `/v1/devices/${device.id}/pasids`, body: { pasid: 1, domainId: other.id }, ids: { domainId: other.id } };
      },
    },
    {
      name: "a PASID attached already → 409 EBUSY pasid-attached", status: 409, errno: "EBUSY", reason: "pasid-attached", soft: false,
      run: async () => {
        const { device, domain } = await rig();
        await c.expect(201, "POST", `/v1/devices/${device.id}/pasids`, { pasid: 9, domainId: domain.id });
        return { url: `/v1/devices/${device.id}/pasids`, body: { pasid: 9, domainId: domain.id }, ids: { domainId: domain.id } };
      },
    },
    {
      name: "a group owned by someone else → 403 EPERM owned-by-other", status: 403, errno: "EPERM", reason: "owned-by-other", soft: false,
      run: async () => {
        const { group, device, domain } = await rig();
        await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "vm-a" });
        return { url: `/v1/devices/${device.id}/pasids`, body: { pasid: 1, domainId: domain.id, owner: "vm-b" }, ids: { groupId: group.id } };
      },
    },
    {
      name: "an unknown device → 404 no-such-device", status: 404, errno: "ENOENT", reason: "no-such-device", soft: false,
      run: async () => ({ url: "/v1/devices/555555/pasids", body: { pasid: 1, domainId: 1 }, ids: { deviceId: 555555 } }),
    },
    {
      name: "an unknown domain → 404 no-such-domain", status: 404, errno: "ENOENT", reason: "no-such-domain", soft: false,
      run: async () => {
        const { device } = await rig();
        return { url: `/v1/devices/${device.id}/pasids`, body: { pasid: 1, domainId: 555555 }, ids: { domainId: 555555 } };
      },
    },
  ])("$name", async ({ status, errno, reason, soft, run }) => {
    const { url, body, ids } = await run();
    // The group's PASIDs as listed (an unknown device lists nothing: 404).
    const listed = async () => {
      const res = await c.get(url);
      return res.status === 200 ? res.text : res.status;
    };
    const before = await listed();
    expectProblem(await c.post(url, body), status, errno, reason, { soft, ...ids });
    expect(await listed()).toBe(before);
  });
});

describe("DELETE /v1/devices/:id/pasids/:pasid", () => {
  it("detaches: 204; the domain can then be deleted (while attached: 409 EBUSY domain-in-use)", async () => {
    const { device, domain } = await rig();
    await c.expect(201, "POST", `/v1/devices/${device.id}/pasids`, { pasid: 3, domainId: domain.id });
    expectProblem(await c.del(`/v1/domains/${domain.id}`), 409, "EBUSY", "domain-in-use", { domainId: domain.id });
    const res = await c.del(`/v1/devices/${device.id}/pasids/3`);
    expect(res.status).toBe(204);
    expect(await c.read(`/v1/devices/${device.id}/pasids`)).toEqual({ items: [], next: null });
    expect((await c.del(`/v1/domains/${domain.id}`)).status).toBe(204);
  });

  it("a PASID not attached: 404 no-such-pasid; an unknown device: 404 no-such-device", async () => {
    const { device } = await rig();
    expectProblem(await c.del(`/v1/devices/${device.id}/pasids/3`), 404, "ENOENT", "no-such-pasid");
    expectProblem(await c.del("/v1/devices/555555/pasids/3"), 404, "ENOENT", "no-such-device", { deviceId: 555555 });
  });

  it("an owned group: the owner names itself in the body (open mode); anyone else gets 403 EPERM owned-by-other", async () => {
    const { group, device, domain } = await rig();
    await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "vm-a" });
    await c.expect(201, "POST", `/v1/devices/${device.id}/pasids`, { pasid: 5, domainId: domain.id, owner: "vm-a" });
    expectProblem(await c.del(`/v1/devices/${device.id}/pasids/5`), 403, "EPERM", "owned-by-other", { groupId: group.id });
    expectProblem(await c.send("DELETE", `/v1/devices/${device.id}/pasids/5`, { owner: "vm-b" }), 403, "EPERM", "owned-by-other");
    expect((await c.send("DELETE", `/v1/devices/${device.id}/pasids/5`, { owner: "vm-a" })).status).toBe(204);
  });

  it("If-Match is compared with the device's group's version: 412 when stale", async () => {
    const { group, device, domain } = await rig();
    await c.expect(201, "POST", `/v1/devices/${device.id}/pasids`, { pasid: 6, domainId: domain.id });
    const stale = `"${(await c.groupNow(group.id)).version}"`;
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: (await c.domain({ driver: "mock" })).id });
    expectProblem(await c.send("DELETE", `/v1/devices/${device.id}/pasids/6`, undefined, { "if-match": stale }), 412, "ESTALE", "precondition-failed");
    expect((await c.read<PageView<PasidView>>(`/v1/devices/${device.id}/pasids`)).items).toHaveLength(1);
  });
});

describe("bad input", () => {
  it.each<{ name: string; method: Method; url: string; body?: unknown; field: string }>([
    { name: "maxPasids above 2^20", method: "POST", url: "/v1/devices", body: { name: "d-p", groupId: 1, maxPasids: (1 << 20) + 1 }, field: "body.maxPasids" },
    { name: "maxPasids negative", method: "POST", url: "/v1/devices", body: { name: "d-p", groupId: 1, maxPasids: -1 }, field: "body.maxPasids" },
    { name: "maxPasids in a patch", method: "PATCH", url: "/v1/devices/1", body: { maxPasids: 8 }, field: "body.maxPasids" },
    { name: "hostDriver in a patch", method: "PATCH", url: "/v1/devices/1", body: { hostDriver: "nvme" }, field: "body.hostDriver" },
    { name: "the retired pasid flag", method: "POST", url: "/v1/devices", body: { name: "d-p", groupId: 1, flags: { pasid: true } }, field: "body.flags.pasid" },
    { name: "missing pasid", method: "POST", url: "/v1/devices/1/pasids", body: { domainId: 1 }, field: "body.pasid" },
    { name: "missing domainId", method: "POST", url: "/v1/devices/1/pasids", body: { pasid: 1 }, field: "body.domainId" },
    { name: "negative pasid", method: "POST", url: "/v1/devices/1/pasids", body: { pasid: -1, domainId: 1 }, field: "body.pasid" },
    { name: "pasid of the wrong type", method: "POST", url: "/v1/devices/1/pasids", body: { pasid: "1", domainId: 1 }, field: "body.pasid" },
    { name: "unknown field", method: "POST", url: "/v1/devices/1/pasids", body: { pasid: 1, domainId: 1, groupId: 1 }, field: "body.groupId" },
    { name: "bad pasid in the path", method: "DELETE", url: "/v1/devices/1/pasids/0x1", field: "params.pasid" },
    { name: "bad id in the path", method: "GET", url: "/v1/devices/abc/pasids", field: "params.id" },
    { name: "bad list parameter", method: "GET", url: "/v1/devices/1/pasids?limit=0", field: "querystring.limit" },
    { name: "unknown field on delete", method: "DELETE", url: "/v1/devices/1/pasids/1", body: { pasid: 1 }, field: "body.pasid" },
  ])("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const seq = await c.lastSeq();
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.lastSeq()).toBe(seq);
  });
});
