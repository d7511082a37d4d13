// Versions and If-Match: every resource carries a version, sent as its ETag;
// a change guarded by If-Match happens only while the target is still at
// that version, judged in the same step as the change.
import { describe, expect, it } from "vitest";
import { makeTestApp } from "../helpers/app.js";
import {
  clientForFile, expectProblem, uniqueName,
  type ContainerView, type DeviceView, type DomainView, type GroupView, type Method, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();
const tag = (version: string) => `"${version}"`;

describe("versions and ETags", () => {
  it.each([
    { kind: "units", make: () => c.unit({ driver: "mock" }) },
    { kind: "groups", make: async () => (await c.groupWith((await c.unit({ driver: "mock" })).id)).group },
    { kind: "devices", make: async () => (await c.groupWith((await c.unit({ driver: "mock" })).id)).devices[0]! },
    { kind: "domains", make: () => c.domain({ driver: "mock" }) },
    { kind: "containers", make: () => c.container() },
  ])("$kind: created and read with ETag = the strong tag of its version", async ({ kind, make }) => {
    const made = await make();
    const res = await c.get<{ version: string }>(`/v1/${kind}/${made.id}`);
    expect(res.body.version).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(res.headers.etag).toBe(tag(res.body.version));
    const listed = await c.read<{ items: { id: number; version: string }[] }>(`/v1/${kind}?after=${made.id - 1}&limit=1`);
    expect(listed.items[0]!.version).toBe(res.body.version);
  });

  it("a create answers with the new resource's ETag", async () => {
    const res = await c.post<UnitView>("/v1/units", { name: uniqueName("u"), driver: "mock" });
    expect(res.status).toBe(201);
    expect(res.headers.etag).toBe(tag(res.body.version));
  });

  it("changes with the representation, and If-Match with the current ETag succeeds", async () => {
    const u = await c.unit({ driver: "mock" });
    const read = await c.get<UnitView>(`/v1/units/${u.id}`);
    const patched = await c.send<UnitView>("PATCH", `/v1/units/${u.id}`, { online: false }, { "if-match": String(read.headers.etag) });
    expect(patched.status).toBe(200);
    expect(patched.headers.etag).toBe(tag(patched.body.version));
    expect(patched.body.version).not.toBe(u.version);
    expect((await c.get(`/v1/units/${u.id}`)).headers.etag).toBe(patched.headers.etag);
    // The old tag is stale now.
    expectProblem(await c.send("PATCH", `/v1/units/${u.id}`, { online: true }, { "if-match": tag(u.version) }), 412, "ESTALE", "precondition-failed");
  });

  it("covers what the representation shows: a group's devices, a domain's attached groups, a container's domains", async () => {
    const unit = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(unit.id);
    const ct = await c.container();
    const before = { group: await c.groupNow(group.id), ct: await c.read<ContainerView>(`/v1/containers/${ct.id}`) };
    await c.device(group.id);
    const d = await c.domain({ unitId: unit.id, containerId: ct.id });
    expect((await c.groupNow(group.id)).version).not.toBe(before.group.version);
    expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).version).not.toBe(before.ct.version);
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
    expect((await c.read<DomainView>(`/v1/domains/${d.id}`)).version).not.toBe(d.version);
  });

  it("is the same after a restart-like reload of the same state (key order does not matter)", async () => {
    const u = await c.unit({ driver: "mock" });
    expect((await c.read<UnitView>(`/v1/units/${u.id}`)).version).toBe(u.version);
  });
});

// ---- If-Match on every guarded operation ---------------------------------------

interface Guarded {
  method: Method;
  url: string;
  body?: unknown;
  /** The target's version now. */
  current(): Promise<string>;
  /** A version the target had before its last change. */
  stale: string;
  /** The status when the precondition holds. */
  status: number;
}

