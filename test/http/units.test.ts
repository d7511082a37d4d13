// /v1/units: create, list, get, patch, delete and every way to get them wrong.
import { beforeAll, describe, expect, it } from "vitest";
import { Unit } from "../../src/core/entities.js";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem, uniqueName,
  type FaultView, type Method, type PageView, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();
let firstUnit = 0;

beforeAll(async () => {
  firstUnit = (await c.unit()).id;
});

describe("POST /v1/units", () => {
  it("creates a unit with the driver's default capabilities and answers 201 with it", async () => {
    const name = uniqueName("dmar");
    const res = await c.send<UnitView>("POST", "/v1/units", { name, driver: "intel-vtd" });
    expect(res.status).toBe(201);
    expect(String(res.headers["content-type"])).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      ...Unit.make({
        id: expect.any(Number), name, driver: "intel-vtd", online: true,
        capabilities: {
          addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
          dirtyTracking: false, nesting: false, domainIds: 65535, cpuPageSize: 4096, isolatedMsi: true,
          coherentWalk: true, firstStage: true, bypass: true,
        },
      }),
      version: expect.any(String),
    });
    expect(await c.read(`/v1/units/${res.body.id}`)).toEqual(res.body);
  });

  it("merges given capabilities over the defaults and honours online:false", async () => {
    const u = await c.unit({ driver: "arm-smmu-v3", capabilities: { addressWidth: 44, dirtyTracking: true }, online: false });
    expect(u.online).toBe(false);
    expect(u.capabilities).toMatchObject({ addressWidth: 44, dirtyTracking: true, nesting: true, domainIds: 65536 });
  });

  it.each(["intel-vtd", "arm-smmu-v3", "arm-smmu", "amd-iommu", "apple-dart", "virtio-iommu", "mock"])(
    "accepts driver %s", async (driver) => {
      const u = await c.unit({ driver });
      expect(u.driver).toBe(driver);
    });

  it("refuses a taken name with 409 EEXIST name-taken naming the existing unit", async () => {
    const u = await c.unit();
    const res = await c.post("/v1/units", { name: u.name, driver: "amd-iommu" });
    expectProblem(res, 409, "EEXIST", "name-taken", { soft: false, unitId: u.id });
  });

  it("hands out increasing ids", async () => {
    const a = await c.unit();
    const b = await c.unit();
    expect(b.id).toBeGreaterThan(a.id);
  });
});

describe("GET /v1/units", () => {
  it("pages through all units with after/limit/next", async () => {
    for (let i = 0; i < 5; i++) await c.unit();
    await expectPaging(c, "/v1/units", 5);
  });

  it("defaults to pages of 100", async () => {
    await Promise.all(Array.from({ length: 101 }, () => c.unit({ driver: "mock" })));
    const all = await c.read<PageView<UnitView>>("/v1/units?limit=1000");
    expect(all.items.length).toBeGreaterThan(100);
    const first = await c.read<PageView<UnitView>>("/v1/units");
    expect(first.items).toHaveLength(100);
    expect(first.next).toBe(first.items[99]!.id);
    expect(first.items.map((u) => u.id)).toEqual(all.items.slice(0, 100).map((u) => u.id));
  });
});

describe("GET /v1/units/:id", () => {
  it("answers 200 with the unit", async () => {
    const u = await c.unit({ driver: "apple-dart" });
    expect(await c.read(`/v1/units/${u.id}`)).toEqual(u);
  });

  it("answers 404 ENOENT no-such-unit for an unknown id", async () => {
    const res = await c.get("/v1/units/999999");
    expectProblem(res, 404, "ENOENT", "no-such-unit", { soft: false, unitId: 999999, instance: "/v1/units/999999" });
  });
});

describe("PATCH /v1/units/:id", () => {
  it("takes a unit offline and back, and the change is visible to GET", async () => {
    const u = await c.unit();
    const off = await c.ok<UnitView>("PATCH", `/v1/units/${u.id}`, { online: false });
    expect(off).toEqual({ ...u, online: false, version: expect.any(String) });
    expect(off.version).not.toBe(u.version);
    expect(await c.read(`/v1/units/${u.id}`)).toEqual(off);
    const on = await c.ok<UnitView>("PATCH", `/v1/units/${u.id}`, { online: true });
    expect(on.online).toBe(true);
  });

  it("answers 404 for an unknown unit", async () => {
    expectProblem(await c.patch("/v1/units/999999", { online: false }), 404, "ENOENT", "no-such-unit");
  });
});

