// Identities and roles with a token table: every route answers 401 without a
// valid token and 403 forbidden-role below its declared role; clients act
// only on their own (or unclaimed / unowned) groups, domains and containers;
// the token, not the body, names the caller.
import { beforeAll, describe, expect, it } from "vitest";
import { authAppForFile, IDENTITIES, type Who } from "../helpers/auth.js";
import {
  expectInvalid, expectProblem, uniqueName,
  type ContainerView, type DomainView, type EventView, type GroupView, type Method, type MovedView, type PageView, type Res, type UnitView,
} from "../helpers/http.js";

const f = authAppForFile();
const admin = f.as.admin;

type Need = "public" | "reader" | "client" | "admin";
interface Route { method: Method; url: string; need: Need; body?: unknown }

// Every route of the service and the least role it needs. Ids that do not
// exist are fine: authentication and roles are decided before anything else.
const ROUTES: Route[] = [
  { method: "GET", url: "/healthz", need: "public" },
  { method: "GET", url: "/v1/stats", need: "reader" },
  { method: "GET", url: "/v1/host", need: "reader" },
  { method: "PATCH", url: "/v1/host", need: "admin", body: { kernelProfile: "6.5+" } },
  { method: "GET", url: "/v1/events", need: "reader" },
  { method: "GET", url: "/v1/units", need: "reader" },
  { method: "GET", url: "/v1/units/9999", need: "reader" },
  { method: "POST", url: "/v1/units", need: "admin", body: { name: "matrix-unit", driver: "mock" } },
  { method: "PATCH", url: "/v1/units/9999", need: "admin", body: { online: false } },
  { method: "DELETE", url: "/v1/units/9999", need: "admin" },
  { method: "GET", url: "/v1/groups", need: "reader" },
  { method: "GET", url: "/v1/groups/9999", need: "reader" },
  { method: "GET", url: "/v1/groups/9999/compatibility", need: "reader" },
  { method: "POST", url: "/v1/groups", need: "admin", body: { name: "matrix-group", unitId: 9999 } },
  { method: "DELETE", url: "/v1/groups/9999", need: "admin" },
  { method: "POST", url: "/v1/groups/9999/attach", need: "client", body: { domainId: 9999 } },
  { method: "POST", url: "/v1/groups/9999/replace", need: "client", body: { domainId: 9999 } },
  { method: "POST", url: "/v1/groups/9999/detach", need: "client", body: { domainId: 9999 } },
  { method: "POST", url: "/v1/groups/9999/claim", need: "client", body: {} },
  { method: "POST", url: "/v1/groups/9999/release", need: "client", body: {} },
  { method: "GET", url: "/v1/devices", need: "reader" },
  { method: "GET", url: "/v1/devices/9999", need: "reader" },
  { method: "POST", url: "/v1/devices", need: "admin", body: { name: "matrix-dev", groupId: 9999 } },
  { method: "PATCH", url: "/v1/devices/9999", need: "admin", body: { faulty: true } },
  { method: "DELETE", url: "/v1/devices/9999", need: "admin" },
  { method: "POST", url: "/v1/devices/9999/attach", need: "client", body: { domainId: 9999 } },
  { method: "POST", url: "/v1/devices/9999/detach", need: "client", body: { domainId: 9999 } },
  { method: "POST", url: "/v1/devices/9999/bind", need: "admin", body: { hostDriver: "nvme" } },
  { method: "POST", url: "/v1/devices/9999/unbind", need: "admin", body: {} },
  { method: "GET", url: "/v1/devices/9999/pasids", need: "reader" },
  { method: "POST", url: "/v1/devices/9999/pasids", need: "client", body: { pasid: 1, domainId: 9999 } },
  { method: "DELETE", url: "/v1/devices/9999/pasids/1", need: "client" },
  { method: "GET", url: "/v1/devices/9999/iommufd", need: "reader" },
  { method: "POST", url: "/v1/devices/9999/iommufd", need: "client", body: {} },
  { method: "DELETE", url: "/v1/devices/9999/iommufd", need: "client" },
  { method: "POST", url: "/v1/devices/9999/iommufd/attach", need: "client", body: { domainId: 9999 } },
  { method: "POST", url: "/v1/devices/9999/iommufd/replace", need: "client", body: { containerId: 9999 } },
  { method: "POST", url: "/v1/devices/9999/iommufd/detach", need: "client", body: {} },
  { method: "GET", url: "/v1/domains", need: "reader" },
  { method: "GET", url: "/v1/domains/9999", need: "reader" },
  { method: "POST", url: "/v1/domains", need: "client", body: { type: "paging", unitId: 9999 } },
  { method: "DELETE", url: "/v1/domains/9999", need: "client" },
  { method: "GET", url: "/v1/containers", need: "reader" },
  { method: "GET", url: "/v1/containers/9999", need: "reader" },
  { method: "POST", url: "/v1/containers", need: "client", body: { name: "matrix-ioas" } },
  { method: "DELETE", url: "/v1/containers/9999", need: "client" },
  { method: "POST", url: "/v1/containers/9999/attach", need: "client", body: { groupId: 9999 } },
  { method: "POST", url: "/v1/containers/9999/detach", need: "client", body: { groupId: 9999 } },
  { method: "GET", url: "/v1/containers/9999/mappings", need: "reader" },
  { method: "GET", url: "/v1/containers/9999/mappings/9999", need: "reader" },
  { method: "POST", url: "/v1/containers/9999/mappings", need: "client", body: { length: 4096 } },
  { method: "DELETE", url: "/v1/containers/9999/mappings/9999", need: "client" },
  { method: "POST", url: "/v1/containers/9999/unmap", need: "client", body: {} },
  { method: "GET", url: "/v1/devices/9999/reserved-regions", need: "reader" },
  { method: "GET", url: "/v1/devices/9999/reserved-regions/9999", need: "reader" },
  { method: "POST", url: "/v1/devices/9999/reserved-regions", need: "admin", body: { start: 0, length: 4096, type: "msi" } },
  { method: "DELETE", url: "/v1/devices/9999/reserved-regions/9999", need: "admin" },
  { method: "GET", url: "/v1/faults", need: "reader" },
  { method: "POST", url: "/v1/faults", need: "admin", body: { unitId: 9999, errno: "EIO" } },
  { method: "DELETE", url: "/v1/faults", need: "admin" },
  { method: "DELETE", url: "/v1/faults/9999", need: "admin" },
];

