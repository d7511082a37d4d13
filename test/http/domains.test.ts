// /v1/domains: allocation (domain_alloc_paging and its refusals), listing,
// lookup, freeing (EBUSY while in use) and bad input.
import { beforeAll, describe, expect, it } from "vitest";
import { Domain } from "../../src/core/entities.js";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem,
  type DomainView, type Method, type PageView, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();
let intel: UnitView;

beforeAll(async () => {
  intel = await c.unit({ driver: "intel-vtd", capabilities: { addressWidth: 39 } });
});

describe("POST /v1/domains", () => {
  it("allocates a paging domain for a unit, shaped like the unit, and answers 201", async () => {
    const res = await c.post<DomainView>("/v1/domains", { type: "paging", unitId: intel.id, name: "vm0-dma" });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      ...Domain.make({
        id: expect.any(Number), name: "vm0-dma", type: "paging", driver: "intel-vtd", unitId: intel.id,
        config: {
          addressWidth: 39, pageSizes: intel.capabilities.pageSizes, enforceCacheCoherency: false, dirtyTracking: false, nestParent: false,
          coherentWalk: true, firstStage: true,
        },
        auto: false, containerId: null, owner: null,
      }),
      attachedGroupCount: 0, version: expect.any(String),
    });
    expect(await c.read(`/v1/domains/${res.body.id}`)).toEqual(res.body);
  });

  it("allocates an unbound domain from the driver's defaults when only the driver is named", async () => {
    const d = await c.domain({ driver: "arm-smmu-v3", config: { enforceCacheCoherency: true } });
    expect(d).toMatchObject({ driver: "arm-smmu-v3", unitId: null, name: null, type: "paging" });
    expect(d.config).toEqual({
      addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], enforceCacheCoherency: true, dirtyTracking: false, nestParent: false,
      coherentWalk: true, firstStage: true,
    });
  });

  // __iommu_domain_alloc hands back ops->identity_domain / blocked_domain.
  it.each(["identity", "blocked"] as const)("answers the driver's static %s domain: 201 when the request made it, then 200 with the same domain", async (type) => {
    const first = await c.post<DomainView>("/v1/domains", { type, unitId: intel.id });
    const again = await c.post<DomainView>("/v1/domains", { type, driver: "intel-vtd", name: `intel-vtd-${type}` });
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(first.body).toMatchObject({ type, driver: "intel-vtd", name: `intel-vtd-${type}`, unitId: null, containerId: null, owner: null });
    expect(again.body).toEqual(first.body);
    expect(again.headers.etag).toBe(first.headers.etag);
  });

  it.each([
    ["identity", "mock"], ["blocked", "virtio-iommu"],
  ] as const)("refuses a %s domain of %s, which has none: 501 EOPNOTSUPP unsupported", async (type, driver) => {
    expectProblem(await c.post("/v1/domains", { type, driver }), 501, "EOPNOTSUPP", "unsupported", { detail: `${driver} has no static ${type} domain` });
  });

  it("refuses a static domain with a configuration, a container or another name: 400 EINVAL invalid-argument", async () => {
    const ct = await c.container();
    for (const extra of [{ config: { dirtyTracking: true } }, { containerId: ct.id }, { name: "pt" }]) {
      expectProblem(await c.post("/v1/domains", { type: "identity", driver: "arm-smmu-v3", ...extra }), 400, "EINVAL", "invalid-argument");
    }
  });

  it("never deletes a static domain: 409 EBUSY domain-in-use", async () => {
    const d = (await c.post<DomainView>("/v1/domains", { type: "blocked", driver: "amd-iommu" })).body;
    expectProblem(await c.del(`/v1/domains/${d.id}`), 409, "EBUSY", "domain-in-use", { domainId: d.id });
  });

  it("binds a domain to a container", async () => {
    const ct = await c.container();
    const d = await c.domain({ unitId: intel.id, containerId: ct.id });
    expect(d.containerId).toBe(ct.id);
    expect((await c.read<{ domainIds: number[] }>(`/v1/containers/${ct.id}`)).domainIds).toEqual([d.id]);
  });

  it("needs a driver or a unit: 400 EINVAL invalid-argument", async () => {
    expectProblem(await c.post("/v1/domains", { type: "paging" }), 400, "EINVAL", "invalid-argument", { soft: false });
  });

  it("refuses a driver that is not the unit's: 400 EINVAL driver-mismatch (an argument error, not soft)", async () => {
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: intel.id, driver: "amd-iommu" }), 400, "EINVAL", "driver-mismatch", { unitId: intel.id, soft: false });
  });

  it("refuses unknown units and containers with 404", async () => {
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: 313131 }), 404, "ENOENT", "no-such-unit", { unitId: 313131 });
    expectProblem(await c.post("/v1/domains", { type: "paging", driver: "mock", containerId: 313131 }), 404, "ENOENT", "no-such-container", { containerId: 313131 });
  });

  it.each([
    { what: "dirty tracking on an arm-smmu unit", unit: { driver: "arm-smmu" }, body: { config: { dirtyTracking: true } } },
    { what: "dirty tracking on an intel unit without it", unit: { driver: "intel-vtd" }, body: { config: { dirtyTracking: true } } },
    { what: "nesting parent on an intel unit without nesting", unit: { driver: "intel-vtd" }, body: { config: { nestParent: true } } },
    { what: "nesting parent on a virtio-iommu unit", unit: { driver: "virtio-iommu" }, body: { config: { nestParent: true } } },
  ])("refuses $what: 501 EOPNOTSUPP unsupported", async ({ unit, body }) => {
    const spec: Record<string, unknown> = { type: "paging", ...body };
    if (unit) spec.unitId = (await c.unit(unit)).id;
    expectProblem(await c.post("/v1/domains", spec), 501, "EOPNOTSUPP", "unsupported", { soft: false });
  });

  it("allocates dirty tracking where the unit has it", async () => {
    const u = await c.unit({ driver: "intel-vtd", capabilities: { dirtyTracking: true } });
    expect((await c.domain({ unitId: u.id, config: { dirtyTracking: true } })).config.dirtyTracking).toBe(true);
  });

  it.each([
    { what: "dirty tracking", config: { dirtyTracking: true } },
    { what: "a nesting parent", config: { nestParent: true } },
  ])("refuses $what without a unit (IOMMU_HWPT_ALLOC allocates for a device): 400 EINVAL invalid-argument", async ({ config }) => {
    expectProblem(await c.post("/v1/domains", { type: "paging", driver: "intel-vtd", config }), 400, "EINVAL", "invalid-argument", { soft: false });
  });

  it("allocates for an arm-smmu unit without finalising (its context bank is taken at the first attach): 201 unbound, then the attach is 507 ENOSPC", async () => {
    const u = await c.unit({ driver: "arm-smmu", capabilities: { domainIds: 1 } });
    const { group } = await c.groupWith(u.id); // its default domain holds the only context bank
    const d = await c.domain({ unitId: u.id });
    expect(d).toMatchObject({ unitId: null, driver: "arm-smmu" });
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: d.id }), 507, "ENOSPC", "context-banks-exhausted", { soft: false });
  });

  it("refuses a domain when the arm-smmu-v3 ASIDs are used up (arm_smmu_domain_finalise_s1): 507 EBUSY asids-exhausted", async () => {
    const u = await c.unit({ driver: "arm-smmu-v3", capabilities: { domainIds: 2 } });
    await c.groupWith(u.id);
    await c.domain({ unitId: u.id });
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: u.id }), 507, "EBUSY", "asids-exhausted", { soft: false });
    // A nesting parent takes a VMID of the SMMU instead.
    for (let i = 0; i < 2; i++) expect((await c.domain({ unitId: u.id, config: { nestParent: true } })).unitId).toBe(u.id);
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: u.id, config: { nestParent: true } }), 507, "ENOSPC", "vmids-exhausted", { soft: false });
  });

  it("refuses a domain for a DART whose page exceeds the CPU page (apple_dart_finalize_domain): 409 EINVAL page-too-large, hard", async () => {
    const u = await c.unit({ driver: "apple-dart", capabilities: { pageSizes: [16384], cpuPageSize: 4096 } });
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: u.id }), 409, "EINVAL", "page-too-large", { soft: false });
  });

  it("refuses a domain when the virtio-iommu's domain IDs are used up (viommu_domain_alloc_paging): 507 ENOSPC", async () => {
    const u = await c.unit({ driver: "virtio-iommu", capabilities: { domainIds: 1 } });
    await c.groupWith(u.id);
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: u.id }), 507, "ENOSPC", "domain-ids-exhausted", { soft: false });
  });

  it("refuses to finalise on a virtio-iommu whose granule exceeds the CPU page: 422 ENODEV", async () => {
    const u = await c.unit({ driver: "virtio-iommu", capabilities: { pageSizes: [65536], cpuPageSize: 4096 } });
    expectProblem(await c.post("/v1/domains", { type: "paging", unitId: u.id }), 422, "ENODEV", "granule-too-large", { soft: false });
  });
});

