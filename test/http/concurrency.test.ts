// Many requests in flight at once through inject: the arbiter must pick one
// winner where the contract allows one, never answer 5xx, and leave a state
// that GET and the event log agree on.
import { describe, expect, it } from "vitest";
import {
  clientForFile,
  type DomainView, type EventView, type GroupView, type MovedView, type ProblemView, type Res, type SearchView,
} from "../helpers/http.js";

const c = clientForFile();

function noServerErrors(results: Res<unknown>[]): void {
  const bad = results.filter((r) => r.status >= 500);
  expect(bad.map((r) => r.text)).toEqual([]);
}

describe("concurrent requests", () => {
  it("50 parallel attaches of one group to 50 different domains: one winner, 49 EBUSY", async () => {
    const unit = await c.unit({ driver: "intel-vtd" });
    const { group } = await c.groupWith(unit.id);
    const domains: DomainView[] = [];
    for (let i = 0; i < 50; i++) domains.push(await c.domain({ unitId: unit.id }));
    const seq = await c.lastSeq();

    const results = await Promise.all(domains.map((d) => c.post<MovedView & ProblemView>(`/v1/groups/${group.id}/attach`, { domainId: d.id })));
    noServerErrors(results);
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!.body;
    expect(winner.changed).toBe(true);
    const losers = results.filter((r) => r.status !== 200);
    expect(losers).toHaveLength(49);
    for (const r of losers) {
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ errno: "EBUSY", reason: "group-attached", soft: false, groupId: group.id, domainId: winner.domain.id });
    }

    expect((await c.groupNow(group.id)).domainId).toBe(winner.domain.id);
    expect(await c.groupsOn(winner.domain.id)).toEqual([group.id]);
    for (const d of domains) if (d.id !== winner.domain.id) expect(await c.groupsOn(d.id)).toEqual([]);

    const events = (await c.events(seq)).filter((e) => e.op === "attach-group" && e.groupId === group.id);
    expect(events).toHaveLength(50);
    const ok = events.filter((e) => e.errno === null);
    expect(ok).toHaveLength(1);
    expect(ok[0]!.domainId).toBe(winner.domain.id);
    expect(events.filter((e) => e.errno === "EBUSY")).toHaveLength(49);
    // The winner is the first attempt the log records.
    expect(events[0]!.errno).toBeNull();
    // Group commit: requests in flight together were written together.
    const stats = await c.read<{ batches: number; items: number; largestBatch: number }>("/v1/stats");
    expect(stats.largestBatch).toBeGreaterThan(1);
  });

  it("50 concurrent container attaches of 50 groups on one unit allocate exactly one automatic domain", async () => {
    const unit = await c.unit({ driver: "intel-vtd" });
    const ct = await c.container();
    const groups: GroupView[] = [];
    for (let i = 0; i < 50; i++) groups.push((await c.groupWith(unit.id)).group);

    const results = await Promise.all(groups.map((g) => c.post<SearchView>(`/v1/containers/${ct.id}/attach`, { groupId: g.id })));
    noServerErrors(results);
    expect(results.map((r) => r.status)).toEqual(groups.map(() => 200));
    expect(results.filter((r) => r.body.allocated)).toHaveLength(1);
    const domainIds = new Set(results.map((r) => r.body.domain.id));
    expect(domainIds.size).toBe(1);
    const [auto] = [...domainIds];

    const ctView = await c.read<{ domainIds: number[] }>(`/v1/containers/${ct.id}`);
    expect(ctView.domainIds).toEqual([auto]);
    expect(await c.read<DomainView>(`/v1/domains/${auto}`)).toMatchObject({ auto: true, containerId: ct.id, attachedGroupCount: 50 });
    expect(await c.groupsOn(auto!)).toEqual(groups.map((g) => g.id));
    for (const g of groups) expect((await c.groupNow(g.id)).domainId).toBe(auto);
  });

  it("concurrent claims by 20 different owners: one winner, 19 EPERM", async () => {
    const unit = await c.unit({ driver: "intel-vtd" });
    const { group } = await c.groupWith(unit.id);
    const owners = Array.from({ length: 20 }, (_, i) => `owner-${i}`);
    const results = await Promise.all(owners.map((owner) => c.post<MovedView & ProblemView>(`/v1/groups/${group.id}/claim`, { owner })));
    noServerErrors(results);
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    const owner = winners[0]!.body.group.owner;
    expect(owners).toContain(owner);
    for (const r of results.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ errno: "EPERM", reason: "owned-by-other", groupId: group.id });
      expect(r.body.detail).toContain(owner!);
    }
    const now = await c.groupNow(group.id);
    expect(now.owner).toBe(owner);
    expect(now.domainId).toBe(now.blockingDomainId);
  });

  it("mixed concurrent attach / replace / detach / reads on several groups: no 5xx, GET agrees with the log", async () => {
    const unit = await c.unit({ driver: "mock" });
    const groups: GroupView[] = [];
    for (let i = 0; i < 6; i++) groups.push((await c.groupWith(unit.id)).group);
    const domains: DomainView[] = [];
    for (let i = 0; i < 5; i++) domains.push(await c.domain({ unitId: unit.id }));
    const seq = await c.lastSeq();

    // A fixed pseudo-random mix (LCG) so that a failure reproduces.
    let x = 12345;
    const rand = (n: number) => { x = (x * 1103515245 + 12345) % 2 ** 31; return x % n; };
    const ops = ["attach", "replace", "detach", "read"] as const;
    const requests: Promise<Res<MovedView & ProblemView>>[] = [];
    const kinds: string[] = [];
    for (let i = 0; i < 300; i++) {
      const g = groups[rand(groups.length)]!;
      const d = domains[rand(domains.length)]!;
      const op = ops[rand(ops.length)]!;
      kinds.push(op);
      requests.push(op === "read"
        ? c.get<MovedView & ProblemView>(`/v1/groups/${g.id}`)
        : c.post<MovedView & ProblemView>(`/v1/groups/${g.id}/${op}`, { domainId: d.id }));
    }
    const results = await Promise.all(requests);
    noServerErrors(results);
    const allowed = new Set([200, 409]);
    for (const r of results) expect(allowed.has(r.status), r.text).toBe(true);
    const validDomains = new Set([...domains.map((d) => d.id), ...groups.map((g) => g.defaultDomainId)]);
    results.forEach((r, i) => {
      if (r.status !== 200) return;
      const view = kinds[i] === "read" ? (r.body as unknown as GroupView) : r.body.group;
      expect(validDomains.has(view.domainId)).toBe(true);
      if (kinds[i] !== "read") expect(r.body.domain.id).toBe(r.body.group.domainId);
    });
    const moves = results.filter((_, i) => kinds[i] !== "read");
    expect(moves.some((r) => r.status === 200)).toBe(true);
    expect(moves.some((r) => r.status === 409)).toBe(true);
    expect(moves.filter((r) => r.status === 409).every((r) => r.body.errno === "EBUSY" && r.body.reason === "group-attached")).toBe(true);

    // Replay the log in seq order: it must land every group where GET says it is.
    const events = await c.events(seq);
    expect(events).toHaveLength(kinds.filter((k) => k !== "read").length);
    expect(events.filter((e) => e.errno === null)).toHaveLength(moves.filter((r) => r.status === 200).length);
    const where = new Map(groups.map((g) => [g.id, g.defaultDomainId]));
    const defaults = new Map(groups.map((g) => [g.id, g.defaultDomainId]));
    for (const e of events as EventView[]) {
      if (e.errno !== null) continue;
      const g = e.groupId!;
      if (e.op === "attach-group" || e.op === "replace-group") where.set(g, e.domainId!);
      else if (e.op === "detach-group" && where.get(g) === e.domainId) where.set(g, defaults.get(g)!);
    }
    for (const g of groups) expect((await c.groupNow(g.id)).domainId, `group ${g.id}`).toBe(where.get(g.id));
    // And every domain counts exactly the groups that say they are on it.
    for (const d of domains) {
      const on = groups.filter((g) => where.get(g.id) === d.id).map((g) => g.id);
      expect(await c.groupsOn(d.id)).toEqual(on);
      expect((await c.read<DomainView>(`/v1/domains/${d.id}`)).attachedGroupCount).toBe(on.length);
    }
  });

  it("concurrent deletes of a domain racing attaches to it: never both succeed", async () => {
    const unit = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(unit.id);
    for (let round = 0; round < 10; round++) {
      const d = await c.domain({ unitId: unit.id });
      const [attach, del] = await Promise.all([
        c.post<MovedView>(`/v1/groups/${group.id}/attach`, { domainId: d.id }),
        c.del(`/v1/domains/${d.id}`),
      ]);
      noServerErrors([attach, del]);
      expect(attach.status === 200 && del.status === 204).toBe(false);
      const now = await c.groupNow(group.id);
      if (attach.status === 200) {
        expect(del.status).toBe(409);
        expect(now.domainId).toBe(d.id);
        await c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId: d.id });
      } else {
        expect(del.status).toBe(204);
        expect(attach.status).toBe(404);
        expect(now.domainId).toBe(group.defaultDomainId);
      }
    }
  });
});
