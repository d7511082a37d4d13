// The invariant and replay checks themselves: silent on a database the
// service wrote, and each one speaks up when its rule is broken.
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openApp, tempDbFile } from "./app.js";
import { Client, type GroupView } from "./http.js";
import { checkInvariants, checkReplay, readSnapshot, type Snapshot } from "./invariants.js";

interface Made {
  vtdUnit: number; smmu1Unit: number;
  plain: number; claimed: number; viaContainer: number; onSmmu1: number;
  vtdDomain: number; spareVtdDomain: number; smmu0Domain: number;
}

describe("invariants over the database file", () => {
  const { dir, file } = tempDbFile();
  let clean: Snapshot;
  let made: Made;
  /** The topology changes the set-up made, in order: [op, kind, objectId]. */
  let changes: [string, string, number][];

  beforeAll(async () => {
    const { app } = await openApp(file);
    const c = new Client(app);
    const vtd = await c.unit({ driver: "intel-vtd" });
    const smmu0 = await c.unit({ driver: "arm-smmu-v3" });
    const smmu1 = await c.unit({ driver: "arm-smmu-v3" });
    const withDevice: Awaited<ReturnType<Client["groupWith"]>>[] = [];
    for (const unit of [vtd, vtd, vtd, smmu1]) withDevice.push(await c.groupWith(unit.id));
    const [plain, claimed, viaContainer, onSmmu1] = withDevice.map((m) => m.group) as [GroupView, GroupView, GroupView, GroupView];
    const vtdDomain = await c.domain({ unitId: vtd.id });
    const spareVtdDomain = await c.domain({ unitId: vtd.id });
    const smmu0Domain = await c.domain({ unitId: smmu0.id });
    await c.ok("POST", `/v1/groups/${plain.id}/attach`, { domainId: vtdDomain.id });
    await c.ok("POST", `/v1/groups/${claimed.id}/claim`, { owner: "alice" });
    await c.expect(403, "POST", `/v1/groups/${claimed.id}/replace`, { domainId: vtdDomain.id, owner: "bob" });
    await c.ok("POST", `/v1/groups/${claimed.id}/replace`, { domainId: vtdDomain.id, owner: "alice" });
    const ct = await c.container();
    await c.ok("POST", `/v1/containers/${ct.id}/attach`, { groupId: viaContainer.id });
    await c.expect(409, "POST", `/v1/groups/${onSmmu1.id}/attach`, { domainId: smmu0Domain.id });
    const fault = await c.fault({ unitId: smmu0.id, errno: "ENOMEM", count: 3 });
    changes = [
      ...[vtd, smmu0, smmu1].map((u): [string, string, number] => ["create", "unit", u.id]),
      ...withDevice.flatMap((m): [string, string, number][] => [["create", "group", m.group.id], ["create", "device", m.devices[0]!.id]]),
      ...[vtdDomain, spareVtdDomain, smmu0Domain].map((d): [string, string, number] => ["create", "domain", d.id]),
      ["create", "container", ct.id], ["create", "fault", fault.id],
    ];
    await app.close();
    made = {
      vtdUnit: vtd.id, smmu1Unit: smmu1.id, plain: plain.id, claimed: claimed.id, viaContainer: viaContainer.id,
      onSmmu1: onSmmu1.id, vtdDomain: vtdDomain.id, spareVtdDomain: spareVtdDomain.id, smmu0Domain: smmu0Domain.id,
    };
    clean = readSnapshot(file);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("finds nothing wrong with what the service wrote", () => {
    expect(clean.events.filter((e) => e.kind === null).length).toBe(6);
    expect(clean.events.filter((e) => e.kind !== null).map((e) => [e.op, e.kind, e.objectId])).toEqual(changes);
    expect(checkInvariants(clean)).toEqual([]);
    expect(checkReplay(clean)).toEqual([]);
  });

  const group = (s: Snapshot, id: number) => s.groups.find((g) => g.id === id)!;
  const cases: [string, (s: Snapshot, m: Made) => void, RegExp][] = [
    ["a corrupt file", (s) => s.integrity.splice(0, 1, "row 3 missing from index"), /integrity_check/],
    ["a group on a domain that does not exist", (s, m) => void (group(s, m.plain).domainId = 999_999), /attached to domain 999999, which does not exist/],
    ["a group on another group's default domain", (s, m) => void (group(s, m.plain).domainId = group(s, m.viaContainer).defaultDomainId), /another group's default or blocking domain/],
    ["an automatic domain nobody uses", (s, m) => void (group(s, m.viaContainer).domainId = group(s, m.viaContainer).defaultDomainId), /automatic domain \d+ has no group attached/],
    ["an owner without a blocking domain", (s, m) => void (group(s, m.plain).owner = "mallory"), /owned by mallory but has no blocking domain/],
    ["an SMMU domain serving another instance", (s, m) => {
      const d = s.domains.find((x) => x.id === m.smmu0Domain)!;
      group(s, m.onSmmu1).domainId = d.id;
    }, /on unit \d+ is attached to arm-smmu-v3 domain \d+ finalised on unit/],
    ["more domains than the unit has IDs", (s, m) => void (s.units.find((u) => u.id === m.vtdUnit)!.capabilities.domainIds = 1), /distinct paging and default domains attached, more than its 1 domain IDs/],
    ["more default domains than an SMMUv2 has context banks", (s, m) => {
      const u = s.units.find((x) => x.id === m.vtdUnit)!;
      u.driver = "arm-smmu";
      for (const d of s.domains) if (d.unitId === u.id) d.driver = "arm-smmu";
      u.capabilities.domainIds = 2;
    }, /has \d+ domains finalised on it \(default domains included\), more than its 2 IDs/],
    ["more ASIDs than any SMMUv3 has (one on each of two)", (s) => {
      for (const u of s.units) if (u.driver === "arm-smmu-v3") u.capabilities.domainIds = 1;
    }, /2 ASIDs are in use across the SMMUv3s, more than the widest one's 1/],
    ["a spent fault left behind", (s) => void (s.faults[0]!.remaining = 0), /has 0 remaining/],
    ["a gap in the event log", (s) => void s.events.splice(2, 1), /follows \d+: the log has a gap/],
    ["an errno with the wrong code", (s) => void (s.events.find((e) => e.errno !== null)!.code = -22), /errno \w+ with code -22/],
    ["a failed topology change recorded", (s) => Object.assign(s.events.find((e) => e.op === "create")!, { errno: "ENOMEM", code: -12, reason: "injected-fault" }),
      /only successful topology changes are recorded/],
    ["a topology change naming a group", (s) => void (s.events.find((e) => e.kind === "device")!.groupId = 1), /a topology change names its object only/],
    ["a topology change of no kind", (s) => void (s.events.find((e) => e.op === "create")!.kind = null), /a topology change of unknown kind/],
    ["a topology change without its object", (s) => void (s.events.find((e) => e.op === "create")!.objectId = null), /a topology change without an object id/],
    ["an attempt naming an object", (s) => Object.assign(s.events.find((e) => e.op === "claim")!, { kind: "group", objectId: 1 }), /an attempt\) names object group 1/],
  ];
  it.each(cases)("reports %s", (_name, mutate, message) => {
    const s = structuredClone(clean);
    mutate(s, made);
    expect(checkInvariants(s).join("\n")).toMatch(message);
  });

  const replays: [string, (s: Snapshot, m: Made) => void, RegExp][] = [
    ["a move the log does not hold", (s, m) => void (group(s, m.plain).domainId = m.spareVtdDomain), /the log replays to domain \d+ owned by nobody, the table has domain/],
    ["an owner the log did not set", (s, m) => void (group(s, m.claimed).owner = "bob"), /owned by alice, the table has domain \d+ owned by bob/],
    ["a refusal the state does not explain", (s) => void (s.events.find((e) => e.reason === "owned-by-other")!.owner = "alice"), /refused as owned by another, but the replay has it/],
    ["a move by someone who is not the owner", (s) => void (s.events.find((e) => e.op === "replace-group" && e.errno === null)!.owner = "bob"), /moved a group it does not own/],
    ["a pruned log", (s) => void s.events.shift(), /events were pruned, no replay/],
    ["a move before its group was created", (s, m) => void (s.events.find((e) => e.op === "create" && e.kind === "group" && e.objectId === m.plain)!.seq = 1_000_000),
      /comes before the group's creation \(event 1000000\)/],
  ];
  it.each(replays)("replay reports %s", (_name, mutate, message) => {
    const s = structuredClone(clean);
    mutate(s, made);
    expect(checkReplay(s).join("\n")).toMatch(message);
  });
});
