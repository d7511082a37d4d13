// Database restart: three replicas on a private PostgreSQL instance under the
// racing load (moves, and named domains created); the database server is
// stopped mid-load (a fast shutdown; then again with an immediate one, as a
// crash leaves it) and started again a moment later on the same port and data. Meanwhile every request gets an
// answer: its outcome, or 503 problem+json with Retry-After, never another
// 5xx. The replicas recover by themselves (no restart): /readyz answers 200
// again and each takes writes again. Nothing acknowledged is lost: every
// attempt answered other than 503 has its event, and every other recorded
// attempt is one answered 503; every acknowledged domain exists. The
// database satisfies every invariant, replays to its own state, and every
// replica serves it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isServerFailure, problemViolation } from "../helpers/contract.js";
import type { DomainView } from "../helpers/http.js";
import { checkInvariants, checkReplay, readPostgresSnapshot } from "../helpers/invariants.js";
import { startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";
import {
  acknowledgedMoveViolations, buildFixture, duplicateAutomaticDomains, malformedAnswers, runSteadyClient, steadyLoad,
  type Attempted, type Created,
} from "../helpers/race-load.js";
import { readiness, ReplicaClient, replicaEnv, expectReplicasServe, sleep, startReplicas, untilReady } from "../helpers/replicas.js";
import { Rng, seedFrom, type ServerProcess } from "../helpers/server.js";

const REPLICAS = 3;
const CLIENTS = 12;
/** Answers before the stop, and after the recovery before the load stops (progress, not time). */
const BEFORE_STOP = 200;
const AFTER_RECOVERY = 300;
const CAP_MS = 20_000;

async function until(condition: () => boolean, capMs: number): Promise<void> {
  const end = Date.now() + capMs;
  while (!condition() && Date.now() < end) await sleep(5);
}

/** What is wrong with an answer given while the database may be away: null when it is an outcome or a proper 503. */
function unavailableViolation(a: Attempted | Created): string | null {
  if (a.answer === null) return `no answer: ${a.error}`;
  const { status, contentType, headers, body, text } = a.answer;
  if (status !== 503) return isServerFailure(status, body) ? `${status} ${text}` : null;
  if (headers["retry-after"] === undefined) return `503 without Retry-After: ${text}`;
  const why = problemViolation(status, contentType, body);
  return why === null ? null : `503 that is not a catalogued problem: ${why}: ${text}`;
}

describe("PostgreSQL restarted under three replicas' load", () => {
  let pg: PrivatePostgres | null = null;
  let replicas: ServerProcess[] = [];
  beforeAll(async () => {
    pg = await startPrivatePostgres();
  });
  afterEach(async () => {
    await Promise.all(replicas.map((r) => r.kill9()));
    replicas = [];
  });
  afterAll(async () => {
    await pg?.destroy();
  });

  // "stop": a fast shutdown (every connection cut, a clean checkpoint);
  // "kill": an immediate one, as a crash of the database server leaves it
  // (recovery from the WAL on start: what was committed must still be there).
  it.each(["stop", "kill"] as const)("%s: answers 503 with Retry-After while the database is away, recovers without a restart, and loses nothing acknowledged", async (how) => {
    const seed = seedFrom("RESTART_SEED");
    console.log(`database ${how} seed ${seed} (RESTART_SEED=${seed} to replay the same schedule)`);
    const rng = new Rng(seed);
    const url = await pg!.createDatabase(`arbiter_${how}`);
    replicas = await startReplicas(REPLICAS, replicaEnv(url));
    const bases = replicas.map((r) => r.base);
    await Promise.all(bases.map((b) => untilReady(b)));
    const f = await buildFixture(new ReplicaClient(bases));

    const load = steadyLoad(REPLICAS);
    const total = () => load.answered.reduce((n, a) => n + a, 0);
    const clients = Array.from({ length: CLIENTS }, (_, i) => runSteadyClient(
      { base: bases[i % REPLICAS]!, replica: i % REPLICAS, name: `c${i}`, onNoAnswer: "reconnect", createShare: 0.1 },
      new Rng(rng.int(0, 2 ** 31)), f, load,
    ));

    await until(() => total() >= BEFORE_STOP, CAP_MS);
    const beforeStop = { moves: load.moves.length, creates: load.creates.length };
    await (how === "stop" ? pg!.stop() : pg!.kill());
    // While it is away, the replicas say so.
    const away = Date.now();
    const readyWhileAway: number[] = [];
    while (Date.now() - away < 1_500) {
      readyWhileAway.push(...(await Promise.all(bases.map((b) => readiness(b)))));
      await sleep(100);
    }
    await pg!.start();
    const duringOutage = {
      moves: load.moves.slice(beforeStop.moves),
      creates: load.creates.slice(beforeStop.creates),
    };

    // They come back by themselves: ready again, and taking writes again, each of them.
    await Promise.all(bases.map((b) => untilReady(b)));
    const afterRecovery = total();
    const movesAtRecovery = load.moves.length;
    const fresh: DomainView[] = [];
    for (const [i, base] of bases.entries()) {
      const c = new ReplicaClient([base]);
      fresh.push(await c.domain({ driver: "intel-vtd", name: `after-restart-${i}` }));
    }
    await until(() => total() >= afterRecovery + AFTER_RECOVERY, CAP_MS);
    load.done = true;
    await Promise.all(clients);

    const all: (Attempted | Created)[] = [...load.moves, ...load.creates];
    const unavailable = all.filter((a) => a.answer?.status === 503).length;
    console.log(`${load.moves.length} moves, ${load.creates.length} creates; ${unavailable} answered 503; ${duringOutage.moves.length + duringOutage.creates.length} requests made during the outage; readiness while away: ${JSON.stringify(Object.fromEntries(countBy(readyWhileAway)))}`);

    // Every request got an answer: an outcome, or a proper 503; never a 500.
    expect(all.map(unavailableViolation).filter((v) => v !== null)).toEqual([]);
    expect(malformedAnswers(load.moves.filter((m) => m.answer !== null && m.answer.status !== 503).map((m) => ({ planned: m.planned, answer: m.answer! })))).toEqual([]);
    // The outage was seen: writes were refused with 503 and the replicas were not ready while it lasted.
    expect(unavailable).toBeGreaterThan(0);
    expect(readyWhileAway.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(readyWhileAway.filter((s) => s !== 503 && s !== 200)).toEqual([]);
    // And the load went on after it: acknowledged moves after the recovery.
    expect(load.moves.slice(movesAtRecovery).filter((m) => m.answer !== null && m.answer.status < 500).length).toBeGreaterThan(0);

    // Nothing acknowledged is lost; every other recorded attempt is one answered 503.
    const reader = new ReplicaClient(bases);
    const events = await reader.events();
    expect(acknowledgedMoveViolations(load.moves, events.filter((e) => e.kind === null))).toEqual([]);
    const acked = [...load.creates.filter((c) => c.answer?.status === 201).map((c) => c.answer!.body), ...fresh];
    for (const d of acked) {
      const r = await reader.send<DomainView>("GET", `/v1/domains/${d.id}`);
      expect({ status: r.status, name: r.body.name }, `acknowledged domain ${d.id}`).toEqual({ status: 200, name: d.name });
    }

    const snapshot = await readPostgresSnapshot(url);
    expect(checkInvariants(snapshot)).toEqual([]);
    expect(checkReplay(snapshot)).toEqual([]);
    expect(duplicateAutomaticDomains(snapshot)).toEqual([]);
    await expectReplicasServe(bases, snapshot);
  }, 120_000);
});

function countBy(values: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}
