// /v1/faults: injecting driver failures, their consumption, listing,
// clearing, and bad input.
import { beforeAll, describe, expect, it } from "vitest";
import { Fault } from "../../src/core/entities.js";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem,
  type DeviceView, type DomainView, type FaultView, type GroupView, type Method, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();
let unit: UnitView;

beforeAll(async () => {
  unit = await c.unit({ driver: "mock" });
});

async function attachable(): Promise<{ group: GroupView; device: DeviceView; domain: DomainView }> {
  const { group, devices } = await c.groupWith(unit.id);
  const domain = await c.domain({ unitId: unit.id });
  return { group, device: devices[0]!, domain };
}

describe("POST /v1/faults", () => {
  it("injects a unit fault; count defaults to 1; answers 201", async () => {
    const res = await c.post<FaultView>("/v1/faults", { unitId: unit.id, errno: "ENOMEM" });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ ...Fault.make({ id: expect.any(Number), unitId: unit.id, deviceId: null, errno: "ENOMEM", remaining: 1 }), version: expect.any(String) });
    expect(await c.faults()).toContainEqual(res.body);
    expect((await c.del(`/v1/faults/${res.body.id}`)).status).toBe(204);
  });

  it("injects a device fault with a count", async () => {
    const { device } = await attachable();
    const f = await c.fault({ deviceId: device.id, errno: "EIO", count: 3 });
    expect(f).toMatchObject({ unitId: null, deviceId: device.id, errno: "EIO", remaining: 3 });
    expect((await c.del(`/v1/faults/${f.id}`)).status).toBe(204);
  });

  it.each([
    { what: "neither unitId nor deviceId", body: () => ({ errno: "EIO" }) },
    { what: "both unitId and deviceId", body: () => ({ errno: "EIO", unitId: unit.id, deviceId: 1 }) },
  ])("needs exactly one target: $what → 400 EINVAL invalid-argument", async ({ body }) => {
    expectProblem(await c.post("/v1/faults", body()), 400, "EINVAL", "invalid-argument", { soft: false });
  });

  it("refuses unknown units and devices with 404", async () => {
    expectProblem(await c.post("/v1/faults", { unitId: 919191, errno: "EIO" }), 404, "ENOENT", "no-such-unit", { unitId: 919191 });
    expectProblem(await c.post("/v1/faults", { deviceId: 919191, errno: "EIO" }), 404, "ENOENT", "no-such-device", { deviceId: 919191 });
  });
});

describe("consumption", () => {
  it("a fault with count 2 fails two attaches, then the third succeeds; remaining counts down", async () => {
    const { group, domain } = await attachable();
    const f = await c.fault({ unitId: unit.id, errno: "ENOSPC", count: 2 });
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 507, "ENOSPC", "injected-fault");
    expect((await c.faults()).find((x) => x.id === f.id)?.remaining).toBe(1);
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 507, "ENOSPC", "injected-fault");
    expect((await c.faults()).find((x) => x.id === f.id)).toBeUndefined();
    const ok = await c.ok<{ changed: boolean }>("POST", `/v1/groups/${group.id}/attach`, { domainId: domain.id });
    expect(ok.changed).toBe(true);
  });

  it("a device fault hits only that device's group", async () => {
    const a = await attachable();
    const b = await attachable();
    const f = await c.fault({ deviceId: a.device.id, errno: "ENOMEM" });
    await c.ok("POST", `/v1/groups/${b.group.id}/attach`, { domainId: b.domain.id });
    expect((await c.faults()).find((x) => x.id === f.id)?.remaining).toBe(1);
    expectProblem(await c.post(`/v1/groups/${a.group.id}/attach`, { domainId: a.domain.id }), 507, "ENOMEM", "injected-fault", { deviceId: a.device.id });
    expect((await c.faults()).find((x) => x.id === f.id)).toBeUndefined();
  });

  it("an attach that needs no driver call (same domain again) consumes nothing", async () => {
    const { group, domain } = await attachable();
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: domain.id });
    const f = await c.fault({ unitId: unit.id, errno: "ENOMEM" });
    expect((await c.ok<{ changed: boolean }>("POST", `/v1/groups/${group.id}/attach`, { domainId: domain.id })).changed).toBe(false);
    expect((await c.faults()).find((x) => x.id === f.id)?.remaining).toBe(1);
    expect((await c.del(`/v1/faults/${f.id}`)).status).toBe(204);
  });
});

describe("GET /v1/faults, DELETE /v1/faults, DELETE /v1/faults/:id", () => {
  it("pages through faults with after/limit/next", async () => {
    for (let i = 0; i < 5; i++) await c.fault({ unitId: unit.id, errno: "EIO", count: 100 });
    await expectPaging(c, "/v1/faults", 5);
  });

  it("DELETE /v1/faults clears them all and says how many", async () => {
    await c.fault({ unitId: unit.id, errno: "EIO" });
    const n = (await c.faults()).length;
    expect(n).toBeGreaterThan(0);
    expect(await c.ok("DELETE", "/v1/faults")).toEqual({ cleared: n });
    expect(await c.faults()).toEqual([]);
    expect(await c.ok("DELETE", "/v1/faults")).toEqual({ cleared: 0 });
  });

  it("DELETE /v1/faults/:id removes one fault (204), then 404 no-such-fault", async () => {
    const f = await c.fault({ unitId: unit.id, errno: "EIO" });
    const res = await c.del(`/v1/faults/${f.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expectProblem(await c.del(`/v1/faults/${f.id}`), 404, "ENOENT", "no-such-fault", { faultId: f.id });
  });

  it("there is no GET /v1/faults/:id: 405 method-not-allowed", async () => {
    const res = await c.get("/v1/faults/1");
    expectProblem(res, 405, "EOPNOTSUPP", "method-not-allowed");
    expect(res.headers.allow).toBe("DELETE");
  });
});

describe("bad input", () => {
  const rows: { name: string; method: Method; url: string; body?: unknown; field?: string }[] = [
    { name: "unknown errno", method: "POST", url: "/v1/faults", body: { unitId: 1, errno: "EWHATEVER" }, field: "body.errno" },
    { name: "numeric errno", method: "POST", url: "/v1/faults", body: { unitId: 1, errno: 12 }, field: "body.errno" },
    { name: "missing errno", method: "POST", url: "/v1/faults", body: { unitId: 1 }, field: "body.errno" },
    { name: "count 0", method: "POST", url: "/v1/faults", body: { unitId: 1, errno: "EIO", count: 0 }, field: "body.count" },
    { name: "count of the wrong type", method: "POST", url: "/v1/faults", body: { unitId: 1, errno: "EIO", count: "lots" }, field: "body.count" },
    { name: "count too large", method: "POST", url: "/v1/faults", body: { unitId: 1, errno: "EIO", count: 1_000_001 }, field: "body.count" },
    { name: "unitId of the wrong type", method: "POST", url: "/v1/faults", body: { unitId: "dmar0", errno: "EIO" }, field: "body.unitId" },
    { name: "unknown field", method: "POST", url: "/v1/faults", body: { unitId: 1, errno: "EIO", once: true }, field: "body.once" },
    { name: "bad id on DELETE", method: "DELETE", url: "/v1/faults/abc", field: "params.id" },
    { name: "bad list parameter", method: "GET", url: "/v1/faults?unitId=1", field: "querystring.unitId" },
  ];

  it.each(rows)("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const before = await c.faults();
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.faults()).toEqual(before);
  });

  it("malformed JSON → 400", async () => {
    expectInvalid(await c.raw("POST", "/v1/faults", '{"errno":"EIO"'));
  });
});