describe("the amd-iommu domain-ID pool (one for the driver, on an app of its own)", () => {
  const own = clientForFile();

  it("refuses a domain when the pool is used up (protection_domain_alloc): 507 ENOMEM, with or without a unit; freeing one gives it back", async () => {
    const u = await own.unit({ driver: "amd-iommu", capabilities: { domainIds: 3 } }); // the identity domain holds one
    const d = await own.domain({ driver: "amd-iommu" });
    await own.domain({ unitId: u.id });
    expectProblem(await own.post("/v1/domains", { type: "paging", driver: "amd-iommu" }), 507, "ENOMEM", "domain-id-pool-exhausted", { soft: false });
    expectProblem(await own.post("/v1/domains", { type: "paging", unitId: u.id }), 507, "ENOMEM", "domain-id-pool-exhausted", { soft: false });
    await own.expect(204, "DELETE", `/v1/domains/${d.id}`);
    await own.domain({ unitId: u.id });
  });
});

describe("GET /v1/domains and /v1/domains/:id", () => {
  it("pages through domains with after/limit/next", async () => {
    for (let i = 0; i < 4; i++) await c.domain({ unitId: intel.id });
    await expectPaging(c, "/v1/domains", 4);
  });

  it("filters by container, with paging", async () => {
    const ct = await c.container();
    const mine: number[] = [];
    for (let i = 0; i < 3; i++) mine.push((await c.domain({ unitId: intel.id, containerId: ct.id })).id);
    await c.domain({ unitId: intel.id });
    const ids = await expectPaging(c, `/v1/domains?containerId=${ct.id}`, 3);
    expect(ids).toEqual(mine);
    expect(await c.read(`/v1/domains?containerId=999999`)).toEqual({ items: [], next: null });
  });

  it("shows attached groups, and 404 no-such-domain for an unknown id", async () => {
    const d = await c.domain({ unitId: intel.id });
    const { group } = await c.groupWith(intel.id);
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
    expect((await c.read<DomainView>(`/v1/domains/${d.id}`)).attachedGroupCount).toBe(1);
    expect(await c.groupsOn(d.id)).toEqual([group.id]);
    expectProblem(await c.get("/v1/domains/888888"), 404, "ENOENT", "no-such-domain", { domainId: 888888 });
  });
});

