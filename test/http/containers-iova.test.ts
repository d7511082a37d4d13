// A container's IOVA mappings (/v1/containers/{id}/mappings, /unmap) and a
// device's reserved regions (/v1/devices/{id}/reserved-regions) over HTTP:
// every route's success, its refusals with the kernel's errno, and bad input
// named by field. The rules themselves: test/core/iova.test.ts.
import { describe, expect, it } from "vitest";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem,
  type ContainerView, type DeviceView, type EventView, type Method, type MappingView, type PageView, type ReservedRegionView,
  type UnmappedView,
} from "../helpers/http.js";

const c = clientForFile();
const MSI = { start: 0xfee00000, length: 0x100000, type: "msi" };

/** A VT-d group whose device reports the MSI window, a container, and the container's manual domain on that unit. */
async function vm() {
  const unit = await c.unit({ driver: "intel-vtd" });
  const { group, devices } = await c.groupWith(unit.id);
  const device = devices[0]!;
  const msi = await c.region(device.id, MSI);
  const container = await c.container();
  return { unit, group, device, msi, container };
}

async function lastEvent(): Promise<EventView> {
  const all = await c.events();
  return all[all.length - 1]!;
}

describe("POST /v1/containers/:id/mappings (IOMMU_IOAS_MAP)", () => {
  it("maps at a fixed IOVA: 201 with the mapping and its ETag; GET reads it back", async () => {
    const ct = await c.container();
    const res = await c.post<MappingView>(`/v1/containers/${ct.id}/mappings`, { iova: 0x100000, length: 0x200000 });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(Number), containerId: ct.id, iova: 0x100000, length: 0x200000, owner: null, version: expect.any(String) });
    expect(res.headers.etag).toBe(`"${res.body.version}"`);
    expect(await c.read(`/v1/containers/${ct.id}/mappings/${res.body.id}`)).toEqual(res.body);
    expect(await lastEvent()).toMatchObject({ op: "container-map", containerId: ct.id, errno: null, code: 0 });
  });

  it("without an IOVA the service picks one (iopt_alloc_iova: from PAGE_SIZE, aligned to the length)", async () => {
    const ct = await c.container();
    expect((await c.mapping(ct.id, { length: 0x1000 })).iova).toBe(0x1000);
    expect((await c.mapping(ct.id, { length: 0x3000 })).iova).toBe(0x4000);
  });

  it("the highest IOVA the service represents, 2^53 - 1, round-trips exactly", async () => {
    const ct = await c.container();
    const top = await c.mapping(ct.id, { iova: 2 ** 53 - 2 ** 21, length: 2 ** 21 });
    expect(await c.read(`/v1/containers/${ct.id}/mappings/${top.id}`)).toMatchObject({ iova: 9007199252643840, length: 2097152 });
  });

  it("over an existing mapping → 409 EEXIST iova-mapped", async () => {
    const ct = await c.container();
    const m = await c.mapping(ct.id, { iova: 0x10000, length: 0x10000 });
    const body = expectProblem(await c.post(`/v1/containers/${ct.id}/mappings`, { iova: 0x1f000, length: 0x2000 }), 409, "EEXIST", "iova-mapped",
      { soft: false, containerId: ct.id, mappingId: m.id });
    expect(body.detail).toBe(`[0x1f000, 0x20fff] overlaps mapping ${m.id} [0x10000, 0x1ffff] of container ${ct.name}`);
    expect(await lastEvent()).toMatchObject({ op: "container-map", errno: "EEXIST", code: -17, reason: "iova-mapped" });
  });

  it("over an attached device's reserved region → 409 EINVAL iova-reserved (hard); misaligned → 409 EINVAL iova-misaligned", async () => {
    const v = await vm();
    await c.ok("POST", `/v1/containers/${v.container.id}/attach`, { groupId: v.group.id });
    expectProblem(await c.post(`/v1/containers/${v.container.id}/mappings`, { iova: MSI.start, length: 0x1000 }), 409, "EINVAL", "iova-reserved",
      { soft: false, containerId: v.container.id, deviceId: v.device.id, regionId: v.msi.id });
    expectProblem(await c.post(`/v1/containers/${v.container.id}/mappings`, { iova: 0x1000, length: 0x800 }), 409, "EINVAL", "iova-misaligned",
      { soft: false, detail: `length 2048 is not a multiple of 4096, the IOVA alignment of container ${v.container.name}` });
  });

  it("no room → 507 ENOSPC iova-space-exhausted", async () => {
    const unit = await c.unit({ driver: "mock", capabilities: { addressWidth: 32 } });
    const ct = await c.container();
    await c.domain({ unitId: unit.id, containerId: ct.id });
    expectProblem(await c.post(`/v1/containers/${ct.id}/mappings`, { length: 2 ** 32 }), 507, "ENOSPC", "iova-space-exhausted", { containerId: ct.id });
  });

  it("length 0 → 400 EINVAL invalid-argument (the kernel's EINVAL); an unknown container → 404", async () => {
    const ct = await c.container();
    expectProblem(await c.post(`/v1/containers/${ct.id}/mappings`, { iova: 0x1000, length: 0 }), 400, "EINVAL", "invalid-argument",
      { detail: "length must be at least 1" });
    expectProblem(await c.post("/v1/containers/646464/mappings", { length: 0x1000 }), 404, "ENOENT", "no-such-container", { containerId: 646464 });
  });
});

