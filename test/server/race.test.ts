// 32 clients, each on its own keep-alive connection to a real listening
// server, race attach / replace / detach / claim / release and container
// attach / detach over six groups, a few domains and two shared containers,
// with owners from a small set. Whatever the interleaving: no 5xx, every
// refusal a documented problem, one event per attempt, and a database that
// satisfies every invariant and replays to its own state.
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { makeTestApp, TEST_LIMITS, type TestApp } from "../helpers/app.js";
import { isServerFailure, problemViolation } from "../helpers/contract.js";
import { Client, type DomainView, type GroupView, type PageView } from "../helpers/http.js";
import { checkInvariants, checkReplay, readTestSnapshot, type MoveOp } from "../helpers/invariants.js";
import { Rng, seedFrom, SocketClient, type Answer } from "../helpers/server.js";

const CLIENTS = 32;
const DURATION_MS = 4_000;
/** Every client makes at least this many attempts, however slow the machine, and at most the second. */
const MIN_REQUESTS_PER_CLIENT = 30;
const MAX_REQUESTS_PER_CLIENT = 400;
const OWNERS = ["alice", "bob", "carol"] as const;

interface Fixture {
  readonly groups: GroupView[];
  /** deviceId -> its group, for the single- and two-device groups. */
  readonly devices: { id: number; groupId: number }[];
  readonly containers: number[];
  /** Every domain a client may name; grows with blocking and automatic domains seen in answers. */
  readonly domains: Set<number>;
  /** The domain each group was last seen on, to make detaches that mean something. */
  readonly lastSeen: Map<number, number>;
  /** The owner each group was last seen with: clients often act as it, so owned groups still move. */
  readonly lastOwner: Map<number, string | null>;
}

/**
 * Two VT-d units with 3 domain IDs each (one without snoop control), two
 * SMMUv3 (one with 5 ASIDs, of which the three groups' default domains hold
 * three: the ASID space is shared by both SMMUs).
 */
async function buildFixture(c: Client): Promise<Fixture> {
  const vtd0 = await c.unit({ driver: "intel-vtd", capabilities: { domainIds: 3 } });
  const vtd1 = await c.unit({ driver: "intel-vtd", capabilities: { domainIds: 3, snoopControl: false } });
  const smmu0 = await c.unit({ driver: "arm-smmu-v3", capabilities: { domainIds: 5 } });
  const smmu1 = await c.unit({ driver: "arm-smmu-v3" });
  const made = [
    await c.groupWith(vtd0.id), await c.groupWith(vtd0.id, [{}, {}]), await c.groupWith(vtd1.id),
    await c.groupWith(smmu0.id, [{ canwbs: true }]), await c.groupWith(smmu0.id, [{ requiresIdentity: true }]),
    await c.groupWith(smmu1.id),
  ];
  const domains: DomainView[] = [
    await c.domain({ driver: "intel-vtd" }), await c.domain({ driver: "intel-vtd" }),
    await c.domain({ driver: "intel-vtd", config: { enforceCacheCoherency: true } }),
    await c.domain({ driver: "intel-vtd", type: "identity" }),
    await c.domain({ driver: "arm-smmu-v3" }), await c.domain({ driver: "arm-smmu-v3" }),
    await c.domain({ driver: "arm-smmu-v3", type: "blocked" }),
  ];
  const containers = [(await c.container()).id, (await c.container({ kind: "type1" })).id];
  const groups = made.map((m) => m.group);
  return {
    groups,
    devices: made.flatMap((m) => m.devices.map((d) => ({ id: d.id, groupId: m.group.id }))),
    containers,
    domains: new Set([...domains.map((d) => d.id), ...groups.map((g) => g.defaultDomainId)]),
    lastSeen: new Map(groups.map((g) => [g.id, g.domainId])),
    lastOwner: new Map(groups.map((g) => [g.id, null])),
  };
}

interface Planned {
  readonly op: MoveOp;
  readonly groupId: number;
  readonly owner: string | null;
  readonly route: string;
  readonly body: Record<string, unknown>;
}

