// The race of race.test.ts across replicas: three service processes on one
// PostgreSQL database, 32 clients spread over them (each on its own
// keep-alive connection to one replica) racing attach / replace / detach /
// claim / release and container attach / detach for several seconds. The
// fixture is created through the replicas in turn, each object read back
// from the next one. Afterwards: no 5xx and every refusal a documented
// problem; one event per answered attempt, saying what its answer said; the
// database satisfies every invariant (every group on exactly one existing
// domain, no ID budget exceeded, one automatic domain per compatible set)
// and its event log replays to its final state; and every replica serves
// that same state.
import { afterAll, describe, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { readPostgresSnapshot } from "../helpers/invariants.js";
import { buildFixture, CLIENTS, expectRaceOutcome, runClient, type Outcome } from "../helpers/race-load.js";
import { ReplicaClient, replicaEnv, expectReplicasServe, startReplicas, untilReady } from "../helpers/replicas.js";
import { Rng, seedFrom, type ServerProcess } from "../helpers/server.js";

const REPLICAS = 3;
const DURATION_MS = 5_000;

describe("32 clients racing over three replicas on one PostgreSQL database", () => {
  let db: TestDatabase | null = null;
  let replicas: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await db?.drop();
  });

  it("gives one arbitrated answer per attempt, whichever replica takes it, and every replica serves the same consistent, replayable state", async () => {
    const seed = seedFrom("RACE_SEED");
    console.log(`replica race seed ${seed} (RACE_SEED=${seed} to replay the same client schedules)`);
    db = await createTestDatabase("replicas_race");
    replicas = await startReplicas(REPLICAS, replicaEnv(db.url));
    const bases = replicas.map((r) => r.base);
    await Promise.all(bases.map((b) => untilReady(b)));

    const f = await buildFixture(new ReplicaClient(bases));

    const outcomes: Outcome[] = [];
    const deadline = Date.now() + DURATION_MS;
    const master = new Rng(seed);
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => runClient(bases[i % REPLICAS]!, new Rng(master.int(0, 2 ** 31)), f, deadline, outcomes)));

    const snapshot = await readPostgresSnapshot(db.url);
    expectRaceOutcome(outcomes, snapshot);

    await expectReplicasServe(bases, snapshot);
  }, 120_000);
});