const RANK: Record<Need, number> = { public: -1, reader: 0, client: 1, admin: 2 };
const ROLE_OF: Record<Who, Need> = { reader: "reader", a: "client", b: "client", admin: "admin" };

function expectUnauthenticated(res: Res<unknown>, invalid: boolean): void {
  expectProblem(res, 401, "EACCES", "unauthenticated");
  expect(String(res.headers["www-authenticate"])).toMatch(/^Bearer realm="iommu-arbiter"/);
  expect(String(res.headers["www-authenticate"]).includes('error="invalid_token"')).toBe(invalid);
}

/** Let through: whatever the route then answers, it is not an authentication or role refusal. */
function expectLetThrough(res: Res<unknown>): void {
  expect(res.status, res.text).not.toBe(401);
  if (res.status === 403) expect((res.body as { reason: string }).reason, res.text).not.toBe("forbidden-role");
}

describe("role × route matrix", () => {
  describe.each(ROUTES)("$method $url (needs $need)", (route) => {
    it("no token: 401 with WWW-Authenticate: Bearer (public routes answer)", async () => {
      const res = await f.anonymous.send(route.method, route.url, route.body);
      if (route.need === "public") expect(res.status).toBe(200);
      else expectUnauthenticated(res, false);
    });

    it("a token nobody was given, or a malformed header: 401", async () => {
      if (route.need === "public") return;
      expectUnauthenticated(await f.withHeader("Bearer not-a-token").send(route.method, route.url, route.body), true);
      expectUnauthenticated(await f.withHeader(`Basic ${f.tokens.admin}`).send(route.method, route.url, route.body), false);
      // A digest from the token file is not a token.
      expectUnauthenticated(await f.withHeader(`Bearer ${f.digests.admin}`).send(route.method, route.url, route.body), true);
    });

    it.each(["reader", "a", "admin"] as const)("as %s", async (who) => {
      const res = await f.as[who].send(route.method, route.url, route.body);
      if (RANK[ROLE_OF[who]] >= RANK[route.need]) expectLetThrough(res);
      else {
        const body = expectProblem(res, 403, "EPERM", "forbidden-role");
        expect(body.detail).toContain(IDENTITIES[who]);
        expect(body.detail).toContain(`needs the ${route.need} role`);
      }
    });
  });
});

