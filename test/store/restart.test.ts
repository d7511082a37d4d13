// State survives a restart: everything written through the API reads back
// identical from a fresh process image of the same SQLite file, the event log
// continues, and ids are never handed out twice.
import { rmSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openApp, tempDbFile } from "../helpers/app.js";
import {
  Client, expectProblem,
  type ContainerView, type DeviceView, type DomainView, type EventView, type FaultView, type GroupView,
  type MappingView, type PageView, type ReservedRegionView, type SearchView, type UnitView,
} from "../helpers/http.js";

const dirs: string[] = [];
let open: FastifyInstance | null = null;

afterEach(async () => {
  if (open) await open.close();
  open = null;
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function newFile(): string {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  return file;
}

async function boot(file: string): Promise<Client> {
  if (open) await open.close();
  open = (await openApp(file)).app;
  return new Client(open);
}

/** Everything a client can read, as plain JSON. */
async function snapshot(c: Client) {
  const list = async <T extends { id: number }>(kind: string) => (await c.read<PageView<T>>(`/v1/${kind}?limit=1000`)).items;
  const units = await list<UnitView>("units");
  const groups = await list<GroupView>("groups");
  const devices = await list<DeviceView>("devices");
  const domains = await list<DomainView>("domains");
  const containers = await list<ContainerView>("containers");
  const faults = await list<FaultView>("faults");
  const one = async (kind: string, ids: number[]) => Promise.all(ids.map((id) => c.read(`/v1/${kind}/${id}`)));
  return {
    units, groups, devices, domains, containers, faults,
    byId: {
      units: await one("units", units.map((x) => x.id)),
      groups: await one("groups", groups.map((x) => x.id)),
      devices: await one("devices", devices.map((x) => x.id)),
      domains: await one("domains", domains.map((x) => x.id)),
      containers: await one("containers", containers.map((x) => x.id)),
    },
    compatibility: await Promise.all(groups.map((g) => c.read(`/v1/groups/${g.id}/compatibility?limit=1000`))),
    onDomain: await Promise.all(domains.map((d) => c.groupsOn(d.id))),
    events: await c.events(),
    objects: (await c.read<{ objects: Record<string, number> }>("/v1/stats")).objects,
  };
}

describe("restart", () => {
  it("reads back everything identical, continues the event log, and keeps enforcing the rules", async () => {
    const file = newFile();
    let c = await boot(file);

    // Names that exercise the SQL text path: quotes, a statement terminator, unicode, newlines.
    const tricky = `O'Brien "dmar" '); DROP TABLE "Unit"; --`;
    const intel = await c.unit({ name: tricky, driver: "intel-vtd", capabilities: { snoopControl: false, domainIds: 3 } });
    const mock = await c.unit({ driver: "mock", name: "mock ✓ ünïcødé \\ back\nslash" });
    const smmu = await c.unit({ driver: "arm-smmu-v3", online: false });
    const g1 = await c.groupWith(intel.id, [{}, { requiresIdentity: false, canwbs: true }]);
    const g2 = await c.groupWith(intel.id, [{ canwbs: true }]);
    const g3 = await c.groupWith(mock.id, [{ noDirty: true }]);
    const g4 = await c.groupWith(mock.id);
    const g5 = await c.groupWith(smmu.id);
    const d1 = await c.domain({ unitId: intel.id, name: "it's d1" });
    const d2 = await c.domain({ unitId: intel.id, config: { enforceCacheCoherency: true } });
    const d3 = await c.domain({ driver: "arm-smmu-v3" });
    const ident = await c.domain({ type: "blocked", driver: "mock" });
    const ct = await c.container({ kind: "type1" }, `vm 'quoted'`);

    await c.ok("POST", `/v1/groups/${g1.group.id}/attach`, { domainId: d1.id });
    await c.expect(409, "POST", `/v1/groups/${g2.group.id}/attach`, { domainId: d2.id });
    await c.ok("POST", `/v1/groups/${g2.group.id}/claim`, { owner: "o'wner" });
    await c.ok("POST", `/v1/groups/${g2.group.id}/attach`, { domainId: d1.id, owner: "o'wner" });
    const search = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: g3.group.id });
    await c.ok("POST", `/v1/groups/${g4.group.id}/attach`, { domainId: ident.id });
    await c.expect(422, "POST", `/v1/groups/${g5.group.id}/attach`, { domainId: d3.id });
    const f1 = await c.fault({ unitId: mock.id, errno: "EIO", count: 5 });
    const f2 = await c.fault({ deviceId: g1.devices[0]!.id, errno: "ENOMEM", count: 2 });
    await c.expect(507, "POST", `/v1/groups/${g1.group.id}/replace`, { domainId: d2.id });
    await c.ok("PATCH", `/v1/devices/${g4.devices[0]!.id}`, { faulty: true, flags: { canwbs: true } });

    const before = await snapshot(c);
    expect(before.units.map((u) => u.name)).toContain(tricky);
    expect(before.faults.find((f) => f.id === f2.id)?.remaining).toBe(1);
    expect(before.events.filter((e) => e.kind === null)).toHaveLength(8);
    // Every object created, and the device patched, in order.
    const created = (kind: string) => (o: { id: number }): [string, string, number] => ["create", kind, o.id];
    expect(before.events.filter((e) => e.kind !== null).map((e) => [e.op, e.kind, e.objectId])).toEqual([
      ...[intel, mock, smmu].map(created("unit")),
      ...[g1, g2, g3, g4, g5].flatMap((g) => [created("group")(g.group), ...g.devices.map(created("device"))]),
      ...[d1, d2, d3, ident].map(created("domain")), created("container")(ct), ...[f1, f2].map(created("fault")),
      ["update", "device", g4.devices[0]!.id],
    ]);
    expect(before.groups.find((g) => g.id === g2.group.id)).toMatchObject({ owner: "o'wner", domainId: d1.id });
    expect(before.groups.find((g) => g.id === g3.group.id)!.domainId).toBe(search.domain.id);

    c = await boot(file);
    const after = await snapshot(c);
    expect(after).toEqual(before);

    // The log continues after the last durable event.
    const lastSeq = before.events[before.events.length - 1]!.seq;
    await c.ok("POST", `/v1/groups/${g1.group.id}/detach`, { domainId: d2.id });
    const fresh = await c.events(lastSeq);
    expect(fresh).toHaveLength(1);
    expect(fresh[0]!.seq).toBe(lastSeq + 1);
    expect(Date.parse(fresh[0]!.at)).toBeGreaterThanOrEqual(Date.parse(before.events[before.events.length - 1]!.at));

    // The reloaded model still enforces the rules it enforced before.
    expectProblem(await c.post(`/v1/groups/${g1.group.id}/attach`, { domainId: d2.id }), 409, "EBUSY", "group-attached", { domainId: d1.id });
    expectProblem(await c.post(`/v1/groups/${g2.group.id}/detach`, { domainId: d1.id, owner: "someone" }), 403, "EPERM", "owned-by-other");
    expectProblem(await c.del(`/v1/domains/${d1.id}`), 409, "EBUSY", "domain-in-use");
    expectProblem(await c.post(`/v1/groups/${g1.group.id}/replace`, { domainId: d2.id }), 507, "ENOMEM", "injected-fault");
    expect((await c.faults()).find((f) => f.id === f2.id)).toBeUndefined();
    expectProblem(await c.post(`/v1/groups/${g4.group.id}/replace`, { domainId: search.domain.id }), 422, "ENODEV", "device-faulty");
    // The detach through the container still finds (and frees) the automatic domain.
    const back = await c.ok<{ freedDomainId: number | null }>("POST", `/v1/containers/${ct.id}/detach`, { groupId: g3.group.id });
    expect(back.freedDomainId).toBe(search.domain.id);
    // Domain-ID accounting was rebuilt: intel has 3 IDs and d1 holds one; the
    // default domains of two new groups take the others. A one-device group
    // moves (its default domain gives its ID back on the way); a two-device
    // group cannot (its second device still holds its default domain's).
    const spare = await c.groupWith(intel.id);
    const pair = await c.groupWith(intel.id, [{}, {}]);
    const e1 = await c.domain({ unitId: intel.id });
    const e2 = await c.domain({ unitId: intel.id });
    expectProblem(await c.post("/v1/devices", { name: "one-too-many", groupId: (await c.group(intel.id)).id }), 507, "ENOSPC", "domain-ids-exhausted");
    await c.ok("POST", `/v1/groups/${spare.group.id}/attach`, { domainId: e1.id });
    expectProblem(await c.post(`/v1/groups/${pair.group.id}/attach`, { domainId: e2.id }), 507, "ENOSPC", "domain-ids-exhausted");
  });

  it("IOVA mappings and reserved regions survive it, exact up to 2^53 - 1, and are enforced after it", async () => {
    const file = newFile();
    let c = await boot(file);
    const unit = await c.unit({ driver: "intel-vtd" });
    const { group, devices } = await c.groupWith(unit.id);
    const msi = await c.region(devices[0]!.id, { start: 0xfee00000, length: 0x100000, type: "msi" });
    const rmr = await c.region(devices[0]!.id, { start: 2 ** 53 - 0x10000, length: 0x10000, type: "direct-relaxable" });
    const ct = await c.container();
    const empty = await c.container();
    const low = await c.mapping(ct.id, { length: 0x1000 });
    const top = await c.mapping(empty.id, { iova: 2 ** 53 - 2 ** 21, length: 2 ** 21 });
    const read = async () => ({
      mappings: [
        ...(await c.read<PageView<MappingView>>(`/v1/containers/${ct.id}/mappings`)).items,
        ...(await c.read<PageView<MappingView>>(`/v1/containers/${empty.id}/mappings`)).items,
      ],
      regions: (await c.read<PageView<ReservedRegionView>>(`/v1/devices/${devices[0]!.id}/reserved-regions`)).items,
    });
    const before = await read();
    expect(before).toEqual({ mappings: [low, top], regions: [msi, rmr] });

    c = await boot(file);
    expect(await read()).toEqual(before);
    expect((await c.read<MappingView>(`/v1/containers/${empty.id}/mappings/${top.id}`)).iova).toBe(9007199252643840);
    // Still a mapping there, and the region still refuses one once its device is attached.
    expectProblem(await c.post(`/v1/containers/${empty.id}/mappings`, { iova: top.iova, length: 0x1000 }), 409, "EEXIST", "iova-mapped");
    await c.ok("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
    expectProblem(await c.post(`/v1/containers/${ct.id}/mappings`, { iova: 0xfee00000, length: 0x1000 }), 409, "EINVAL", "iova-reserved", { regionId: msi.id });
    // Ids are not handed out again.
    expect((await c.mapping(ct.id, { length: 0x1000 })).id).toBeGreaterThan(top.id);
    const other = (await c.groupWith(unit.id)).devices[0]!;
    expect((await c.region(other.id, { start: 0, length: 0x1000, type: "reserved" })).id).toBeGreaterThan(rmr.id);
  });

  it("does not reuse the ids of deleted objects, the highest ones included", async () => {
    const file = newFile();
    let c = await boot(file);
    const u1 = await c.unit({ driver: "mock" });
    const g1 = await c.groupWith(u1.id);
    const ct1 = await c.container();
    const d1 = await c.domain({ unitId: u1.id });
    const f1 = await c.fault({ unitId: u1.id, errno: "EIO" });
    // The highest ids of every kind, deleted before the restart.
    const u2 = await c.unit({ driver: "mock" });
    const g2 = await c.group(u1.id);
    const dev2 = await c.device(g1.group.id);
    const ct2 = await c.container();
    const d2 = await c.domain({ unitId: u1.id });
    const f2 = await c.fault({ unitId: u1.id, errno: "EIO" });
    for (const url of [`/v1/faults/${f2.id}`, `/v1/domains/${d2.id}`, `/v1/containers/${ct2.id}`, `/v1/devices/${dev2.id}`, `/v1/groups/${g2.id}`, `/v1/units/${u2.id}`]) {
      expect((await c.del(url)).status, url).toBe(204);
    }
    const lastSeq = await c.lastSeq();

    c = await boot(file);
    const u3 = await c.unit({ driver: "mock" });
    const g3 = await c.group(u1.id);
    const dev3 = await c.device(g3.id);
    const ct3 = await c.container();
    const d3 = await c.domain({ unitId: u1.id });
    const f3 = await c.fault({ unitId: u1.id, errno: "EIO" });
    expect(u3.id).toBeGreaterThan(u2.id);
    expect(g3.id).toBeGreaterThan(g2.id);
    expect(dev3.id).toBeGreaterThan(dev2.id);
    expect(ct3.id).toBeGreaterThan(ct2.id);
    // g3's default domain is newer than every domain ever handed out (d2 and g2's default).
    expect(g3.defaultDomainId).toBeGreaterThan(Math.max(d2.id, g2.defaultDomainId));
    expect(d3.id).toBeGreaterThan(g3.defaultDomainId);
    expect(f3.id).toBeGreaterThan(f2.id);
    // The survivors are untouched.
    expect(await c.read(`/v1/units/${u1.id}`)).toEqual(u1);
    expect((await c.read<ContainerView>(`/v1/containers/${ct1.id}`)).id).toBe(ct1.id);
    expect((await c.read<DomainView>(`/v1/domains/${d1.id}`)).id).toBe(d1.id);
    expect((await c.faults()).map((f) => f.id)).toEqual([f1.id, f3.id]);
    // The log kept the deletes and continued after them, with the creates since.
    const log = await c.events();
    expect(log.filter((e) => e.seq <= lastSeq).slice(-6).map((e) => [e.op, e.kind, e.objectId])).toEqual([
      ["delete", "fault", f2.id], ["delete", "domain", d2.id], ["delete", "container", ct2.id],
      ["delete", "device", dev2.id], ["delete", "group", g2.id], ["delete", "unit", u2.id],
    ]);
    expect(log.filter((e) => e.seq > lastSeq).map((e) => [e.seq, e.op, e.kind, e.objectId])).toEqual(
      [["unit", u3], ["group", g3], ["device", dev3], ["container", ct3], ["domain", d3], ["fault", f3]]
        .map(([kind, o], i) => [lastSeq + 1 + i, "create", kind, (o as { id: number }).id]),
    );
  });

  it("does not reuse a domain id a failed allocation showed to the client", async () => {
    const file = newFile();
    let c = await boot(file);
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    const ct = await c.container();
    await c.fault({ unitId: u.id, errno: "ENOMEM" });
    const refused = expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id }), 507, "ENOMEM", "injected-fault");
    const shown = refused.attempts![0]!.domainId;
    expect(refused.attempts![0]!.allocated).toBe(true);
    // In this process the id is not handed out again...
    const before = await c.domain({ unitId: u.id });
    expect(before.id).toBeGreaterThan(shown);

    const file2 = newFile();
    c = await boot(file2);
    const u2 = await c.unit({ driver: "mock" });
    const { group: grp2 } = await c.groupWith(u2.id);
    const ct2 = await c.container();
    await c.fault({ unitId: u2.id, errno: "ENOMEM" });
    const refused2 = expectProblem(await c.post(`/v1/containers/${ct2.id}/attach`, { groupId: grp2.id }), 507, "ENOMEM", "injected-fault");
    const shown2 = refused2.attempts![0]!.domainId;
    // ...nor after a restart (ids are never handed out twice, src/store/load.ts).
    c = await boot(file2);
    const after = await c.domain({ unitId: u2.id });
    expect(after.id).toBeGreaterThan(shown2);
  });

  it("keeps events in order across several restarts, with increasing seq and no gaps", async () => {
    const file = newFile();
    const seen: EventView[] = [];
    for (let round = 0; round < 3; round++) {
      const c = await boot(file);
      const u = await c.unit({ driver: "mock" });
      const { group } = await c.groupWith(u.id);
      const d = await c.domain({ unitId: u.id });
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
      await c.expect(404, "POST", `/v1/groups/${group.id}/attach`, { domainId: 99999 });
      const all = await c.events();
      expect(all.slice(0, seen.length)).toEqual(seen);
      // The unit, group, device and domain created, then the two attempts.
      expect(all.slice(seen.length).map((e) => [e.op, e.kind])).toEqual([
        ["create", "unit"], ["create", "group"], ["create", "device"], ["create", "domain"], ["attach-group", null], ["attach-group", null],
      ]);
      seen.splice(0, seen.length, ...all);
    }
    expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
  });
});
