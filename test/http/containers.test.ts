// /v1/containers: create, list, get, delete, and bad input on every
// container route (the search itself is in containers-search.test.ts).
import { describe, expect, it } from "vitest";
import { Container } from "../../src/core/entities.js";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem, uniqueName,
  type ContainerView, type Method, type PageView,
} from "../helpers/http.js";

const c = clientForFile();

describe("POST /v1/containers", () => {
  it("creates an iommufd container (an IOAS) unless told otherwise, and answers 201", async () => {
    const name = uniqueName("ioas");
    const res = await c.post<ContainerView>("/v1/containers", { name });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      ...Container.make({ id: expect.any(Number), name, owner: null }),
      domainIds: [], version: expect.any(String),
    });
    expect(res.body.kind).toBe("iommufd");
    expect(await c.read(`/v1/containers/${res.body.id}`)).toEqual(res.body);
  });

  it.each(["iommufd", "type1"] as const)("keeps the kind it is given: %s", async (kind) => {
    const ct = await c.container({ kind });
    expect(ct.kind).toBe(kind);
    expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).kind).toBe(kind);
  });

  it("a type1 container takes no domain a client allocates: 400 EINVAL invalid-argument", async () => {
    const ct = await c.container({ kind: "type1" });
    expectProblem(await c.post("/v1/domains", { type: "paging", driver: "mock", containerId: ct.id }), 400, "EINVAL", "invalid-argument", { containerId: ct.id });
    expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).domainIds).toEqual([]);
  });

  it("refuses a taken name with 409 EEXIST name-taken", async () => {
    const ct = await c.container();
    expectProblem(await c.post("/v1/containers", { name: ct.name }), 409, "EEXIST", "name-taken", { soft: false, containerId: ct.id });
  });
});

describe("GET /v1/containers and /v1/containers/:id", () => {
  it("pages through containers with after/limit/next", async () => {
    for (let i = 0; i < 5; i++) await c.container();
    await expectPaging(c, "/v1/containers", 5);
  });

  it("lists the container's domains in id order", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "mock" });
    const a = await c.domain({ unitId: u.id, containerId: ct.id });
    const b = await c.domain({ unitId: u.id, containerId: ct.id });
    expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).domainIds).toEqual([a.id, b.id]);
  });

  it("answers 404 no-such-container for an unknown id", async () => {
    expectProblem(await c.get("/v1/containers/646464"), 404, "ENOENT", "no-such-container", { containerId: 646464 });
  });
});