function plan(rng: Rng, f: Fixture): Planned {
  const group = rng.pick(f.groups);
  const owner = rng.chance(0.5) ? f.lastOwner.get(group.id)! : rng.pick([null, ...OWNERS]);
  const withOwner = (body: Record<string, unknown>) => (owner === null ? body : { ...body, owner });
  // A domain that exists, or once in a while one that does not.
  const anyDomain = () => (rng.chance(0.03) ? 999_999 : rng.pick([...f.domains]));
  const roll = rng.int(1, 100);
  if (roll <= 18) return { op: "attach-group", groupId: group.id, owner, route: `/v1/groups/${group.id}/attach`, body: withOwner({ domainId: anyDomain() }) };
  if (roll <= 32) return { op: "replace-group", groupId: group.id, owner, route: `/v1/groups/${group.id}/replace`, body: withOwner({ domainId: anyDomain() }) };
  if (roll <= 46) {
    const domainId = rng.chance(0.8) ? f.lastSeen.get(group.id)! : anyDomain();
    return { op: "detach-group", groupId: group.id, owner, route: `/v1/groups/${group.id}/detach`, body: withOwner({ domainId }) };
  }
  if (roll <= 56) {
    const claimer = owner ?? rng.pick(OWNERS);
    return { op: "claim", groupId: group.id, owner: claimer, route: `/v1/groups/${group.id}/claim`, body: { owner: claimer } };
  }
  if (roll <= 66) {
    const releaser = owner ?? rng.pick(OWNERS);
    return { op: "release", groupId: group.id, owner: releaser, route: `/v1/groups/${group.id}/release`, body: { owner: releaser } };
  }
  if (roll <= 80) {
    const ct = rng.pick(f.containers);
    return { op: "container-attach", groupId: group.id, owner, route: `/v1/containers/${ct}/attach`, body: withOwner({ groupId: group.id }) };
  }
  if (roll <= 92) {
    const ct = rng.pick(f.containers);
    return { op: "container-detach", groupId: group.id, owner, route: `/v1/containers/${ct}/detach`, body: withOwner({ groupId: group.id }) };
  }
  const device = rng.pick(f.devices);
  const attach = rng.chance(0.5);
  const domainId = attach ? anyDomain() : f.lastSeen.get(device.groupId)!;
  return {
    op: attach ? "attach-device" : "detach-device", groupId: device.groupId, owner,
    route: `/v1/devices/${device.id}/${attach ? "attach" : "detach"}`, body: withOwner({ domainId }),
  };
}

interface Outcome {
  readonly planned: Planned;
  readonly answer: Answer<{ group?: GroupView; domain?: DomainView; errno?: string; reason?: string }>;
}

/** What the event of an answered attempt must say, as a multiset key. */
function eventKey(op: string, groupId: number | null, owner: string | null, errno: string | null, reason: string | null): string {
  return JSON.stringify([op, groupId, owner, errno, reason]);
}