describe("GET /v1/containers/:id/mappings and /mappings/:mappingId", () => {
  it("pages through a container's mappings", async () => {
    const ct = await c.container();
    for (let i = 0; i < 5; i++) await c.mapping(ct.id, { length: 0x1000 });
    expect(await expectPaging(c, `/v1/containers/${ct.id}/mappings`, 5)).toHaveLength(5);
  });

  it("404: an unknown container, an unknown mapping, another container's mapping", async () => {
    const a = await c.container();
    const b = await c.container();
    const m = await c.mapping(a.id, { length: 0x1000 });
    expectProblem(await c.get("/v1/containers/646464/mappings"), 404, "ENOENT", "no-such-container");
    expectProblem(await c.get(`/v1/containers/${a.id}/mappings/646464`), 404, "ENOENT", "no-such-mapping", { mappingId: 646464 });
    expectProblem(await c.get(`/v1/containers/${b.id}/mappings/${m.id}`), 404, "ENOENT", "no-such-mapping",
      { detail: `mapping ${m.id} is not in container ${b.name}`, containerId: b.id, mappingId: m.id });
  });
});

describe("DELETE /v1/containers/:id/mappings/:mappingId and POST /v1/containers/:id/unmap (IOMMU_IOAS_UNMAP)", () => {
  it("deletes one mapping: 204, then 404; If-Match is the mapping's version", async () => {
    const ct = await c.container();
    const m = await c.mapping(ct.id, { length: 0x1000 });
    expectProblem(await c.send("DELETE", `/v1/containers/${ct.id}/mappings/${m.id}`, undefined, { "if-match": '"AAAAAAAAAAAAAAAA"' }), 412, "ESTALE", "precondition-failed");
    const res = await c.send("DELETE", `/v1/containers/${ct.id}/mappings/${m.id}`, undefined, { "if-match": `"${m.version}"` });
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expectProblem(await c.del(`/v1/containers/${ct.id}/mappings/${m.id}`), 404, "ENOENT", "no-such-mapping");
    expect(await lastEvent()).toMatchObject({ op: "container-unmap", containerId: ct.id, errno: "ENOENT", reason: "no-such-mapping" });
  });

  it("unmaps a range: every mapping inside it (200 with the bytes); a cut one or an empty range → 404 ENOENT; {} unmaps everything", async () => {
    const ct = await c.container();
    const [a, b, d] = [await c.mapping(ct.id, { iova: 0x10000, length: 0x10000 }), await c.mapping(ct.id, { iova: 0x20000, length: 0x10000 }),
      await c.mapping(ct.id, { iova: 0x40000, length: 0x10000 })];
    expectProblem(await c.post(`/v1/containers/${ct.id}/unmap`, { iova: 0x10000, length: 0x18000 }), 404, "ENOENT", "mapping-split", { mappingId: b!.id });
    expectProblem(await c.post(`/v1/containers/${ct.id}/unmap`, { iova: 0x30000, length: 0x10000 }), 404, "ENOENT", "iova-not-mapped");
    const done = await c.ok<UnmappedView>("POST", `/v1/containers/${ct.id}/unmap`, { iova: 0x10000, length: 0x20000 });
    expect(done).toEqual({ unmapped: 0x20000, mappings: [a, b] });
    expect(await c.ok<UnmappedView>("POST", `/v1/containers/${ct.id}/unmap`, {})).toEqual({ unmapped: 0x10000, mappings: [d] });
    expect(await c.ok<UnmappedView>("POST", `/v1/containers/${ct.id}/unmap`, {})).toEqual({ unmapped: 0, mappings: [] });
    expectProblem(await c.post(`/v1/containers/${ct.id}/unmap`, { iova: 0x10000 }), 400, "EINVAL", "invalid-argument",
      { detail: "name both iova and length, or neither to unmap everything" });
  });

  it("deleting a container unmaps what it still holds (iommufd_ioas_destroy)", async () => {
    const ct = await c.container();
    await c.mapping(ct.id, { length: 0x1000 });
    expect((await c.del(`/v1/containers/${ct.id}`)).status).toBe(204);
    expectProblem(await c.get(`/v1/containers/${ct.id}/mappings`), 404, "ENOENT", "no-such-container");
  });
});