describe("DELETE /v1/containers/:id", () => {
  it("deletes an empty container with 204", async () => {
    const ct = await c.container();
    const res = await c.del(`/v1/containers/${ct.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expectProblem(await c.get(`/v1/containers/${ct.id}`), 404, "ENOENT", "no-such-container");
  });

  it("refuses a container holding domains: 409 EBUSY container-in-use", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "mock" });
    const d = await c.domain({ unitId: u.id, containerId: ct.id });
    expectProblem(await c.del(`/v1/containers/${ct.id}`), 409, "EBUSY", "container-in-use", { soft: false, containerId: ct.id });
    expect((await c.del(`/v1/domains/${d.id}`)).status).toBe(204);
    expect((await c.del(`/v1/containers/${ct.id}`)).status).toBe(204);
  });

  it("refuses a container with an automatic domain in use", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    await c.ok("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
    expectProblem(await c.del(`/v1/containers/${ct.id}`), 409, "EBUSY", "container-in-use");
    await c.ok("POST", `/v1/containers/${ct.id}/detach`, { groupId: group.id });
    expect((await c.del(`/v1/containers/${ct.id}`)).status).toBe(204);
  });

  it("answers 404 for an unknown container", async () => {
    expectProblem(await c.del("/v1/containers/646464"), 404, "ENOENT", "no-such-container");
  });
});

describe("attach / detach through a container: missing objects", () => {
  it("answers 404 for an unknown container or group", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    for (const op of ["attach", "detach"]) {
      expectProblem(await c.post(`/v1/containers/646464/${op}`, { groupId: group.id }), 404, "ENOENT", "no-such-container", { containerId: 646464 });
      expectProblem(await c.post(`/v1/containers/${ct.id}/${op}`, { groupId: 646464 }), 404, "ENOENT", "no-such-group", { groupId: 646464 });
    }
  });
});

describe("bad input", () => {
  const rows: { name: string; method: Method; url: string; body?: unknown; field?: string }[] = [
    { name: "name of the wrong type", method: "POST", url: "/v1/containers", body: { name: { n: 1 } }, field: "body.name" },
    { name: "missing name", method: "POST", url: "/v1/containers", body: { kind: "type1" }, field: "body.name" },
    { name: "unknown field", method: "POST", url: "/v1/containers", body: { name: "ct-x", domains: [] }, field: "body.domains" },
    { name: "domain settings (an IOAS has none)", method: "POST", url: "/v1/containers", body: { name: "ct-x", config: { dirtyTracking: true } }, field: "body.config" },
    { name: "unknown kind", method: "POST", url: "/v1/containers", body: { name: "ct-x", kind: "spapr" }, field: "body.kind" },
    { name: "kind of the wrong type", method: "POST", url: "/v1/containers", body: { name: "ct-x", kind: 1 }, field: "body.kind" },
    { name: "bad id on GET", method: "GET", url: "/v1/containers/abc", field: "params.id" },
    { name: "bad id on DELETE", method: "DELETE", url: "/v1/containers/abc", field: "params.id" },
    { name: "bad list parameter", method: "GET", url: "/v1/containers?limit=-5", field: "querystring.limit" },
    { name: "attach: bad id", method: "POST", url: "/v1/containers/abc/attach", body: { groupId: 1 }, field: "params.id" },
    { name: "attach: missing groupId", method: "POST", url: "/v1/containers/1/attach", body: {}, field: "body.groupId" },
    { name: "attach: groupId of the wrong type", method: "POST", url: "/v1/containers/1/attach", body: { groupId: [] }, field: "body.groupId" },
    { name: "attach: unknown field", method: "POST", url: "/v1/containers/1/attach", body: { groupId: 1, domainId: 2 }, field: "body.domainId" },
    { name: "attach: unknown policy", method: "POST", url: "/v1/containers/1/attach", body: { groupId: 1, policy: "libvirt" }, field: "body.policy" },
    { name: "attach: policy of the wrong type", method: "POST", url: "/v1/containers/1/attach", body: { groupId: 1, policy: true }, field: "body.policy" },
    { name: "detach: a policy (detach has none)", method: "POST", url: "/v1/containers/1/detach", body: { groupId: 1, policy: "kernel" }, field: "body.policy" },
    { name: "detach: bad id", method: "POST", url: "/v1/containers/abc/detach", body: { groupId: 1 }, field: "params.id" },
    { name: "detach: missing groupId", method: "POST", url: "/v1/containers/1/detach", body: { owner: "vfio" }, field: "body.groupId" },
    { name: "detach: unknown field", method: "POST", url: "/v1/containers/1/detach", body: { groupId: 1, free: true }, field: "body.free" },
  ];

  it.each(rows)("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const before = await c.read<PageView<ContainerView>>("/v1/containers?limit=1000");
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.read<PageView<ContainerView>>("/v1/containers?limit=1000")).toEqual(before);
  });

  it.each(["/v1/containers", "/v1/containers/1/attach", "/v1/containers/1/detach"])("malformed JSON on POST %s → 400", async (url) => {
    expectInvalid(await c.raw("POST", url, "[{]"));
  });

  it("there is no PATCH for containers: 405 method-not-allowed", async () => {
    const res = await c.patch("/v1/containers/1", { name: "x" });
    expectProblem(res, 405, "EOPNOTSUPP", "method-not-allowed");
    expect(res.headers.allow).toBe("DELETE, GET, HEAD");
  });
});
