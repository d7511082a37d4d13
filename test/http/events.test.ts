// /v1/events: every attach-family attempt is logged, in order, with its
// outcome, and every successful topology change as a create / update /
// delete naming its object (test/http/topology-events.test.ts has each
// route); the log pages by seq, next null on its last page.
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile, TEST_LIMITS } from "../helpers/app.js";
import { clientForFile, expectInvalid, type EventPageView, type EventView, type UnitView } from "../helpers/http.js";
import { DRIVERS } from "../../src/drivers/index.js";

const c = clientForFile();
let unit: UnitView;

describe("GET /v1/events", () => {
  it("starts empty (next null, last 0); creating objects logs one create each, naming its kind and id", async () => {
    expect(await c.read("/v1/events")).toEqual({ items: [], next: null, last: 0 });
    unit = await c.unit({ driver: "intel-vtd", capabilities: { snoopControl: false } });
    const { group, devices: [dev] } = await c.groupWith(unit.id);
    const domain = await c.domain({ unitId: unit.id });
    const ct = await c.container();
    const page = await c.read<EventPageView>("/v1/events");
    const created = (kind: string, objectId: number) => ({
      op: "create", kind, objectId, owner: null, groupId: null, deviceId: null, domainId: null, containerId: null,
      errno: null, code: 0, soft: false, reason: null, detail: null,
    });
    expect(page.items.map(({ seq: _s, at: _a, ...rest }) => rest)).toEqual([
      created("unit", unit.id), created("group", group.id), created("device", dev!.id), created("domain", domain.id), created("container", ct.id),
    ]);
    expect(page.items.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(page.next).toBeNull();
    expect(page.last).toBe(5);
  });

  it("logs each attempt with its outcome, owner and objects, in seq order", async () => {
    const { group, devices: [dev] } = await c.groupWith(unit.id);
    const paging = await c.domain({ unitId: unit.id });
    const snoop = await c.domain({ unitId: unit.id, config: { enforceCacheCoherency: true } });
    const ct = await c.container();
    const before = await c.lastSeq();
    const t0 = Date.now();

    await c.expect(409, "POST", `/v1/groups/${group.id}/attach`, { domainId: snoop.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: paging.id });
    await c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId: paging.id });
    await c.ok("POST", `/v1/devices/${dev!.id}/attach`, { domainId: paging.id });
    await c.ok("POST", `/v1/devices/${dev!.id}/detach`, { domainId: paging.id });
    await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "qemu" });
    await c.expect(403, "POST", `/v1/groups/${group.id}/replace`, { domainId: paging.id, owner: "intruder" });
    await c.ok("POST", `/v1/groups/${group.id}/replace`, { domainId: paging.id, owner: "qemu" });
    await c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId: paging.id, owner: "qemu" });
    await c.ok("POST", `/v1/groups/${group.id}/release`, { owner: "qemu" });
    const search = await c.ok<{ domain: { id: number } }>("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
    await c.ok("POST", `/v1/containers/${ct.id}/detach`, { groupId: group.id });
    await c.expect(404, "POST", `/v1/groups/${group.id}/attach`, { domainId: 987654 });

    const events = await c.events(before);
    const blocking = (await c.groupNow(group.id)).blockingDomainId;
    const none = { errno: null, code: 0, soft: false, reason: null, detail: null };
    const attempt = { kind: null, objectId: null };
    const g = group.id;
    expect(events.map(({ seq: _s, at: _a, ...rest }) => rest)).toEqual([
      { op: "attach-group", owner: null, groupId: g, deviceId: null, domainId: snoop.id, containerId: null, ...attempt, errno: "EINVAL", code: -22, soft: true, reason: "snoop-control", detail: expect.stringContaining("snoop") },
      { op: "attach-group", owner: null, groupId: g, deviceId: null, domainId: paging.id, containerId: null, ...attempt, ...none },
      { op: "detach-group", owner: null, groupId: g, deviceId: null, domainId: paging.id, containerId: null, ...attempt, ...none },
      { op: "attach-device", owner: null, groupId: g, deviceId: dev!.id, domainId: paging.id, containerId: null, ...attempt, ...none },
      { op: "detach-device", owner: null, groupId: g, deviceId: dev!.id, domainId: paging.id, containerId: null, ...attempt, ...none },
      { op: "claim", owner: "qemu", groupId: g, deviceId: null, domainId: blocking, containerId: null, ...attempt, ...none },
      { op: "replace-group", owner: "intruder", groupId: g, deviceId: null, domainId: paging.id, containerId: null, ...attempt, errno: "EPERM", code: -1, soft: false, reason: "owned-by-other", detail: expect.any(String) },
      { op: "replace-group", owner: "qemu", groupId: g, deviceId: null, domainId: paging.id, containerId: null, ...attempt, ...none },
      { op: "detach-group", owner: "qemu", groupId: g, deviceId: null, domainId: paging.id, containerId: null, ...attempt, ...none },
      { op: "release", owner: "qemu", groupId: g, deviceId: null, domainId: group.defaultDomainId, containerId: null, ...attempt, ...none },
      { op: "container-attach", owner: null, groupId: g, deviceId: null, domainId: search.domain.id, containerId: ct.id, ...attempt, ...none },
      { op: "container-detach", owner: null, groupId: g, deviceId: null, domainId: group.defaultDomainId, containerId: ct.id, ...attempt, ...none },
      { op: "attach-group", owner: null, groupId: g, deviceId: null, domainId: 987654, containerId: null, ...attempt, errno: "ENOENT", code: -2, soft: false, reason: "no-such-domain", detail: expect.any(String) },
    ]);
    const seqs = events.map((e) => e.seq);
    expect(seqs[0]).toBe(before + 1);
    seqs.forEach((s, i) => { if (i > 0) expect(s).toBe(seqs[i - 1]! + 1); });
    for (const e of events) {
      expect(e.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Date.parse(e.at)).toBeGreaterThanOrEqual(t0 - 1000);
      expect(Date.parse(e.at)).toBeLessThanOrEqual(Date.now() + 1000);
    }
  });

  // One outcome shape (src/core/outcome.ts): the dry run's verdict, the
  // refusal's problem document and its event say the same, soft included.
  const REFUSALS: { name: string; errno: string; soft: boolean; reason: string; fault?: string; config?: Record<string, unknown> }[] = [
    { name: "an incompatibility", errno: "EINVAL", soft: true, reason: "snoop-control", config: { enforceCacheCoherency: true } },
    { name: "a driver's (injected) EINVAL", errno: "EINVAL", soft: true, reason: "injected-fault", fault: "EINVAL" },
    { name: "a driver's (injected) EBUSY", errno: "EBUSY", soft: false, reason: "injected-fault", fault: "EBUSY" },
    { name: "a code outside the contract, answered ENODEV", errno: "ENODEV", soft: false, reason: "injected-fault", fault: "ETIMEDOUT" },
  ];
  it.each(REFUSALS)("the same outcome in verdict, problem and event: $name", async (row) => {
    const u = await c.unit({ driver: "intel-vtd", capabilities: { snoopControl: false } });
    const { group, devices: [dev] } = await c.groupWith(u.id);
    const d = await c.domain({ unitId: u.id, ...(row.config ? { config: row.config } : {}) });
    if (row.fault) await c.fault({ deviceId: dev!.id, errno: row.fault, count: 1 });
    const pick = (o: Record<string, unknown>) => ({ errno: o.errno, code: o.code, soft: o.soft, reason: o.reason, detail: o.detail });
    const verdicts = await c.read<{ verdicts: Record<string, unknown>[] }>(`/v1/groups/${group.id}/compatibility?limit=1000`);
    const verdict = verdicts.verdicts.find((v) => v.domainId === d.id)!;
    const seq = await c.lastSeq();
    const refused = await c.post<Record<string, unknown>>(`/v1/groups/${group.id}/attach`, { domainId: d.id });
    const [event] = await c.events(seq);
    const outcome = pick(refused.body);
    expect(outcome).toMatchObject({ errno: row.errno, soft: row.soft, reason: row.reason, detail: expect.any(String) });
    expect(pick(verdict)).toEqual(outcome);
    expect(pick(event as unknown as Record<string, unknown>)).toEqual(outcome);
  });

  it("pages by seq: next is the last seq of a full page and null on the last page; last is where to poll from", async () => {
    const all = await c.events();
    expect(all.length).toBeGreaterThanOrEqual(10);
    const walked: EventView[] = [];
    let after = 0;
    let pages = 0;
    for (;;) {
      const page = await c.read<EventPageView>(`/v1/events?after=${after}&limit=3`);
      pages += 1;
      walked.push(...page.items);
      if (page.items.length === 3) {
        expect(page.next).toBe(page.items[2]!.seq);
        expect(page.last).toBe(page.items[2]!.seq);
        after = page.next!;
        continue;
      }
      // Fewer than asked for: the end of the log.
      expect(page.next).toBeNull();
      expect(page.last).toBe(page.items.length > 0 ? page.items[page.items.length - 1]!.seq : after);
      break;
    }
    expect(walked).toEqual(all);
    expect(pages).toBe(Math.floor(all.length / 3) + 1);
    const mid = all[4]!.seq;
    const rest = await c.read<EventPageView>(`/v1/events?after=${mid}&limit=1000`);
    expect(rest.items).toEqual(all.filter((e) => e.seq > mid));
    expect(rest.next).toBeNull();
    expect(rest.last).toBe(all[all.length - 1]!.seq);
    const end = all[all.length - 1]!.seq;
    // A full page that happens to end the log answers its last seq (it cannot
    // know); the page after it is empty and answers null, last staying put.
    const tail = await c.read<EventPageView>(`/v1/events?after=${all[all.length - 4]!.seq}&limit=3`);
    expect(tail.items).toEqual(all.slice(-3));
    expect(tail).toMatchObject({ next: end, last: end });
    expect(await c.read(`/v1/events?after=${tail.next}&limit=3`)).toEqual({ items: [], next: null, last: end });
    expect(await c.read(`/v1/events?after=${end + 100}`)).toEqual({ items: [], next: null, last: end + 100 });
  });

  it("defaults to 100 events a page", async () => {
    const { group } = await c.groupWith(unit.id);
    const d = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
    await Promise.all(Array.from({ length: 110 }, () => c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id })));
    const page = await c.read<EventPageView>("/v1/events");
    expect(page.items).toHaveLength(100);
    expect(page.next).toBe(page.items[99]!.seq);
    expect(page.last).toBe(page.items[99]!.seq);
  });

  it("does not log requests the schema refused", async () => {
    const seq = await c.lastSeq();
    await c.post("/v1/groups/1/attach", { domainId: "x" });
    await c.post("/v1/groups/abc/claim", { owner: "o" });
    await c.post("/v1/containers/1/attach", {});
    expect(await c.lastSeq()).toBe(seq);
  });

  it("does not log attempts on a group, device or container that does not exist (404, nothing stored)", async () => {
    const { group } = await c.groupWith(unit.id);
    const d = await c.domain({ unitId: unit.id });
    const ct = await c.container();
    const seq = await c.lastSeq();
    const missing = 987654;
    const requests: [string, object][] = [
      [`/v1/groups/${missing}/attach`, { domainId: d.id }],
      [`/v1/groups/${missing}/replace`, { domainId: d.id }],
      [`/v1/groups/${missing}/detach`, { domainId: d.id }],
      [`/v1/groups/${missing}/claim`, { owner: "qemu" }],
      [`/v1/groups/${missing}/release`, { owner: "qemu" }],
      [`/v1/devices/${missing}/attach`, { domainId: d.id }],
      [`/v1/devices/${missing}/detach`, { domainId: d.id }],
      [`/v1/containers/${missing}/attach`, { groupId: group.id }],
      [`/v1/containers/${ct.id}/attach`, { groupId: missing }],
      [`/v1/containers/${missing}/detach`, { groupId: group.id }],
    ];
    for (const [url, body] of requests) {
      const res = await c.post(url, body);
      expect(res.status, url).toBe(404);
      expect(res.body, url).toMatchObject({ errno: "ENOENT" });
    }
    expect(await c.lastSeq()).toBe(seq);
    // An existing group refused for a missing domain is a decision: logged.
    await c.expect(404, "POST", `/v1/groups/${group.id}/attach`, { domainId: missing });
    expect(await c.events(seq)).toMatchObject([{ op: "attach-group", groupId: group.id, domainId: missing, reason: "no-such-domain" }]);
  });
});

