// 32 clients, each on its own keep-alive connection to a real listening
// server, race attach / replace / detach / claim / release and container
// attach / detach over six groups, a few domains and two shared containers,
// with owners from a small set. Whatever the interleaving: no 5xx, every
// refusal a documented problem, one event per attempt, and a database that
// satisfies every invariant and replays to its own state.
import { afterAll, describe, expect, it } from "vitest";
import { makeTestApp, TEST_LIMITS, type TestApp } from "../helpers/app.js";
import { Client, type DomainView, type GroupView, type PageView } from "../helpers/http.js";
import { readTestSnapshot } from "../helpers/invariants.js";
import { buildFixture, CLIENTS, expectRaceOutcome, runClient, type Outcome } from "../helpers/race-load.js";
import { Rng, seedFrom, SocketClient } from "../helpers/server.js";

const DURATION_MS = 4_000;

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

    const snapshot = await readTestSnapshot(t.file);
    expectRaceOutcome(outcomes, snapshot);

    // The file holds what was served.
    const placement = (g: { id: number; domainId: number; owner: string | null; blockingDomainId: number | null }) =>
      ({ id: g.id, domainId: g.domainId, owner: g.owner, blockingDomainId: g.blockingDomainId });
    expect(snapshot.groups.map(placement)).toEqual(served.map(placement));
    expect(snapshot.domains.map((d) => d.id)).toEqual(servedDomains);
  }, 60_000);
});
