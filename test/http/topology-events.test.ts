// Every write route that changes the topology logs exactly one event per
// object it created, changed or deleted: op create / update / delete, the
// object's kind and id, the owner of a client's domain or container, no
// subject (group, device, domain, container) and no errno. A refused write
// logs nothing, and neither does a topology file refused midway.
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { applyTopologyCommand, TopologyConflictError } from "../../src/startup/topology.js";
import type { TopologyFile } from "../../src/http/schemas/topology.js";
import { SqliteStore } from "../../src/store/store.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { authAppForFile, IDENTITIES, type TokenClient, type Who } from "../helpers/auth.js";
import type { ContainerView, DomainView, EventView, FaultView, GroupView, UnitView } from "../helpers/http.js";

const auth = authAppForFile();
const admin = auth.as.admin;
const { a } = auth.as;

type Change = [op: "create" | "update" | "delete", kind: string, objectId: number, owner: string | null];

/** The event a topology change must be, all of it but seq and time. */
const changed = ([op, kind, objectId, owner]: Change) => ({
  op, kind, objectId, owner, groupId: null, deviceId: null, domainId: null, containerId: null,
  errno: null, code: 0, soft: false, reason: null, detail: null,
});
const withoutStamp = (events: EventView[]) => events.map(({ seq: _s, at: _a, ...rest }) => rest);

interface Row {
  name: string;
  who?: Who;
  /** Makes what the request needs (not logged as part of the row); answers the request and the changes it must log. */
  arrange: () => Promise<{ method: "POST" | "PATCH" | "DELETE"; url: string; body?: unknown; status: number; changes: (answer: unknown) => Change[] }>;
}

const unit = () => admin.unit({ driver: "intel-vtd" });
const idOf = (answer: unknown) => (answer as { id: number }).id;

const ROWS: Row[] = [
  { name: "POST /v1/units", arrange: async () => ({
    method: "POST", url: "/v1/units", body: { name: "u-new", driver: "mock" }, status: 201, changes: (u) => [["create", "unit", idOf(u), null]],
  }) },
  { name: "PATCH /v1/units/:id", arrange: async () => {
    const u = await unit();
    return { method: "PATCH", url: `/v1/units/${u.id}`, body: { online: false }, status: 200, changes: () => [["update", "unit", u.id, null]] };
  } },
  { name: "DELETE /v1/units/:id", arrange: async () => {
    const u = await unit();
    return { method: "DELETE", url: `/v1/units/${u.id}`, status: 204, changes: () => [["delete", "unit", u.id, null]] };
  } },
  { name: "POST /v1/groups", arrange: async () => {
    const u = await unit();
    return { method: "POST", url: "/v1/groups", body: { name: "g-new", unitId: u.id }, status: 201, changes: (g) => [["create", "group", idOf(g), null]] };
  } },
  { name: "DELETE /v1/groups/:id", arrange: async () => {
    const g: GroupView = await admin.group((await unit()).id);
    return { method: "DELETE", url: `/v1/groups/${g.id}`, status: 204, changes: () => [["delete", "group", g.id, null]] };
  } },
  { name: "POST /v1/devices", arrange: async () => {
    const g: GroupView = await admin.group((await unit()).id);
    return { method: "POST", url: "/v1/devices", body: { name: "d-new", groupId: g.id }, status: 201, changes: (d) => [["create", "device", idOf(d), null]] };
  } },
  { name: "PATCH /v1/devices/:id", arrange: async () => {
    const { devices: [d] } = await admin.groupWith((await unit()).id);
    return { method: "PATCH", url: `/v1/devices/${d!.id}`, body: { faulty: true }, status: 200, changes: () => [["update", "device", d!.id, null]] };
  } },
  { name: "DELETE /v1/devices/:id", arrange: async () => {
    const { devices: [d] } = await admin.groupWith((await unit()).id);
    return { method: "DELETE", url: `/v1/devices/${d!.id}`, status: 204, changes: () => [["delete", "device", d!.id, null]] };
  } },
  { name: "POST /v1/domains (an administrator's: no owner)", arrange: async () => {
    const u = await unit();
    return { method: "POST", url: "/v1/domains", body: { type: "paging", unitId: u.id }, status: 201, changes: (d) => [["create", "domain", idOf(d), null]] };
  } },
  { name: "POST /v1/domains (a client's: its owner)", who: "a", arrange: async () => {
    const u = await unit();
    return { method: "POST", url: "/v1/domains", body: { type: "paging", unitId: u.id }, status: 201, changes: (d) => [["create", "domain", idOf(d), IDENTITIES.a]] };
  } },
  { name: "DELETE /v1/domains/:id (a client's)", who: "a", arrange: async () => {
    const d: DomainView = await a.domain({ unitId: (await unit()).id });
    return { method: "DELETE", url: `/v1/domains/${d.id}`, status: 204, changes: () => [["delete", "domain", d.id, IDENTITIES.a]] };
  } },
  { name: "POST /v1/domains, a driver's static identity domain, the first time", arrange: async () => ({
    method: "POST", url: "/v1/domains", body: { type: "identity", driver: "intel-vtd" }, status: 201, changes: (d) => [["create", "domain", idOf(d), null]],
  }) },
  { name: "POST /v1/domains, the same static identity domain asked again: nothing created, nothing logged", arrange: async () => ({
    method: "POST", url: "/v1/domains", body: { type: "identity", driver: "intel-vtd" }, status: 200, changes: () => [],
  }) },
  { name: "POST /v1/containers (a client's)", who: "a", arrange: async () => ({
    method: "POST", url: "/v1/containers", body: { name: "ioas-new" }, status: 201, changes: (ct) => [["create", "container", idOf(ct), IDENTITIES.a]],
  }) },
  { name: "DELETE /v1/containers/:id (a client's)", who: "a", arrange: async () => {
    const ct: ContainerView = await a.container();
    return { method: "DELETE", url: `/v1/containers/${ct.id}`, status: 204, changes: () => [["delete", "container", ct.id, IDENTITIES.a]] };
  } },
  { name: "POST /v1/faults", arrange: async () => {
    const u = await unit();
    return { method: "POST", url: "/v1/faults", body: { unitId: u.id, errno: "EIO", count: 1 }, status: 201, changes: (f) => [["create", "fault", idOf(f), null]] };
  } },
  { name: "DELETE /v1/faults/:id", arrange: async () => {
    const f: FaultView = await admin.fault({ unitId: (await unit()).id, errno: "EIO" });
    return { method: "DELETE", url: `/v1/faults/${f.id}`, status: 204, changes: () => [["delete", "fault", f.id, null]] };
  } },
  { name: "DELETE /v1/faults (clear: one delete per fault, in id order)", arrange: async () => {
    const u = await unit();
    const ids = (await admin.faults()).map((f) => f.id);
    for (let i = 0; i < 2; i++) ids.push((await admin.fault({ unitId: u.id, errno: "EIO" })).id);
    return { method: "DELETE", url: "/v1/faults", status: 200, changes: () => ids.sort((x, y) => x - y).map((id): Change => ["delete", "fault", id, null]) };
  } },
  { name: "PATCH /v1/host", arrange: async () => ({
    method: "PATCH", url: "/v1/host", body: { kernelProfile: "6.2" }, status: 200, changes: (h) => [["update", "host", idOf(h), null]],
  }) },
];