describe("mappings and attaching", () => {
  it("container attach of a group whose device's region is mapped → 409 EADDRINUSE reserved-region-mapped, with the attempt", async () => {
    const v = await vm();
    const m = await c.mapping(v.container.id, { iova: MSI.start, length: 0x1000 });
    const body = expectProblem(await c.post(`/v1/containers/${v.container.id}/attach`, { groupId: v.group.id }), 409, "EADDRINUSE", "reserved-region-mapped",
      { soft: false, code: -98, deviceId: v.device.id, regionId: v.msi.id, mappingId: m.id, containerId: v.container.id });
    expect(body.attempts).toEqual([expect.objectContaining({ allocated: true, freed: true, errno: "EADDRINUSE", soft: false })]);
    expect((await c.groupNow(v.group.id)).domainId).toBe(v.group.defaultDomainId);
    expect((await c.read<ContainerView>(`/v1/containers/${v.container.id}`)).domainIds).toEqual([]);
  });

  it("a domain created in a container with a mapping above its aperture → 409 EADDRINUSE mapping-outside-aperture", async () => {
    const unit = await c.unit({ driver: "mock", capabilities: { addressWidth: 39 } });
    const ct = await c.container();
    const m = await c.mapping(ct.id, { iova: 2 ** 40, length: 0x1000 });
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: unit.id, containerId: ct.id }), 409, "EADDRINUSE", "mapping-outside-aperture",
      { mappingId: m.id, containerId: ct.id });
  });
});

describe("/v1/devices/:id/reserved-regions", () => {
  it("adds (201 with ETag), lists, reads and removes (204) a device's regions", async () => {
    const unit = await c.unit({ driver: "arm-smmu-v3" });
    const { devices } = await c.groupWith(unit.id);
    const d = devices[0]!;
    const res = await c.post<ReservedRegionView>(`/v1/devices/${d.id}/reserved-regions`, { start: 0x8000000, length: 0x100000, type: "sw-msi" });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(Number), deviceId: d.id, start: 0x8000000, length: 0x100000, type: "sw-msi", version: expect.any(String) });
    expect(res.headers.etag).toBe(`"${res.body.version}"`);
    const rmr = await c.region(d.id, { start: 0x80000000, length: 0x10000, type: "direct" });
    expect((await c.read<PageView<ReservedRegionView>>(`/v1/devices/${d.id}/reserved-regions`)).items).toEqual([res.body, rmr]);
    expect(await c.read(`/v1/devices/${d.id}/reserved-regions/${rmr.id}`)).toEqual(rmr);
    expect(await lastEvent()).toMatchObject({ op: "region-add", deviceId: d.id, errno: null });
    expect((await c.del(`/v1/devices/${d.id}/reserved-regions/${rmr.id}`)).status).toBe(204);
    expectProblem(await c.get(`/v1/devices/${d.id}/reserved-regions/${rmr.id}`), 404, "ENOENT", "no-such-region", { regionId: rmr.id });
    expect(await lastEvent()).toMatchObject({ op: "region-remove", deviceId: d.id, errno: null });
  });

  it("409 EBUSY while the group is attached through a container; 400 for a second software MSI window; 404 for an unknown device", async () => {
    const v = await vm();
    expectProblem(await c.post(`/v1/devices/${v.device.id}/reserved-regions`, { start: 0x8000000, length: 0x100000, type: "sw-msi" }), 400, "EINVAL", "invalid-argument",
      { deviceId: v.device.id, regionId: v.msi.id });
    await c.ok("POST", `/v1/containers/${v.container.id}/attach`, { groupId: v.group.id });
    expectProblem(await c.del(`/v1/devices/${v.device.id}/reserved-regions/${v.msi.id}`), 409, "EBUSY", "group-attached",
      { groupId: v.group.id, deviceId: v.device.id, containerId: v.container.id });
    expectProblem(await c.get("/v1/devices/646464/reserved-regions"), 404, "ENOENT", "no-such-device");
    expectProblem(await c.post("/v1/devices/646464/reserved-regions", MSI), 404, "ENOENT", "no-such-device");
  });

  it("deleting a device removes its regions", async () => {
    const unit = await c.unit({ driver: "mock" });
    const { devices } = await c.groupWith(unit.id);
    const r = await c.region(devices[0]!.id, MSI);
    expect((await c.del(`/v1/devices/${devices[0]!.id}`)).status).toBe(204);
    expectProblem(await c.get(`/v1/devices/${devices[0]!.id}/reserved-regions/${r.id}`), 404, "ENOENT", "no-such-device");
  });
});

