// /v1/groups: create, list, get, delete, and bad input on every group route
// (the attach family is exercised for its outcomes in attach.test.ts).
import { beforeAll, describe, expect, it } from "vitest";
import { Group } from "../../src/core/entities.js";
import {
  clientForFile, expectInvalid, expectPaging, expectProblem, uniqueName,
  type DomainView, type GroupView, type Method, type MovedView, type PageView, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();
let unit: UnitView;

beforeAll(async () => {
  unit = await c.unit({ driver: "intel-vtd" });
});

describe("POST /v1/groups", () => {
  it("creates a group on a fresh default DMA domain and answers 201", async () => {
    const name = uniqueName("iommu-group");
    const res = await c.post<GroupView>("/v1/groups", { name, unitId: unit.id });
    expect(res.status).toBe(201);
    const g = res.body;
    expect(g).toEqual({
      ...Group.make({
        id: expect.any(Number), name, unitId: unit.id, domainId: g.defaultDomainId, defaultDomainId: expect.any(Number),
        blockingDomainId: null, owner: null,
      }),
      deviceIds: [], version: expect.any(String),
    });
    const dma = await c.read<DomainView>(`/v1/domains/${g.defaultDomainId}`);
    expect(dma).toMatchObject({
      id: g.defaultDomainId, type: "dma", driver: "intel-vtd", unitId: unit.id,
      auto: false, containerId: null, attachedGroupCount: 1,
    });
    expect(dma.config).toMatchObject({ addressWidth: unit.capabilities.addressWidth, pageSizes: unit.capabilities.pageSizes });
  });

  it("gives every group its own default domain", async () => {
    const a = await c.group(unit.id);
    const b = await c.group(unit.id);
    expect(a.defaultDomainId).not.toBe(b.defaultDomainId);
  });

  it("refuses an unknown unit with 404 ENOENT no-such-unit", async () => {
    expectProblem(await c.post("/v1/groups", { name: uniqueName("g"), unitId: 424242 }), 404, "ENOENT", "no-such-unit", { unitId: 424242 });
  });

  it("refuses a taken name with 409 EEXIST name-taken", async () => {
    const g = await c.group(unit.id);
    expectProblem(await c.post("/v1/groups", { name: g.name, unitId: unit.id }), 409, "EEXIST", "name-taken", { soft: false, groupId: g.id });
  });
});

describe("GET /v1/groups and /v1/groups/:id", () => {
  it("pages through groups with after/limit/next", async () => {
    for (let i = 0; i < 5; i++) await c.group(unit.id);
    await expectPaging(c, "/v1/groups", 5);
  });

  it("shows the group's devices in deviceIds, in id order", async () => {
    const g = await c.group(unit.id);
    const d1 = await c.device(g.id);
    const d2 = await c.device(g.id);
    const got = await c.read<GroupView>(`/v1/groups/${g.id}`);
    expect(got).toEqual({ ...g, deviceIds: [d1.id, d2.id], version: expect.any(String) });
    expect(got.version).not.toBe(g.version);
    const listed = await c.read<PageView<GroupView>>(`/v1/groups?after=${g.id - 1}&limit=1`);
    expect(listed.items).toEqual([got]);
  });

  it("filters by unit and by attached domain, with paging", async () => {
    const u = await c.unit({ driver: "intel-vtd" });
    const mine: number[] = [];
    for (let i = 0; i < 3; i++) mine.push((await c.groupWith(u.id)).group.id);
    expect(await expectPaging(c, `/v1/groups?unitId=${u.id}`, 3)).toEqual(mine);
    const d = await c.domain({ unitId: u.id });
    for (const id of [mine[2]!, mine[0]!]) await c.ok("POST", `/v1/groups/${id}/attach`, { domainId: d.id });
    expect(await expectPaging(c, `/v1/groups?domainId=${d.id}`, 2)).toEqual([mine[0], mine[2]]);
    expect(await c.read(`/v1/groups?domainId=${d.id}&unitId=${unit.id}`)).toEqual({ items: [], next: null });
    expect(await c.read(`/v1/groups?unitId=999999`)).toEqual({ items: [], next: null });
  });

  it("answers 404 no-such-group for an unknown id", async () => {
    expectProblem(await c.get("/v1/groups/777777"), 404, "ENOENT", "no-such-group", { groupId: 777777 });
  });
});

describe("DELETE /v1/groups/:id", () => {
  it("deletes an empty group with 204, together with its default domain", async () => {
    const g = await c.group(unit.id);
    const res = await c.del(`/v1/groups/${g.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expectProblem(await c.get(`/v1/groups/${g.id}`), 404, "ENOENT", "no-such-group");
    expectProblem(await c.get(`/v1/domains/${g.defaultDomainId}`), 404, "ENOENT", "no-such-domain");
  });

  it("deletes a released group's blocking domain too", async () => {
    const g = await c.group(unit.id);
    const claimed = await c.ok<MovedView>("POST", `/v1/groups/${g.id}/claim`, { owner: "vfio" });
    const blocking = claimed.group.blockingDomainId!;
    await c.ok("POST", `/v1/groups/${g.id}/release`, { owner: "vfio" });
    expect((await c.del(`/v1/groups/${g.id}`)).status).toBe(204);
    expectProblem(await c.get(`/v1/domains/${blocking}`), 404, "ENOENT", "no-such-domain");
  });

  it("refuses a group with devices: 409 EBUSY group-has-devices", async () => {
    const { group } = await c.groupWith(unit.id, [{}, {}]);
    expectProblem(await c.del(`/v1/groups/${group.id}`), 409, "EBUSY", "group-has-devices", { soft: false, groupId: group.id });
    expect((await c.get(`/v1/groups/${group.id}`)).status).toBe(200);
  });

  it("refuses a group attached to a paging domain: 409 EBUSY, and its last device cannot leave it there", async () => {
    const { group: g, devices: [dev] } = await c.groupWith(unit.id);
    const d = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${g.id}/attach`, { domainId: d.id });
    expectProblem(await c.del(`/v1/groups/${g.id}`), 409, "EBUSY", "group-has-devices", { groupId: g.id });
    expectProblem(await c.del(`/v1/devices/${dev!.id}`), 409, "EBUSY", "group-attached", { groupId: g.id, deviceId: dev!.id });
  });

  it("refuses an owned group: 409 EBUSY", async () => {
    const g = await c.group(unit.id);
    await c.ok("POST", `/v1/groups/${g.id}/claim`, { owner: "vfio" });
    expectProblem(await c.del(`/v1/groups/${g.id}`), 409, "EBUSY", "group-not-default", { groupId: g.id });
  });

  it("answers 404 for an unknown group", async () => {
    expectProblem(await c.del("/v1/groups/777777"), 404, "ENOENT", "no-such-group");
  });
});

describe("bad input", () => {
  const move = ["attach", "replace", "detach"] as const;
  const rows: { name: string; method: Method; url: string; body?: unknown; field?: string }[] = [
    { name: "unitId of the wrong type", method: "POST", url: "/v1/groups", body: { name: "g-x", unitId: "first" }, field: "body.unitId" },
    { name: "name of the wrong type", method: "POST", url: "/v1/groups", body: { name: { first: "g" }, unitId: 1 }, field: "body.name" },
    { name: "missing unitId", method: "POST", url: "/v1/groups", body: { name: "g-x" }, field: "body.unitId" },
    { name: "missing name", method: "POST", url: "/v1/groups", body: { unitId: 1 }, field: "body.name" },
    { name: "unknown field", method: "POST", url: "/v1/groups", body: { name: "g-x", unitId: 1, domainId: 3 }, field: "body.domainId" },
    { name: "unitId 0", method: "POST", url: "/v1/groups", body: { name: "g-x", unitId: 0 }, field: "body.unitId" },
    { name: "bad id on GET", method: "GET", url: "/v1/groups/abc", field: "params.id" },
    { name: "fractional id on GET", method: "GET", url: "/v1/groups/1.5", field: "params.id" },
    { name: "bad id on DELETE", method: "DELETE", url: "/v1/groups/abc", field: "params.id" },
    { name: "bad list limit", method: "GET", url: "/v1/groups?limit=x", field: "querystring.limit" },
    { name: "unknown list parameter", method: "GET", url: "/v1/groups?owner=vfio", field: "querystring.owner" },
    { name: "domainId filter of the wrong type", method: "GET", url: "/v1/groups?domainId=abc", field: "querystring.domainId" },
    { name: "unitId filter 0", method: "GET", url: "/v1/groups?unitId=0", field: "querystring.unitId" },
    ...move.flatMap((op) => [
      { name: `${op}: bad id`, method: "POST" as const, url: `/v1/groups/abc/${op}`, body: { domainId: 1 }, field: "params.id" },
      { name: `${op}: missing domainId`, method: "POST" as const, url: `/v1/groups/1/${op}`, body: {}, field: "body.domainId" },
      { name: `${op}: domainId of the wrong type`, method: "POST" as const, url: `/v1/groups/1/${op}`, body: { domainId: "three" }, field: "body.domainId" },
      { name: `${op}: unknown field`, method: "POST" as const, url: `/v1/groups/1/${op}`, body: { domainId: 1, force: true }, field: "body.force" },
      { name: `${op}: empty owner`, method: "POST" as const, url: `/v1/groups/1/${op}`, body: { domainId: 1, owner: "" }, field: "body.owner" },
    ]),
    { name: "claim: missing owner", method: "POST", url: "/v1/groups/1/claim", body: {}, field: "body.owner" },
    { name: "claim: owner of the wrong type", method: "POST", url: "/v1/groups/1/claim", body: { owner: { id: 1 } }, field: "body.owner" },
    { name: "claim: unknown field", method: "POST", url: "/v1/groups/1/claim", body: { owner: "vfio", domainId: 1 }, field: "body.domainId" },
    { name: "claim: bad id", method: "POST", url: "/v1/groups/abc/claim", body: { owner: "vfio" }, field: "params.id" },
    { name: "release: missing owner", method: "POST", url: "/v1/groups/1/release", body: {}, field: "body.owner" },
    { name: "release: bad id", method: "POST", url: "/v1/groups/x/release", body: { owner: "vfio" }, field: "params.id" },
    { name: "compatibility: bad id", method: "GET", url: "/v1/groups/abc/compatibility", field: "params.id" },
    { name: "compatibility: bad containerId", method: "GET", url: "/v1/groups/1/compatibility?containerId=abc", field: "querystring.containerId" },
    { name: "compatibility: unknown parameter", method: "GET", url: "/v1/groups/1/compatibility?driver=mock", field: "querystring.driver" },
    { name: "compatibility: limit 0", method: "GET", url: "/v1/groups/1/compatibility?limit=0", field: "querystring.limit" },
  ];

  it.each(rows)("$name → 400 naming $field", async ({ method, url, body, field }) => {
    const seq = await c.lastSeq();
    expectInvalid(await c.send(method, url, body), field);
    // A request the schema refused is no attempt: nothing is logged.
    expect(await c.lastSeq()).toBe(seq);
  });

  it.each(["/v1/groups", "/v1/groups/1/attach", "/v1/groups/1/replace", "/v1/groups/1/detach", "/v1/groups/1/claim", "/v1/groups/1/release"])(
    "malformed JSON on POST %s → 400", async (url) => {
      expectInvalid(await c.raw("POST", url, "{oops"));
    });

  it("there is no PATCH for groups: 405 method-not-allowed", async () => {
    const res = await c.patch("/v1/groups/1", { name: "x" });
    expectProblem(res, 405, "EOPNOTSUPP", "method-not-allowed");
    expect(res.headers.allow).toBe("DELETE, GET, HEAD");
  });
});
