// Quotas: objects a client may create, and injected faults (how many at once
// and how many attach ops one may fail). Refusals are 403 EDQUOT
// quota-exceeded and change nothing.
import { beforeAll, describe, expect, it } from "vitest";
import { authAppForFile } from "../helpers/auth.js";
import { clientForFile, expectProblem, uniqueName, type FaultView, type UnitView } from "../helpers/http.js";

const f = authAppForFile({ objectsPerClient: 3, activeFaults: 2, faultCount: 5 });
let unit: UnitView;
beforeAll(async () => {
  unit = await f.as.admin.unit({ driver: "intel-vtd" });
});

describe("objects per client", () => {
  it("a client may hold objectsPerClient containers + domains; then 403 EDQUOT until it deletes one", async () => {
    const a = f.as.a;
    const ioas = await a.container({}, uniqueName("q"));
    await a.domain({ unitId: unit.id });
    const third = await a.domain({ unitId: unit.id });
    const before = (await a.read<{ objects: Record<string, number> }>("/v1/stats")).objects;
    expectProblem(await a.post("/v1/domains", { type: "paging", unitId: unit.id }), 403, "EDQUOT", "quota-exceeded", { soft: false });
    expectProblem(await a.post("/v1/containers", { name: uniqueName("q") }), 403, "EDQUOT", "quota-exceeded");
    expect((await a.read<{ objects: Record<string, number> }>("/v1/stats")).objects).toEqual(before);
    // Per client: another client and the administrator are not charged for it.
    await f.as.b.domain({ unitId: unit.id });
    for (let i = 0; i < 4; i++) await f.as.admin.domain({ unitId: unit.id });
    expect(await a.send("DELETE", `/v1/domains/${third.id}`)).toMatchObject({ status: 204 });
    await a.domain({ unitId: unit.id, containerId: ioas.id });
    expectProblem(await a.post("/v1/domains", { type: "paging", unitId: unit.id }), 403, "EDQUOT", "quota-exceeded");
  });
});

describe("injected faults", () => {
  it("one fault may fail at most faultCount attach ops", async () => {
    expectProblem(await f.as.admin.post("/v1/faults", { unitId: unit.id, errno: "EIO", count: 6 }), 403, "EDQUOT", "quota-exceeded");
    const ok = await f.as.admin.fault({ unitId: unit.id, errno: "EIO", count: 5 });
    expect(ok.remaining).toBe(5);
    await f.as.admin.ok("DELETE", "/v1/faults");
  });

  it("at most activeFaults at once; clearing makes room", async () => {
    const admin = f.as.admin;
    await admin.fault({ unitId: unit.id, errno: "EIO" });
    await admin.fault({ unitId: unit.id, errno: "ENOMEM" });
    expectProblem(await admin.post("/v1/faults", { unitId: unit.id, errno: "EIO" }), 403, "EDQUOT", "quota-exceeded");
    expect((await admin.read<{ items: FaultView[] }>("/v1/faults")).items).toHaveLength(2);
    expect(await admin.ok("DELETE", "/v1/faults")).toEqual({ cleared: 2 });
    await admin.fault({ unitId: unit.id, errno: "EIO" });
  });
});

describe("defaults in open mode", () => {
  const c = clientForFile();
  it("a million-count fault is refused by the default limit", async () => {
    const u = await c.unit({ driver: "mock" });
    expectProblem(await c.post("/v1/faults", { unitId: u.id, errno: "EIO", count: 1_000_000 }), 403, "EDQUOT", "quota-exceeded");
    expect((await c.fault({ unitId: u.id, errno: "EIO", count: 1000 })).remaining).toBe(1000);
  });
});