async function unitWithGroup() {
  const unit = await c.unit({ driver: "mock" });
  const { group, devices } = await c.groupWith(unit.id);
  return { unit, group, device: devices[0]! };
}
const groupVersion = (id: number) => async () => (await c.groupNow(id)).version;
/** Change a group (a second device) and return the version it had before. */
async function staleGroup(id: number): Promise<string> {
  const before = (await c.groupNow(id)).version;
  await c.device(id);
  return before;
}
/** Change a group without adding a device: claim and release allocate its blocking domain. */
async function staleGroupKeepingDevices(id: number): Promise<string> {
  const before = (await c.groupNow(id)).version;
  await c.ok("POST", `/v1/groups/${id}/claim`, { owner: "toucher" });
  await c.ok("POST", `/v1/groups/${id}/release`, { owner: "toucher" });
  return before;
}

const GUARDED: { op: string; setup: () => Promise<Guarded> }[] = [
  {
    op: "PATCH unit", setup: async () => {
      const u = await c.unit({ driver: "mock" });
      await c.ok("PATCH", `/v1/units/${u.id}`, { online: false });
      return { method: "PATCH", url: `/v1/units/${u.id}`, body: { online: true }, stale: u.version, status: 200,
        current: async () => (await c.read<UnitView>(`/v1/units/${u.id}`)).version };
    },
  },
  {
    op: "PATCH device", setup: async () => {
      const { device } = await unitWithGroup();
      await c.ok("PATCH", `/v1/devices/${device.id}`, { flags: { noDirty: true } });
      return { method: "PATCH", url: `/v1/devices/${device.id}`, body: { faulty: true }, stale: device.version, status: 200,
        current: async () => (await c.read<DeviceView>(`/v1/devices/${device.id}`)).version };
    },
  },
  {
    op: "DELETE unit", setup: async () => {
      const u = await c.unit({ driver: "mock" });
      await c.ok("PATCH", `/v1/units/${u.id}`, { online: false });
      return { method: "DELETE", url: `/v1/units/${u.id}`, stale: u.version, status: 204,
        current: async () => (await c.read<UnitView>(`/v1/units/${u.id}`)).version };
    },
  },
  {
    op: "DELETE device", setup: async () => {
      const { device } = await unitWithGroup();
      await c.ok("PATCH", `/v1/devices/${device.id}`, { faulty: true });
      return { method: "DELETE", url: `/v1/devices/${device.id}`, stale: device.version, status: 204,
        current: async () => (await c.read<DeviceView>(`/v1/devices/${device.id}`)).version };
    },
  },
  {
    op: "DELETE group", setup: async () => {
      const unit = await c.unit({ driver: "mock" });
      const group = await c.group(unit.id);
      const stale = await staleGroupKeepingDevices(group.id);
      return { method: "DELETE", url: `/v1/groups/${group.id}`, stale, status: 204, current: groupVersion(group.id) };
    },
  },
  {
    op: "DELETE domain", setup: async () => {
      // A domain's representation counts the groups attached to it.
      const { unit, group } = await unitWithGroup();
      const d = await c.domain({ unitId: unit.id });
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
      const stale = (await c.read<DomainView>(`/v1/domains/${d.id}`)).version;
      await c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId: d.id });
      return { method: "DELETE", url: `/v1/domains/${d.id}`, stale, status: 204,
        current: async () => (await c.read<DomainView>(`/v1/domains/${d.id}`)).version };
    },
  },
  {
    op: "DELETE container", setup: async () => {
      const ct = await c.container();
      const d = await c.domain({ driver: "mock", containerId: ct.id });
      expect((await c.del(`/v1/domains/${d.id}`)).status).toBe(204);
      const before = (await c.read<ContainerView>(`/v1/containers/${ct.id}`)).version;
      const d2 = await c.domain({ driver: "mock", containerId: ct.id });
      expect((await c.del(`/v1/domains/${d2.id}`)).status).toBe(204);
      // Same domains again ([] both times): the version is back; use one from a different state.
      expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).version).toBe(before);
      const d3 = await c.domain({ driver: "mock", containerId: ct.id });
      const stale = (await c.read<ContainerView>(`/v1/containers/${ct.id}`)).version;
      expect((await c.del(`/v1/domains/${d3.id}`)).status).toBe(204);
      return { method: "DELETE", url: `/v1/containers/${ct.id}`, stale, status: 204,
        current: async () => (await c.read<ContainerView>(`/v1/containers/${ct.id}`)).version };
    },
  },
  {
    op: "DELETE fault", setup: async () => {
      const { unit, group } = await unitWithGroup();
      const d = await c.domain({ unitId: unit.id });
      const f = await c.fault({ unitId: unit.id, errno: "EIO", count: 2 });
      await c.expect(422, "POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
      const current = async () => (await c.faults()).find((x) => x.id === f.id)!.version;
      return { method: "DELETE", url: `/v1/faults/${f.id}`, stale: f.version, status: 204, current };
    },
  },
  ...(["attach", "replace"] as const).map((op) => ({
    op: `group ${op}`, setup: async (): Promise<Guarded> => {
      const { unit, group } = await unitWithGroup();
      const d = await c.domain({ unitId: unit.id });
      const stale = await staleGroup(group.id);
      return { method: "POST", url: `/v1/groups/${group.id}/${op}`, body: { domainId: d.id }, stale, status: 200, current: groupVersion(group.id) };
    },
  })),
  {
    op: "group detach", setup: async () => {
      const { unit, group } = await unitWithGroup();
      const d = await c.domain({ unitId: unit.id });
      const stale = (await c.groupNow(group.id)).version;
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
      return { method: "POST", url: `/v1/groups/${group.id}/detach`, body: { domainId: d.id }, stale, status: 200, current: groupVersion(group.id) };
    },
  },
  {
    op: "group claim", setup: async () => {
      const { group } = await unitWithGroup();
      const stale = await staleGroup(group.id);
      return { method: "POST", url: `/v1/groups/${group.id}/claim`, body: { owner: "vm1" }, stale, status: 200, current: groupVersion(group.id) };
    },
  },
  {
    op: "group release", setup: async () => {
      const { group } = await unitWithGroup();
      await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "vm1" });
      const stale = await staleGroup(group.id);
      return { method: "POST", url: `/v1/groups/${group.id}/release`, body: { owner: "vm1" }, stale, status: 200, current: groupVersion(group.id) };
    },
  },
  {
    op: "container attach (the group's version)", setup: async () => {
      const { group } = await unitWithGroup();
      const ct = await c.container();
      const stale = await staleGroup(group.id);
      return { method: "POST", url: `/v1/containers/${ct.id}/attach`, body: { groupId: group.id }, stale, status: 200, current: groupVersion(group.id) };
    },
  },
  {
    op: "container detach (the group's version)", setup: async () => {
      const { group } = await unitWithGroup();
      const ct = await c.container();
      const stale = (await c.groupNow(group.id)).version;
      await c.ok("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
      return { method: "POST", url: `/v1/containers/${ct.id}/detach`, body: { groupId: group.id }, stale, status: 200, current: groupVersion(group.id) };
    },
  },
  {
    op: "device attach (its group's version)", setup: async () => {
      const { unit, group, device } = await unitWithGroup();
      const d = await c.domain({ unitId: unit.id });
      const stale = await staleGroupKeepingDevices(group.id);
      return { method: "POST", url: `/v1/devices/${device.id}/attach`, body: { domainId: d.id }, stale, status: 200, current: groupVersion(group.id) };
    },
  },
];