describe("topology events, one row per write route", () => {
  it.each(ROWS)("$name", async (row) => {
    const client: TokenClient = auth.as[row.who ?? "admin"];
    const request = await row.arrange();
    const before = await admin.lastSeq();
    const res = await client.send(request.method, request.url, request.body);
    expect(res.status, res.text).toBe(request.status);
    const events = await admin.events(before);
    expect(withoutStamp(events)).toEqual(request.changes(res.body).map(changed));
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => before + 1 + i));
  });

  it("PATCH /v1/host answers the host's one id", async () => {
    const host = await admin.ok<{ id: number }>("PATCH", "/v1/host", { kernelProfile: "6.5+" });
    expect(host.id).toBe(1);
  });
});

describe("refused topology changes log nothing", () => {
  it.each<[string, () => Promise<[string, string, unknown]>, number]>([
    ["a unit under a name already taken", async () => {
      const u: UnitView = await unit();
      return ["POST", "/v1/units", { name: u.name, driver: "mock" }];
    }, 409],
    ["a group on a unit that does not exist", async () => ["POST", "/v1/groups", { name: "g-orphan", unitId: 987654 }], 404],
    ["a device in a group that does not exist", async () => ["POST", "/v1/devices", { name: "d-orphan", groupId: 987654 }], 404],
    ["deleting a unit that still has a group", async () => {
      const g: GroupView = await admin.group((await unit()).id);
      return ["DELETE", `/v1/units/${g.unitId}`, undefined];
    }, 409],
    ["deleting another client's container", async () => ["DELETE", `/v1/containers/${(await auth.as.b.container()).id}`, undefined], 403],
    ["deleting a fault that does not exist", async () => ["DELETE", "/v1/faults/987654", undefined], 404],
    ["patching a device that does not exist", async () => ["PATCH", "/v1/devices/987654", { faulty: true }], 404],
  ])("%s", async (_name, arrange, status) => {
    const [method, url, body] = await arrange();
    const before = await admin.lastSeq();
    const res = await (url.startsWith("/v1/containers") ? a : admin).send(method as "POST" | "PATCH" | "DELETE", url, body);
    expect(res.status, res.text).toBe(status);
    expect(await admin.events(before)).toEqual([]);
  });
});

describe("a topology file refused midway", () => {
  it("logs none of the creates it made before the conflict; applied again without it, it logs each create", async () => {
    const { dir, file } = tempDbFile();
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
    try {
      const failing: TopologyFile = {
        units: [{ name: "dmar0", driver: "intel-vtd" }],
        groups: [{ name: "g0", unit: "dmar0", devices: [{ name: "d0" }] }, { name: "g9", unit: "dmar9" }],
        containers: [{ name: "vm" }],
      };
      await expect(applyTopologyCommand(store, "failing.json", failing, file, () => undefined)).rejects.toBeInstanceOf(TopologyConflictError);
      expect(await store.events(0, 100)).toEqual([]);
      expect(await store.read((m) => m.count("unit") + m.count("group") + m.count("device") + m.count("container"))).toBe(0);

      const fixed: TopologyFile = { ...failing, groups: failing.groups!.slice(0, 1) };
      await applyTopologyCommand(store, "fixed.json", fixed, file, () => undefined);
      const ids = await store.read((m) => ({
        unit: m.idByName("unit", "dmar0"), group: m.idByName("group", "g0"), device: m.idByName("device", "d0"), container: m.idByName("container", "vm"),
      }));
      expect((await store.events(0, 100)).map((e) => [e.seq, e.op, e.kind, e.objectId])).toEqual([
        [1, "create", "unit", ids.unit], [2, "create", "group", ids.group], [3, "create", "device", ids.device], [4, "create", "container", ids.container],
      ]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
