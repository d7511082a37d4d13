// Replica loss: three replicas on one PostgreSQL database under the racing
// load (moves, and named domains created), one of them killed with SIGKILL
// mid-load at a seeded point of the load's progress. Afterwards, read
// through the replicas that are left: every operation the killed replica
// acknowledged (answered 2xx, or refused with an answer) is there, every
// other recorded attempt is one whose answer the kill cut off; the
// survivors answered every request made to them throughout, before and
// after the kill, with no server failure; the database satisfies every
// invariant and replays to its own state, and both survivors serve it.
import { afterAll, describe, expect, it } from "vitest";
import { isServerFailure } from "../helpers/contract.js";
import type { DomainView, EventView } from "../helpers/http.js";
import { checkInvariants, checkReplay, readPostgresSnapshot } from "../helpers/invariants.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import {
  acknowledgedMoveViolations, buildFixture, duplicateAutomaticDomains, malformedAnswers, runSteadyClient, steadyLoad,
} from "../helpers/race-load.js";
import { ReplicaClient, replicaEnv, expectReplicasServe, sleep, startReplicas, untilReady } from "../helpers/replicas.js";
import { Rng, seedFrom, type ServerProcess } from "../helpers/server.js";

const REPLICAS = 3;
const CLIENTS = 24;
const VICTIM = 0;
/** Answers received from the survivors after the kill before the load stops (progress, not time). */
const AFTER_KILL = 600;
const CAP_MS = 20_000;

async function until(condition: () => boolean, capMs: number): Promise<void> {
  const end = Date.now() + capMs;
  while (!condition() && Date.now() < end) await sleep(5);
}

describe("kill -9 one of three replicas under load", () => {
  let db: TestDatabase | null = null;
  let replicas: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(replicas.map((r, i) => (i === VICTIM ? r.kill9() : r.stop())));
    await db?.drop();
  });

  it("keeps everything the killed replica acknowledged, and the others keep serving throughout", async () => {
    const seed = seedFrom("LOSS_SEED");
    console.log(`replica loss seed ${seed} (LOSS_SEED=${seed} to replay the same schedule)`);
    const rng = new Rng(seed);
    db = await createTestDatabase("replicas_loss");
    replicas = await startReplicas(REPLICAS, replicaEnv(db.url));
    const bases = replicas.map((r) => r.base);
    await Promise.all(bases.map((b) => untilReady(b)));
    const f = await buildFixture(new ReplicaClient(bases));

    const load = steadyLoad(REPLICAS);
    const clients = Array.from({ length: CLIENTS }, (_, i) => {
      const replica = i % REPLICAS;
      return runSteadyClient(
        { base: bases[replica]!, replica, name: `c${i}`, onNoAnswer: replica === VICTIM ? "stop" : "reconnect", createShare: 0.1 },
        new Rng(rng.int(0, 2 ** 31)), f, load,
      );
    });

    // The kill lands at a point of the victim's progress, then a few ms later: anywhere inside a request.
    const killAfter = rng.int(100, 300);
    await until(() => load.answered[VICTIM]! >= killAfter, CAP_MS);
    await sleep(rng.int(0, 10));
    await replicas[VICTIM]!.kill9();
    const survivorsAtKill = load.answered.reduce((n, a, i) => (i === VICTIM ? n : n + a), 0);
    await until(() => load.answered.reduce((n, a, i) => (i === VICTIM ? n : n + a), 0) >= survivorsAtKill + AFTER_KILL, CAP_MS);
    load.done = true;
    await Promise.all(clients);

    const survivors = bases.filter((_, i) => i !== VICTIM);
    const fromVictim = load.moves.filter((m) => m.replica === VICTIM);
    const cutOff = [...fromVictim, ...load.creates.filter((c) => c.replica === VICTIM)].filter((m) => m.answer === null);
    console.log(`killed replica ${VICTIM} after ${load.answered[VICTIM]} answers (aimed at ${killAfter}); ${cutOff.length} requests cut off; ${load.moves.length} moves, ${load.creates.length} creates in all`);
    // The kill came mid-load, not after the load gave up waiting for it.
    expect(load.answered[VICTIM]).toBeGreaterThanOrEqual(killAfter);

    // The survivors answered everything, before and after the kill; nobody got a server failure.
    const toSurvivors = [...load.moves, ...load.creates].filter((m) => m.replica !== VICTIM);
    expect(toSurvivors.filter((m) => m.answer === null).map((m) => m.error)).toEqual([]);
    const answered = [...load.moves, ...load.creates].filter((m) => m.answer !== null);
    expect(answered.filter((m) => isServerFailure(m.answer!.status, m.answer!.body)).map((m) => `${m.answer!.status} ${m.answer!.text}`)).toEqual([]);
    expect(malformedAnswers(load.moves.filter((m) => m.answer !== null).map((m) => ({ planned: m.planned, answer: m.answer! })))).toEqual([]);
    expect(load.creates.filter((c) => c.answer !== null && c.answer.status !== 201).map((c) => c.answer!.text)).toEqual([]);

    // Read through a survivor: every acknowledged attempt is in the log, and nothing no one attempted.
    const reader = new ReplicaClient(survivors);
    const events = await reader.events();
    const attempts = events.filter((e) => e.kind === null);
    expect(acknowledgedMoveViolations(load.moves, attempts)).toEqual([]);
    // Every acknowledged domain is there, as acknowledged, read through each survivor.
    const acked = load.creates.filter((c) => c.answer?.status === 201).map((c) => c.answer!.body);
    expect(acked.length).toBeGreaterThan(0);
    for (const d of acked) {
      const r = await reader.send<DomainView>("GET", `/v1/domains/${d.id}`);
      expect({ status: r.status, name: r.body.name, type: r.body.type, driver: r.body.driver }).toEqual({ status: 200, name: d.name, type: d.type, driver: d.driver });
    }

    // The database: consistent, replayable, and what both survivors serve.
    const snapshot = await readPostgresSnapshot(db.url);
    expect(checkInvariants(snapshot)).toEqual([]);
    expect(checkReplay(snapshot)).toEqual([]);
    expect(duplicateAutomaticDomains(snapshot)).toEqual([]);
    const eventOf = (e: Pick<EventView, "seq" | "op" | "groupId" | "owner" | "domainId" | "errno" | "reason" | "kind" | "objectId">) =>
      [e.seq, e.op, e.groupId, e.owner, e.domainId, e.errno, e.reason, e.kind, e.objectId];
    expect(events.map(eventOf)).toEqual(snapshot.events.map(eventOf));
    await expectReplicasServe(survivors, snapshot);
  }, 120_000);
});