function countKeys(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

async function runClient(base: string, rng: Rng, f: Fixture, deadline: number, out: Outcome[]): Promise<void> {
  const client = new SocketClient(base);
  try {
    for (let i = 0; i < MAX_REQUESTS_PER_CLIENT && (i < MIN_REQUESTS_PER_CLIENT || Date.now() < deadline); i++) {
      const planned = plan(rng, f);
      const answer = await client.send<Outcome["answer"]["body"]>("POST", planned.route, planned.body);
      out.push({ planned, answer });
      // An automatic domain freed since it was seen: stop naming it.
      if (answer.body?.reason === "no-such-domain" && typeof planned.body.domainId === "number") f.domains.delete(planned.body.domainId);
      const placed = answer.status === 200 ? answer.body : null;
      if (placed?.group && placed.domain) {
        f.lastSeen.set(placed.group.id, placed.domain.id);
        f.lastOwner.set(placed.group.id, placed.group.owner);
        f.domains.add(placed.domain.id);
        if (placed.group.blockingDomainId !== null) f.domains.add(placed.group.blockingDomainId);
      }
    }
  } finally {
    client.close();
  }
}

describe("32 clients racing over real sockets", () => {
  let t: TestApp | null = null;
  afterAll(async () => {
    await t?.close();
  });

  it("answer every attempt with its outcome or a documented problem, and leave a consistent, replayable database", async () => {
    const seed = seedFrom("RACE_SEED");
    console.log(`race seed ${seed} (RACE_SEED=${seed} to replay the same client schedules)`);
    // 32 clients from one address: rate limits would measure themselves, not the arbitration.
    t = await makeTestApp({ ...TEST_LIMITS, rateLimitReads: 0, rateLimitWrites: 0 });
    const app = t.app;
    const setup = new Client(app);
    const f = await buildFixture(setup);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    if (address === null || typeof address === "string") throw new Error(`not listening on TCP: ${String(address)}`);
    const base = `http://127.0.0.1:${address.port}`;

    const outcomes: Outcome[] = [];
    const deadline = Date.now() + DURATION_MS;
    const master = new Rng(seed);
    await Promise.all(Array.from({ length: CLIENTS }, () => runClient(base, new Rng(master.int(0, 2 ** 31)), f, deadline, outcomes)));

    // The served state, to compare with the file once the server is closed.
    const reader = new SocketClient(base);
    const served = (await reader.send<PageView<GroupView>>("GET", "/v1/groups?limit=1000")).body.items;
    const servedDomains = (await reader.send<PageView<DomainView>>("GET", "/v1/domains?limit=1000")).body.items.map((d) => d.id);
    reader.close();
    await app.close();

    // The load did race: every client got answers, and the contract's main outcomes all happened.
    expect(outcomes.length).toBeGreaterThanOrEqual(CLIENTS * MIN_REQUESTS_PER_CLIENT);
    const statuses = countKeys(outcomes.map((o) => `${o.planned.op} ${o.answer.status}`));
    console.log(`${outcomes.length} attempts: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    const count = (ops: string[], status: (s: number) => boolean) =>
      outcomes.filter((o) => ops.includes(o.planned.op) && status(o.answer.status)).length;
    const ok = (s: number) => s === 200;
    for (const ops of [["attach-group", "attach-device"], ["replace-group"], ["detach-group", "detach-device"], ["claim"], ["release"], ["container-attach"], ["container-detach"]]) {
      expect(count(ops, ok), `successful ${ops.join(" or ")}`).toBeGreaterThan(0);
    }
    expect(outcomes.filter((o) => o.answer.status === 403).length, "EPERM refusals").toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.answer.status === 409).length, "EBUSY / EINVAL refusals").toBeGreaterThan(0);

    // No server failure (507 is the contract's ENOSPC: IDs run out on the small units); every refusal a documented problem.
    expect(outcomes.filter((o) => isServerFailure(o.answer.status, o.answer.body)).map((o) => `${o.planned.route} ${o.answer.text}`)).toEqual([]);
    const malformed = outcomes
      .filter((o) => o.answer.status >= 300)
      .map((o) => ({ o, why: problemViolation(o.answer.status, o.answer.contentType, o.answer.body) }))
      .filter((x) => x.why !== null)
      .map((x) => `${x.o.planned.route} ${JSON.stringify(x.o.planned.body)}: ${x.why}`);
    expect(malformed).toEqual([]);
    // Every request was well-formed: none is refused by the schema.
    expect(outcomes.filter((o) => o.answer.status === 400).map((o) => o.answer.text)).toEqual([]);

    const snapshot = await readTestSnapshot(t.file);
    expect(checkInvariants(snapshot)).toEqual([]);
    expect(checkReplay(snapshot)).toEqual([]);

    // One event per answered attempt, saying what the answer said.
    const expected = countKeys(outcomes.map((o) => {
      const failed = o.answer.status >= 300 ? o.answer.body : null;
      return eventKey(o.planned.op, o.planned.groupId, o.planned.owner, failed?.errno ?? null, failed?.reason ?? null);
    }));
    const attempts = snapshot.events.filter((e) => e.kind === null);
    const recorded = countKeys(attempts.map((e) => eventKey(e.op, e.groupId, e.owner, e.errno, e.reason)));
    expect(attempts).toHaveLength(outcomes.length);
    // Before them, the fixture's creates, one per object, and no other topology change (the race creates nothing).
    const creates = snapshot.events.filter((e) => e.kind !== null);
    expect(creates.map((e) => [e.seq, e.op])).toEqual(creates.map((_, i) => [i + 1, "create"]));
    const byKind = countKeys(creates.map((e) => e.kind!));
    expect(Object.fromEntries(byKind)).toEqual({ unit: 4, group: 6, device: 7, domain: 7, container: 2 });
    expect([...recorded].sort()).toEqual([...expected].sort());

    // The file holds what was served.
    const placement = (g: { id: number; domainId: number; owner: string | null; blockingDomainId: number | null }) =>
      ({ id: g.id, domainId: g.domainId, owner: g.owner, blockingDomainId: g.blockingDomainId });
    expect(snapshot.groups.map(placement)).toEqual(served.map(placement));
    expect(snapshot.domains.map((d) => d.id)).toEqual(servedDomains);
  }, 60_000);
});