describe("bad input", () => {
  it.each([
    ["/v1/events?after=-1", "querystring.after"],
    ["/v1/events?after=first", "querystring.after"],
    ["/v1/events?limit=0", "querystring.limit"],
    ["/v1/events?limit=1001", "querystring.limit"],
    ["/v1/events?limit=1.5", "querystring.limit"],
    ["/v1/events?op=claim", "querystring.op"],
  ])("GET %s → 400 naming %s", async (url, field) => {
    expectInvalid(await c.get(url), field);
  });

  it("there is no POST /v1/events: 405 method-not-allowed", async () => {
    const res = await c.post("/v1/events", { op: "claim" });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
    expect(res.body).toMatchObject({ reason: "method-not-allowed", errno: "EOPNOTSUPP" });
  });
});

describe("GET /v1/events?groupId=", () => {
  it("returns only that group's attempts, in order, and pages with after", async () => {
    const unitMock = await c.unit({ driver: "mock" });
    const a = (await c.groupWith(unitMock.id)).group;
    const b = (await c.groupWith(unitMock.id)).group;
    const dom = await c.domain({ unitId: unitMock.id });
    for (const g of [a, b, a]) {
      await c.ok("POST", `/v1/groups/${g.id}/attach`, { domainId: dom.id });
      await c.ok("POST", `/v1/groups/${g.id}/detach`, { domainId: dom.id });
    }
    const onlyA = await c.ok<{ items: { seq: number; groupId: number; op: string }[]; next: number }>("GET", `/v1/events?groupId=${a.id}`);
    expect(onlyA.items.map((e) => [e.groupId, e.op])).toEqual([
      [a.id, "attach-group"], [a.id, "detach-group"], [a.id, "attach-group"], [a.id, "detach-group"],
    ]);
    const rest = await c.ok<{ items: { seq: number }[] }>("GET", `/v1/events?groupId=${a.id}&after=${onlyA.items[1]!.seq}`);
    expect(rest.items.map((e) => e.seq)).toEqual(onlyA.items.slice(2).map((e) => e.seq));
  });
});