describe("DELETE /v1/units/:id", () => {
  it("deletes an unused unit with 204 and no body; it is gone afterwards", async () => {
    const u = await c.unit();
    const res = await c.del(`/v1/units/${u.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expectProblem(await c.get(`/v1/units/${u.id}`), 404, "ENOENT", "no-such-unit");
    expectProblem(await c.del(`/v1/units/${u.id}`), 404, "ENOENT", "no-such-unit");
  });

  it("refuses a unit with groups: 409 EBUSY unit-in-use", async () => {
    const u = await c.unit();
    await c.group(u.id);
    expectProblem(await c.del(`/v1/units/${u.id}`), 409, "EBUSY", "unit-in-use", { soft: false, unitId: u.id });
    expect((await c.get(`/v1/units/${u.id}`)).status).toBe(200);
  });

  it("refuses a unit a domain is finalised on: 409 EBUSY unit-in-use", async () => {
    const u = await c.unit({ driver: "arm-smmu-v3" });
    const d = await c.domain({ unitId: u.id });
    expect(d.unitId).toBe(u.id);
    expectProblem(await c.del(`/v1/units/${u.id}`), 409, "EBUSY", "unit-in-use", { unitId: u.id });
    expect((await c.del(`/v1/domains/${d.id}`)).status).toBe(204);
    expect((await c.del(`/v1/units/${u.id}`)).status).toBe(204);
  });

  it("removes the faults injected on the unit with it", async () => {
    const u = await c.unit();
    const f = await c.fault({ unitId: u.id, errno: "ENOMEM", count: 3 });
    expect((await c.faults()).map((x) => x.id)).toContain(f.id);
    expect((await c.del(`/v1/units/${u.id}`)).status).toBe(204);
    expect((await c.faults()).map((x: FaultView) => x.id)).not.toContain(f.id);
  });
});

describe("bad input", () => {
  const rows: { name: string; method: Method; url: string; body?: unknown; field?: string }[] = [
    { name: "name of the wrong type", method: "POST", url: "/v1/units", body: { name: { x: 1 }, driver: "mock" }, field: "body.name" },
    { name: "driver of the wrong type", method: "POST", url: "/v1/units", body: { name: "u-x", driver: 5 }, field: "body.driver" },
    { name: "unknown driver", method: "POST", url: "/v1/units", body: { name: "u-x", driver: "nvidia-smmu" }, field: "body.driver" },
    { name: "missing name", method: "POST", url: "/v1/units", body: { driver: "mock" }, field: "body.name" },
    { name: "missing driver", method: "POST", url: "/v1/units", body: { name: "u-x" }, field: "body.driver" },
    { name: "empty name", method: "POST", url: "/v1/units", body: { name: "", driver: "mock" }, field: "body.name" },
    { name: "NUL in the name", method: "POST", url: "/v1/units", body: { name: "a\u0000b", driver: "mock" }, field: "body.name" },
    { name: "name too long", method: "POST", url: "/v1/units", body: { name: "x".repeat(201), driver: "mock" }, field: "body.name" },
    { name: "unknown field", method: "POST", url: "/v1/units", body: { name: "u-x", driver: "mock", colour: "red" }, field: "body.colour" },
    { name: "unknown capability", method: "POST", url: "/v1/units", body: { name: "u-x", driver: "mock", capabilities: { turbo: true } }, field: "body.capabilities.turbo" },
    { name: "capability of the wrong type", method: "POST", url: "/v1/units", body: { name: "u-x", driver: "mock", capabilities: { addressWidth: "wide" } }, field: "body.capabilities.addressWidth" },
    { name: "address width out of range", method: "POST", url: "/v1/units", body: { name: "u-x", driver: "mock", capabilities: { addressWidth: 65 } }, field: "body.capabilities.addressWidth" },
    { name: "page size not a multiple of 512", method: "POST", url: "/v1/units", body: { name: "u-x", driver: "mock", capabilities: { pageSizes: [1000] } }, field: "body.capabilities.pageSizes.0" },
    { name: "online of the wrong type", method: "POST", url: "/v1/units", body: { name: "u-x", driver: "mock", online: "maybe" }, field: "body.online" },
    { name: "array body", method: "POST", url: "/v1/units", body: [1, 2], field: "body" },
    { name: "bad id on GET", method: "GET", url: "/v1/units/abc", field: "params.id" },
    { name: "id 0 on GET", method: "GET", url: "/v1/units/0", field: "params.id" },
    { name: "negative id on GET", method: "GET", url: "/v1/units/-1", field: "params.id" },
    { name: "id beyond int32", method: "GET", url: "/v1/units/2147483648", field: "params.id" },
    { name: "bad id on PATCH", method: "PATCH", url: "/v1/units/abc", body: { online: true }, field: "params.id" },
    { name: "bad id on DELETE", method: "DELETE", url: "/v1/units/abc", field: "params.id" },
    { name: "empty patch", method: "PATCH", url: "/v1/units/1", body: {}, field: "body" },
    { name: "patch of a field that cannot change", method: "PATCH", url: "/v1/units/1", body: { name: "renamed" }, field: "body.name" },
    { name: "patch with the wrong type", method: "PATCH", url: "/v1/units/1", body: { online: "perhaps" }, field: "body.online" },
    { name: "limit 0", method: "GET", url: "/v1/units?limit=0", field: "querystring.limit" },
    { name: "limit too large", method: "GET", url: "/v1/units?limit=1001", field: "querystring.limit" },
    { name: "limit not a number", method: "GET", url: "/v1/units?limit=many", field: "querystring.limit" },
    { name: "negative after", method: "GET", url: "/v1/units?after=-1", field: "querystring.after" },
    { name: "unknown query parameter", method: "GET", url: "/v1/units?sort=name", field: "querystring.sort" },
  ];

  it.each(rows)("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const before = await c.read<PageView<UnitView>>("/v1/units?limit=1000");
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.read<PageView<UnitView>>("/v1/units?limit=1000")).toEqual(before);
  });

  // Fastify's default ajv coercion (coerceTypes: "array", src/http/app.ts)
  // applies to bodies too: these JSON values of the wrong type would be
  // silently converted. A JSON body has real types; a wrong one is an error,
  // just as an unknown field is.
  it.each([
    { name: "number for a string", url: "/v1/units", body: () => ({ name: 5, driver: "mock" }), field: "body.name" },
    { name: "one-element array for a string", url: "/v1/units", body: () => ({ name: ["u-arr"], driver: "mock" }), field: "body.name" },
    { name: "string for a boolean", url: "/v1/units", body: () => ({ name: "u-str-bool", driver: "mock", online: "false" }), field: "body.online" },
    { name: "string for an integer", url: "/v1/groups", body: () => ({ name: "g-str-int", unitId: String(firstUnit) }), field: "body.unitId" },
    { name: "number for a boolean", url: "/v1/units", body: () => ({ name: "u-num-bool", driver: "mock", capabilities: { snoopControl: 0 } }), field: "body.capabilities.snoopControl" },
  ])("JSON $name in a body → 400, not coerced", async ({ url, body, field }) => {
    expectInvalid(await c.send("POST", url, body()), field);
  });

  it.each([
    ["POST", "/v1/units"],
    ["PATCH", "/v1/units/1"],
  ] as const)("malformed JSON on %s %s → 400 invalid-request", async (method, url) => {
    const res = await c.raw(method, url, '{"name": "u-x", "driver": ');
    expectInvalid(res);
    expect(res.body.detail).toMatch(/JSON/);
  });

  it("a non-JSON content type → 4xx problem", async () => {
    const res = await c.raw("POST", "/v1/units", "name=x&driver=mock", "application/x-www-form-urlencoded");
    expect(res.status).toBe(415);
    expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 415, errno: "EINVAL", reason: "unsupported-media-type", soft: false });
  });

  // RFC 9110: a method no route has is 501 (§15.6.2), a method the path
  // does not have is 405 (§15.5.6); both are in test/http/edge.test.ts.
  it("unknown routes → 404 no-such-route", async () => {
    for (const [method, url] of [["GET", "/v1/unit"], ["GET", "/v2/units"], ["POST", "/v1/units/1/x"], ["DELETE", "/v1/unit/1"]] as const) {
      const res = await c.app.inject({ method, url, payload: method === "GET" ? undefined : {} });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({
        type: "urn:iommu-arbiter:problem:no-such-route", status: 404, errno: "ENOENT", code: -2, soft: false,
        reason: "no-such-route", detail: `no route ${method} ${url}`,
      });
    }
  });
});