describe("If-Match", () => {
  it.each(GUARDED)("$op: a stale or weak tag is a 412 that changes nothing; the current tag succeeds", async ({ setup }) => {
    const g = await setup();
    const current = await g.current();
    expect(g.stale).not.toBe(current);
    const before = { seq: await c.lastSeq(), version: current };
    for (const ifMatch of [tag(g.stale), `W/${tag(current)}`, `W/${tag(current)}, ${tag(g.stale)}`]) {
      const res = await c.send(g.method, g.url, g.body, { "if-match": ifMatch });
      expectProblem(res, 412, "ESTALE", "precondition-failed", { soft: false });
      expect(await c.lastSeq()).toBe(before.seq);
      expect(await g.current()).toBe(before.version);
    }
    const res = await c.send(g.method, g.url, g.body, { "if-match": `${tag(g.stale)}, ${tag(current)}` });
    expect(res.status, res.text).toBe(g.status);
  });

  it("* matches any existing resource, and no missing one", async () => {
    const u = await c.unit({ driver: "mock" });
    expect((await c.send("PATCH", `/v1/units/${u.id}`, { online: false }, { "if-match": "*" })).status).toBe(200);
    expect((await c.send("DELETE", `/v1/units/${u.id}`, undefined, { "if-match": "*" })).status).toBe(204);
    expectProblem(await c.send("DELETE", `/v1/units/${u.id}`, undefined, { "if-match": "*" }), 412, "ESTALE", "precondition-failed");
    // Without If-Match the same request is an ordinary 404.
    expectProblem(await c.del(`/v1/units/${u.id}`), 404, "ENOENT", "no-such-unit");
  });

  it("on a collection (a create), only * passes: a collection has no entity tag", async () => {
    expect((await c.send("POST", "/v1/units", { name: uniqueName("u"), driver: "mock" }, { "if-match": "*" })).status).toBe(201);
    expectProblem(await c.send("POST", "/v1/units", { name: uniqueName("u"), driver: "mock" }, { "if-match": '"AAAAAAAAAAAAAAAA"' }), 412, "ESTALE", "precondition-failed");
  });

  it.each(["nope", '"unterminated', 'W/"a" "b"', '*, "a"', ","])("a malformed If-Match %j is a 400 naming the header", async (value) => {
    const u = await c.unit({ driver: "mock" });
    const problem = expectProblem(await c.send("PATCH", `/v1/units/${u.id}`, { online: false }, { "if-match": value }), 400, "EINVAL", "invalid-request");
    expect(problem.errors?.map((e) => e.field)).toEqual(["headers.if-match"]);
    expect((await c.read<UnitView>(`/v1/units/${u.id}`)).online).toBe(true);
  });

  it("is judged before the operation: a 412 records no event even where a refusal would", async () => {
    const { unit, group } = await unitWithGroup();
    const d = await c.domain({ unitId: unit.id });
    const seq = await c.lastSeq();
    expectProblem(await c.send("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id, owner: "x" }, { "if-match": '"AAAAAAAAAAAAAAAA"' }), 412, "ESTALE", "precondition-failed");
    expect(await c.lastSeq()).toBe(seq);
    expect((await c.groupNow(group.id)).domainId).toBe(group.domainId);
  });
});

describe("concurrent writers with the same If-Match", () => {
  it("exactly one of several clients PATCHing from the same version wins; the others get 412", async () => {
    const t = await makeTestApp();
    try {
      await t.app.listen({ host: "127.0.0.1", port: 0 });
      const address = t.app.server.address();
      if (address === null || typeof address === "string") throw new Error("no port");
      const base = `http://127.0.0.1:${address.port}`;
      const post = async <T>(url: string, body: unknown): Promise<T> => {
        const res = await fetch(base + url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
        expect(res.status).toBe(201);
        return (await res.json()) as T;
      };
      const unit = await post<UnitView>("/v1/units", { name: "race-unit", driver: "mock" });
      const group = await post<GroupView>("/v1/groups", { name: "race-group", unitId: unit.id });
      // Each patch changes the device differently from where everyone started.
      const patches = [{ faulty: true }, { flags: { noDirty: true } }, { flags: { canwbs: true } }, { flags: { requiresIdentity: true } }, { faulty: true, flags: { noDirty: true } }];
      for (let round = 0; round < 3; round++) {
        const device = await post<DeviceView>("/v1/devices", { name: `race-dev-${round}`, groupId: group.id });
        const etag = (await fetch(`${base}/v1/devices/${device.id}`)).headers.get("etag")!;
        const answers = await Promise.all(patches.map(async (p) => {
          const res = await fetch(`${base}/v1/devices/${device.id}`, {
            method: "PATCH", headers: { "content-type": "application/json", "if-match": etag }, body: JSON.stringify(p),
          });
          return { status: res.status, body: (await res.json()) as DeviceView };
        }));
        expect(answers.map((a) => a.status).sort()).toEqual([200, 412, 412, 412, 412]);
        const won = answers.find((a) => a.status === 200)!;
        const now = await fetch(`${base}/v1/devices/${device.id}`);
        expect(now.headers.get("etag")).toBe(tag(won.body.version));
        expect(((await now.json()) as DeviceView).version).toBe(won.body.version);
      }
    } finally {
      await t.close();
    }
  });
});