describe("GET /v1/events under a flood of readers", () => {
  it("pages past the shared read budget wait their turn; past the queue, 503 overloaded with Retry-After", async () => {
    const { dir, file } = tempDbFile();
    // One row a second, so almost nothing refills while the test runs: the
    // first page goes at once, the next 256 wait, and the rest are refused.
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS, eventReadRate: 1 });
    const app = await buildApp({ store, logger: false, limits: TEST_LIMITS });
    try {
      const page = () => app.inject({ method: "GET", url: "/v1/events?limit=100" });
      expect((await page()).statusCode).toBe(200);
      const flood = Array.from({ length: 300 }, page);
      const refused = await Promise.race(flood.map(async (p) => {
        const r = await p;
        if (r.statusCode !== 503) await new Promise(() => undefined);
        return r;
      }));
      expect(refused.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(refused.json()).toMatchObject({ errno: "EAGAIN", reason: "overloaded", soft: false });
      expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      // Closing lets the waiting pages go; each gets an answer, none hangs.
      await app.close();
      await store.close();
      const answers = await Promise.all(flood);
      for (const r of answers) expect([200, 503]).toContain(r.statusCode);
      expect(answers.filter((r) => r.statusCode === 503).length).toBeGreaterThanOrEqual(300 - 256 - 5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
