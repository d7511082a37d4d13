// The racing load of the race tests (one process: test/server/race.test.ts;
// three replicas on one PostgreSQL: test/server/replicas-race.test.ts and the
// replica-loss and database-restart tests): a small fixture of units,
// groups, domains and containers; clients on their own keep-alive
// connections making seeded random attach / replace / detach / claim /
// release and container attach / detach attempts; and what must hold of the
// answers and the database afterwards.
import { expect } from "vitest";
import { isServerFailure, problemViolation } from "./contract.js";
import type { Client, DomainView, GroupView } from "./http.js";
import { checkInvariants, checkReplay, type MoveOp, type Snapshot } from "./invariants.js";
import { type Answer, type Rng, SocketClient } from "./server.js";

export const CLIENTS = 32;
/** Every client makes at least this many attempts, however slow the machine, and at most the second. */
export const MIN_REQUESTS_PER_CLIENT = 30;
export const MAX_REQUESTS_PER_CLIENT = 400;
const OWNERS = ["alice", "bob", "carol"] as const;

export interface Fixture {
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

/** The objects buildFixture creates, by kind: the creates in the event log before the race. */
export const FIXTURE_CREATES = { unit: 4, group: 6, device: 7, domain: 7, container: 2 } as const;

/**
 * Two VT-d units with 3 domain IDs each (one without snoop control), two
 * SMMUv3 (one with 5 ASIDs, of which the three groups' default domains hold
 * three: the ASID space is shared by both SMMUs).
 */
export async function buildFixture(c: Client): Promise<Fixture> {
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

export interface Planned {
  readonly op: MoveOp;
  readonly groupId: number;
  readonly owner: string | null;
  readonly route: string;
  readonly body: Record<string, unknown>;
}

export function plan(rng: Rng, f: Fixture): Planned {
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

export type MoveAnswer = Answer<{ group?: GroupView; domain?: DomainView; errno?: string; reason?: string }>;

export interface Outcome {
  readonly planned: Planned;
  readonly answer: MoveAnswer;
}

/** What the client learns from an answer, to keep its next attempts meaningful. */
export function learn(f: Fixture, planned: Planned, answer: MoveAnswer): void {
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

/** What the event of an answered attempt must say, as a multiset key. */
export function eventKey(op: string, groupId: number | null, owner: string | null, errno: string | null, reason: string | null): string {
  return JSON.stringify([op, groupId, owner, errno, reason]);
}

/** The event key an answered attempt must have been recorded with. */
export function outcomeKey(o: Outcome): string {
  const failed = o.answer.status >= 300 ? o.answer.body : null;
  return eventKey(o.planned.op, o.planned.groupId, o.planned.owner, failed?.errno ?? null, failed?.reason ?? null);
}

export function countKeys(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

export async function runClient(base: string, rng: Rng, f: Fixture, deadline: number, out: Outcome[]): Promise<void> {
  const client = new SocketClient(base);
  try {
    for (let i = 0; i < MAX_REQUESTS_PER_CLIENT && (i < MIN_REQUESTS_PER_CLIENT || Date.now() < deadline); i++) {
      const planned = plan(rng, f);
      const answer = await client.send<Outcome["answer"]["body"]>("POST", planned.route, planned.body);
      out.push({ planned, answer });
      learn(f, planned, answer);
    }
  } finally {
    client.close();
  }
}

/**
 * What must hold after a race that lost nothing: the load did race; no
 * server failure and every refusal a documented problem; one event per
 * answered attempt saying what the answer said, after the fixture's creates;
 * the database satisfies every invariant and replays to its own state.
 */
export function expectRaceOutcome(outcomes: Outcome[], snapshot: Snapshot): void {
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
  expect(malformedAnswers(outcomes)).toEqual([]);
  // Every request was well-formed: none is refused by the schema.
  expect(outcomes.filter((o) => o.answer.status === 400).map((o) => o.answer.text)).toEqual([]);

  expect(checkInvariants(snapshot)).toEqual([]);
  expect(checkReplay(snapshot)).toEqual([]);
  expect(duplicateAutomaticDomains(snapshot)).toEqual([]);

  // One event per answered attempt, saying what the answer said.
  const expected = countKeys(outcomes.map(outcomeKey));
  const attempts = snapshot.events.filter((e) => e.kind === null);
  const recorded = countKeys(attempts.map((e) => eventKey(e.op, e.groupId, e.owner, e.errno, e.reason)));
  expect(attempts).toHaveLength(outcomes.length);
  // Before them, the fixture's creates, one per object, and no other topology change (the race creates nothing).
  const creates = snapshot.events.filter((e) => e.kind !== null);
  expect(creates.map((e) => [e.seq, e.op])).toEqual(creates.map((_, i) => [i + 1, "create"]));
  const byKind = countKeys(creates.map((e) => e.kind!));
  expect(Object.fromEntries(byKind)).toEqual(FIXTURE_CREATES);
  expect([...recorded].sort()).toEqual([...expected].sort());
}

/** Answers that are not 2xx and not a well-formed, catalogued problem document. */
export function malformedAnswers(outcomes: readonly Outcome[]): string[] {
  return outcomes
    .filter((o) => o.answer.status >= 300)
    .map((o) => ({ o, why: problemViolation(o.answer.status, o.answer.contentType, o.answer.body) }))
    .filter((x) => x.why !== null)
    .map((x) => `${x.o.planned.route} ${JSON.stringify(x.o.planned.body)}: ${x.why}`);
}

/**
 * One automatic domain per compatible set: a container search tries every
 * automatic domain of its container (and search) before it allocates one,
 * so two automatic domains of one container and search, finalised on the
 * same unit with the same configuration, mean a search did not see a domain
 * allocated before it (on another replica: a stale model). None of the race
 * fixture's groups needs a domain its unit's other groups could not share
 * (no reserved regions, no PASIDs), so such a pair is always a violation here.
 */
export function duplicateAutomaticDomains(s: Snapshot): string[] {
  const seen = new Map<string, number>();
  const v: string[] = [];
  for (const d of s.domains) {
    if (!d.auto) continue;
    const key = JSON.stringify([d.containerId, d.search, d.driver, d.unitId, Object.entries(d.config).sort()]);
    const first = seen.get(key);
    if (first === undefined) seen.set(key, d.id);
    else v.push(`automatic domains ${first} and ${d.id} of container ${d.containerId} (${d.search} search) are alike on unit ${d.unitId}: ${JSON.stringify(d.config)}`);
  }
  return v;
}

// ---- load that outlives failures (replica loss, database restart) ----------

/** One attempt of a steady client: its answer, or why none came. */
export interface Attempted {
  readonly replica: number;
  readonly planned: Planned;
  readonly answer: MoveAnswer | null;
  readonly error: string | null;
}

/** A domain a steady client asked for by name: the answer, or why none came. */
export interface Created {
  readonly replica: number;
  readonly name: string;
  readonly answer: Answer<DomainView> | null;
  readonly error: string | null;
}

export interface SteadyLoad {
  readonly moves: Attempted[];
  readonly creates: Created[];
  /** Answers received so far, per replica. */
  readonly answered: number[];
  /** Set to stop every steady client after its current request. */
  done: boolean;
}

export function steadyLoad(replicas: number): SteadyLoad {
  return { moves: [], creates: [], answered: Array.from({ length: replicas }, () => 0), done: false };
}

export interface SteadyClientOptions {
  readonly base: string;
  readonly replica: number;
  readonly name: string;
  /** After a request gets no answer: stop (its replica is gone), or reconnect and go on. */
  readonly onNoAnswer: "stop" | "reconnect";
  /** Share of attempts that create a named paging domain instead of moving a group. */
  readonly createShare: number;
}

/**
 * Makes attempts one at a time until `load.done`, recording each with its
 * answer or its failure. After a 503 it waits a little before the next one
 * (a client honouring Retry-After would wait longer; the test wants to see
 * the recovery soon).
 */
export async function runSteadyClient(o: SteadyClientOptions, rng: Rng, f: Fixture, load: SteadyLoad): Promise<void> {
  let client = new SocketClient(o.base, 15_000);
  let n = 0;
  try {
    while (!load.done) {
      let status: number;
      if (rng.chance(o.createShare)) {
        const name = `${o.name}-d${++n}`;
        const driver = rng.pick(["intel-vtd", "arm-smmu-v3"]);
        try {
          const answer = await client.send<DomainView>("POST", "/v1/domains", { type: "paging", driver, name });
          load.creates.push({ replica: o.replica, name, answer, error: null });
          status = answer.status;
        } catch (error) {
          load.creates.push({ replica: o.replica, name, answer: null, error: String(error) });
          if (o.onNoAnswer === "stop") return;
          client.close();
          client = new SocketClient(o.base, 15_000);
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
      } else {
        const planned = plan(rng, f);
        try {
          const answer = await client.send<MoveAnswer["body"]>("POST", planned.route, planned.body);
          load.moves.push({ replica: o.replica, planned, answer, error: null });
          learn(f, planned, answer);
          status = answer.status;
        } catch (error) {
          load.moves.push({ replica: o.replica, planned, answer: null, error: String(error) });
          if (o.onNoAnswer === "stop") return;
          client.close();
          client = new SocketClient(o.base, 15_000);
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
      }
      load.answered[o.replica]!++;
      if (status === 503) await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    client.close();
  }
}

/** The answer says the service could not take the request now: its outcome is unknown. */
export function isUnavailable(answer: Answer<unknown> | null): boolean {
  return answer === null || answer.status === 503;
}

/**
 * Nothing acknowledged was lost and nothing was made up: every attempt that
 * got an answer other than 503 has its event, saying what the answer said;
 * every other event is an attempt whose outcome the client never learned
 * (no answer, or 503): same op, group and owner. `events`: the attempts in
 * the log (kind null).
 */
export function acknowledgedMoveViolations(moves: readonly Attempted[], events: readonly { op: string; groupId: number | null; owner: string | null; errno: string | null; reason: string | null }[]): string[] {
  const v: string[] = [];
  const recorded = countKeys(events.map((e) => eventKey(e.op, e.groupId, e.owner, e.errno, e.reason)));
  const acked = moves.filter((m) => !isUnavailable(m.answer));
  const expected = countKeys(acked.map((m) => outcomeKey({ planned: m.planned, answer: m.answer! })));
  for (const [key, n] of expected) {
    const have = recorded.get(key) ?? 0;
    if (have < n) v.push(`${n} acknowledged attempts ${key}, ${have} recorded`);
    recorded.set(key, have - n);
  }
  // What is left must be attempts whose outcome is unknown.
  const unknown = countKeys(moves.filter((m) => isUnavailable(m.answer)).map((m) => JSON.stringify([m.planned.op, m.planned.groupId, m.planned.owner])));
  for (const [key, n] of recorded) {
    if (n <= 0) continue;
    const [op, groupId, owner] = JSON.parse(key) as [string, number | null, string | null];
    const head = JSON.stringify([op, groupId, owner]);
    const left = unknown.get(head) ?? 0;
    if (left < n) v.push(`${n} recorded attempts ${key} that no unanswered attempt explains (${left} unanswered ${head})`);
    unknown.set(head, left - n);
  }
  return v;
}