describe("ownership binds to the token", () => {
  let unit: UnitView;
  beforeAll(async () => {
    unit = await admin.unit({ driver: "intel-vtd" });
  });

  async function groupWithDevice(): Promise<{ group: GroupView; deviceId: number }> {
    const { group, devices } = await admin.groupWith(unit.id);
    return { group, deviceId: devices[0]!.id };
  }

  it("a claim takes the group for the token's client; groups and events show the client's name, never a token or digest", async () => {
    const { group } = await groupWithDevice();
    const claimed = await f.as.a.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, {});
    expect(claimed.group.owner).toBe("vmm-a");
    const listed = await f.as.reader.send<PageView<GroupView>>("GET", "/v1/groups?limit=1000");
    expect(listed.body.items.find((g) => g.id === group.id)!.owner).toBe("vmm-a");
    const events = await f.as.reader.send<{ items: EventView[] }>("GET", "/v1/events?limit=1000");
    expect(events.body.items.filter((e) => e.groupId === group.id)).toEqual([expect.objectContaining({ op: "claim", owner: "vmm-a", errno: null })]);
    for (const text of [listed.text, events.text]) {
      for (const who of Object.keys(IDENTITIES) as Who[]) {
        expect(text).not.toContain(f.tokens[who]);
        expect(text).not.toContain(f.digests[who]);
      }
    }
  });

  it.each([
    ["attach", (g: number) => `/v1/groups/${g}/attach`, { domainId: 1, owner: "vmm-b" }],
    ["claim", (g: number) => `/v1/groups/${g}/claim`, { owner: "vmm-a" }],
    ["release", (g: number) => `/v1/groups/${g}/release`, { owner: "vmm-a" }],
    ["container attach", () => "/v1/containers/1/attach", { groupId: 1, owner: "vmm-a" }],
  ] as const)("a body owner is refused on %s: 400 naming body.owner, the token decides", async (_op, url, body) => {
    const { group } = await groupWithDevice();
    const problem = expectInvalid(await f.as.a.post(url(group.id), body), "body.owner");
    expect(problem.detail).toMatch(/token decides/);
    expect((await admin.groupNow(group.id)).owner).toBeNull();
  });

  it("another client cannot move, release or re-claim a claimed group: 403 EPERM owned-by-other", async () => {
    const { group, deviceId } = await groupWithDevice();
    const claimed = await f.as.a.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, {});
    const target = await admin.domain({ unitId: unit.id });
    const b = f.as.b;
    const refusals = [
      await b.post(`/v1/groups/${group.id}/attach`, { domainId: target.id }),
      await b.post(`/v1/groups/${group.id}/replace`, { domainId: target.id }),
      await b.post(`/v1/groups/${group.id}/detach`, { domainId: claimed.domain.id }),
      await b.post(`/v1/groups/${group.id}/release`, {}),
      await b.post(`/v1/groups/${group.id}/claim`, {}),
      await b.post(`/v1/devices/${deviceId}/attach`, { domainId: target.id }),
      await b.post(`/v1/devices/${deviceId}/detach`, { domainId: claimed.domain.id }),
    ];
    for (const res of refusals) expectProblem(res, 403, "EPERM", "owned-by-other", { groupId: group.id });
    expect((await admin.groupNow(group.id))).toMatchObject({ owner: "vmm-a", domainId: claimed.domain.id });
    // The owner drives it; an administrator may act on any group and release any claim.
    expect((await f.as.a.ok<MovedView>("POST", `/v1/groups/${group.id}/replace`, { domainId: target.id })).group.domainId).toBe(target.id);
    expect((await admin.ok<MovedView>("POST", `/v1/groups/${group.id}/replace`, { domainId: claimed.domain.id })).changed).toBe(true);
    const released = await admin.ok<MovedView>("POST", `/v1/groups/${group.id}/release`, {});
    expect(released.group).toMatchObject({ owner: null, domainId: group.defaultDomainId });
  });

  it("an unclaimed group is any client's to move", async () => {
    const { group } = await groupWithDevice();
    const shared = await admin.domain({ unitId: unit.id });
    expect(shared.owner).toBeNull();
    expect((await f.as.b.ok<MovedView>("POST", `/v1/groups/${group.id}/attach`, { domainId: shared.id })).group.domainId).toBe(shared.id);
    await f.as.b.ok("POST", `/v1/groups/${group.id}/detach`, { domainId: shared.id });
  });

  it("a client's domains and containers record it; another client cannot use, fill or delete them: 403 EPERM", async () => {
    const domain = await f.as.a.domain({ unitId: unit.id });
    const ioas = await f.as.a.container({}, uniqueName("ioas-a"));
    expect(domain.owner).toBe("vmm-a");
    expect(ioas.owner).toBe("vmm-a");
    expect((await f.as.reader.read<ContainerView>(`/v1/containers/${ioas.id}`)).owner).toBe("vmm-a");
    const { group } = await groupWithDevice();
    const b = f.as.b;
    expectProblem(await b.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 403, "EPERM", "owned-by-other", { domainId: domain.id });
    expectProblem(await b.post(`/v1/containers/${ioas.id}/attach`, { groupId: group.id }), 403, "EPERM", "owned-by-other", { containerId: ioas.id });
    expectProblem(await b.post(`/v1/containers/${ioas.id}/detach`, { groupId: group.id }), 403, "EPERM", "owned-by-other", { containerId: ioas.id });
    expectProblem(await b.post("/v1/domains", { type: "paging", unitId: unit.id, containerId: ioas.id }), 403, "EPERM", "owned-by-other", { containerId: ioas.id });
    expectProblem(await b.del(`/v1/domains/${domain.id}`), 403, "EPERM", "owned-by-other", { domainId: domain.id });
    expectProblem(await b.del(`/v1/containers/${ioas.id}`), 403, "EPERM", "owned-by-other", { containerId: ioas.id });
    expect((await admin.groupNow(group.id)).domainId).toBe(group.defaultDomainId);

    // The creator may; the automatic domain its container allocates is its too.
    const placed = await f.as.a.ok<{ domain: DomainView }>("POST", `/v1/containers/${ioas.id}/attach`, { groupId: group.id });
    expect(placed.domain).toMatchObject({ auto: true, containerId: ioas.id, owner: "vmm-a" });
    expectProblem(await b.post(`/v1/groups/${group.id}/replace`, { domainId: placed.domain.id }), 403, "EPERM", "owned-by-other");
    await f.as.a.ok("POST", `/v1/containers/${ioas.id}/detach`, { groupId: group.id });
    expect(await f.as.a.send("DELETE", `/v1/domains/${domain.id}`)).toMatchObject({ status: 204 });
    expect(await f.as.a.send("DELETE", `/v1/containers/${ioas.id}`)).toMatchObject({ status: 204 });
  });

  it("an administrator's containers and domains are unowned: every client may use them; an administrator may remove a client's", async () => {
    const ioas = await admin.container({}, uniqueName("ioas-admin"));
    expect(ioas.owner).toBeNull();
    const { group } = await groupWithDevice();
    const placed = await f.as.b.ok<{ domain: DomainView }>("POST", `/v1/containers/${ioas.id}/attach`, { groupId: group.id });
    expect(placed.domain.owner).toBeNull();
    await f.as.b.ok("POST", `/v1/containers/${ioas.id}/detach`, { groupId: group.id });
    const hers = await f.as.a.domain({ unitId: unit.id });
    expect(await admin.send("DELETE", `/v1/domains/${hers.id}`)).toMatchObject({ status: 204 });
  });

  it("a reader can read everything but write nothing", async () => {
    const { group } = await groupWithDevice();
    expect((await f.as.reader.read<GroupView>(`/v1/groups/${group.id}`)).id).toBe(group.id);
    expectProblem(await f.as.reader.post(`/v1/groups/${group.id}/claim`, {}), 403, "EPERM", "forbidden-role");
    expect((await admin.groupNow(group.id)).owner).toBeNull();
  });
});