describe("DELETE /v1/domains/:id", () => {
  it("frees an unused domain with 204", async () => {
    const d = await c.domain({ unitId: intel.id });
    const res = await c.del(`/v1/domains/${d.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expectProblem(await c.get(`/v1/domains/${d.id}`), 404, "ENOENT", "no-such-domain");
  });

  it("refuses a domain a group is attached to (EBUSY domain-in-use), frees it once the group moved away", async () => {
    const d = await c.domain({ unitId: intel.id });
    const { group } = await c.groupWith(intel.id);
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
    expectProblem(await c.del(`/v1/domains/${d.id}`), 409, "EBUSY", "domain-in-use", { soft: false, domainId: d.id });
    expect((await c.read<DomainView>(`/v1/domains/${d.id}`)).attachedGroupCount).toBe(1);
    await c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId: d.id });
    expect((await c.del(`/v1/domains/${d.id}`)).status).toBe(204);
  });

  it("refuses a group's default domain and blocking domain", async () => {
    const { group } = await c.groupWith(intel.id);
    expectProblem(await c.del(`/v1/domains/${group.defaultDomainId}`), 409, "EBUSY", "domain-in-use", { domainId: group.defaultDomainId });
    const claimed = await c.ok<{ group: { blockingDomainId: number } }>("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio" });
    const blocking = claimed.group.blockingDomainId;
    expectProblem(await c.del(`/v1/domains/${blocking}`), 409, "EBUSY", "domain-in-use", { domainId: blocking });
    await c.ok("POST", `/v1/groups/${group.id}/release`, { owner: "vfio" });
    // Released, the blocking domain is still the group's (reused at the next claim).
    expectProblem(await c.del(`/v1/domains/${blocking}`), 409, "EBUSY", "domain-in-use", { domainId: blocking });
    expectProblem(await c.del(`/v1/domains/${group.defaultDomainId}`), 409, "EBUSY", "domain-in-use");
  });

  it("answers 404 for an unknown domain", async () => {
    expectProblem(await c.del("/v1/domains/888888"), 404, "ENOENT", "no-such-domain");
  });
});

describe("bad input", () => {
  const rows: { name: string; method: Method; url: string; body?: unknown; field?: string }[] = [
    { name: "missing type", method: "POST", url: "/v1/domains", body: { driver: "mock" }, field: "body.type" },
    { name: "type dma (only the core makes those)", method: "POST", url: "/v1/domains", body: { type: "dma", driver: "mock" }, field: "body.type" },
    { name: "type of the wrong type", method: "POST", url: "/v1/domains", body: { type: 3, driver: "mock" }, field: "body.type" },
    { name: "unitId of the wrong type", method: "POST", url: "/v1/domains", body: { type: "paging", unitId: "dmar0" }, field: "body.unitId" },
    { name: "unknown driver", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "tegra" }, field: "body.driver" },
    { name: "unknown field", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "mock", auto: true }, field: "body.auto" },
    { name: "unknown config field", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "mock", config: { pasid: true } }, field: "body.config.pasid" },
    { name: "address width too small", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "mock", config: { addressWidth: 16 } }, field: "body.config.addressWidth" },
    { name: "page sizes empty", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "mock", config: { pageSizes: [] } }, field: "body.config.pageSizes" },
    { name: "page size not a multiple of 512", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "mock", config: { pageSizes: [4096, 1000] } }, field: "body.config.pageSizes.1" },
    { name: "config flag of the wrong type", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "mock", config: { dirtyTracking: "on" } }, field: "body.config.dirtyTracking" },
    { name: "empty name", method: "POST", url: "/v1/domains", body: { type: "paging", driver: "mock", name: "" }, field: "body.name" },
    { name: "bad id on GET", method: "GET", url: "/v1/domains/abc", field: "params.id" },
    { name: "bad id on DELETE", method: "DELETE", url: "/v1/domains/abc", field: "params.id" },
    { name: "containerId filter of the wrong type", method: "GET", url: "/v1/domains?containerId=abc", field: "querystring.containerId" },
    { name: "containerId filter 0", method: "GET", url: "/v1/domains?containerId=0", field: "querystring.containerId" },
    { name: "unknown list parameter", method: "GET", url: "/v1/domains?unitId=1", field: "querystring.unitId" },
  ];

  it.each(rows)("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const before = await c.read<PageView<DomainView>>("/v1/domains?limit=1000");
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.read<PageView<DomainView>>("/v1/domains?limit=1000")).toEqual(before);
  });

  it("malformed JSON → 400", async () => {
    expectInvalid(await c.raw("POST", "/v1/domains", "{'type': 'paging'}"));
  });

  it("there is no PATCH for domains: 405 method-not-allowed", async () => {
    const res = await c.patch("/v1/domains/1", { name: "x" });
    expectProblem(res, 405, "EOPNOTSUPP", "method-not-allowed");
    expect(res.headers.allow).toBe("DELETE, GET, HEAD");
  });
});