describe("bad input", () => {
  let ct: ContainerView;
  let dev: DeviceView;
  const rows: { name: string; method: Method; url: () => string; body?: unknown; raw?: string; field: string }[] = [
    { name: "map: iova above 2^53 - 1", method: "POST", url: () => `/v1/containers/${ct.id}/mappings`, raw: '{"iova":9007199254740992,"length":4096}', field: "body.iova" },
    { name: "map: iova of 2^64 - 1", method: "POST", url: () => `/v1/containers/${ct.id}/mappings`, raw: '{"iova":18446744073709551615,"length":4096}', field: "body.iova" },
    { name: "map: negative length", method: "POST", url: () => `/v1/containers/${ct.id}/mappings`, body: { length: -4096 }, field: "body.length" },
    { name: "map: length as text", method: "POST", url: () => `/v1/containers/${ct.id}/mappings`, body: { iova: 0, length: "0x1000" }, field: "body.length" },
    { name: "map: fractional iova", method: "POST", url: () => `/v1/containers/${ct.id}/mappings`, body: { iova: 4096.5, length: 4096 }, field: "body.iova" },
    { name: "map: missing length", method: "POST", url: () => `/v1/containers/${ct.id}/mappings`, body: { iova: 4096 }, field: "body.length" },
    { name: "map: unknown field", method: "POST", url: () => `/v1/containers/${ct.id}/mappings`, body: { length: 4096, flags: 3 }, field: "body.flags" },
    { name: "map: bad container id", method: "POST", url: () => "/v1/containers/abc/mappings", body: { length: 4096 }, field: "params.id" },
    { name: "unmap: length above 2^53 - 1", method: "POST", url: () => `/v1/containers/${ct.id}/unmap`, raw: '{"iova":0,"length":18446744073709551615}', field: "body.length" },
    { name: "delete mapping: bad mapping id", method: "DELETE", url: () => `/v1/containers/${ct.id}/mappings/x`, field: "params.mappingId" },
    { name: "region: unknown type", method: "POST", url: () => `/v1/devices/${dev.id}/reserved-regions`, body: { start: 0, length: 4096, type: "rmrr" }, field: "body.type" },
    { name: "region: start above 2^53 - 1", method: "POST", url: () => `/v1/devices/${dev.id}/reserved-regions`, raw: '{"start":9007199254740993,"length":1,"type":"reserved"}', field: "body.start" },
    { name: "region: missing type", method: "POST", url: () => `/v1/devices/${dev.id}/reserved-regions`, body: { start: 0, length: 4096 }, field: "body.type" },
    { name: "region: bad region id", method: "GET", url: () => `/v1/devices/${dev.id}/reserved-regions/0`, field: "params.regionId" },
  ];

  it.each(rows)("$name → 400 naming $field", async ({ method, url, body, raw, field }) => {
    ct ??= await c.container();
    dev ??= (await c.groupWith((await c.unit({ driver: "mock" })).id)).devices[0]!;
    const mappings = () => c.read(`/v1/containers/${ct.id}/mappings?limit=1000`);
    const before = await mappings();
    expectInvalid(raw !== undefined ? await c.raw(method, url(), raw) : await c.send(method, url(), body), field);
    expect(await mappings()).toEqual(before);
  });
});
