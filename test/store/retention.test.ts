// The event log keeps the most recent `eventRetention` events: older ones are
// pruned as new ones are written, across restarts, without gaps in seq.
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { ANONYMOUS } from "../../src/core/caller.js";
import { createContainer, createDomain, createGroup, createUnit } from "../../src/core/objects.js";
import { attachGroup, detachGroup } from "../../src/core/group-moves.js";
import { parseConfig, ConfigError } from "../../src/config.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { DRIVERS } from "../../src/drivers/index.js";

const db = tempDbFile();
afterAll(() => rmSync(db.dir, { recursive: true, force: true }));

async function cycles(store: SqliteStore, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await store.execute((m) => attachGroup(m, ANONYMOUS, 1, 2));
    await store.execute((m) => detachGroup(m, ANONYMOUS, 1, 2));
  }
}

describe("event retention", () => {
  it("keeps the newest N events, in order, and goes on doing so after a restart", async () => {
    let store = await SqliteStore.open({ drivers: DRIVERS, file: db.file, migrationsDir: MIGRATIONS, eventRetention: 10 });
    await store.execute((m) => createUnit(m, { name: "u", driver: "mock" }));
    await store.execute((m) => createGroup(m, { name: "g", unitId: 1 })); // default domain 1
    await store.execute((m) => createDomain(m, { type: "paging", unitId: 1 })); // domain 2
    await cycles(store, 15); // 30 events after the 3 creates
    let events = await store.events(0, 1000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 24 + i));
    await store.close();

    store = await SqliteStore.open({ drivers: DRIVERS, file: db.file, migrationsDir: MIGRATIONS, eventRetention: 10 });
    await cycles(store, 3); // 6 more
    events = await store.events(0, 1000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 30 + i));
    // Objects are untouched by pruning.
    expect(await store.read((m) => m.get("group", 1)?.domainId)).toBe(1);
    await store.close();
  });

  it("0 keeps every event", async () => {
    const other = tempDbFile();
    const store = await SqliteStore.open({ drivers: DRIVERS, file: other.file, migrationsDir: MIGRATIONS, eventRetention: 0 });
    await store.execute((m) => createUnit(m, { name: "u", driver: "mock" }));
    await store.execute((m) => createGroup(m, { name: "g", unitId: 1 }));
    await store.execute((m) => createDomain(m, { type: "paging", unitId: 1 }));
    await store.execute((m) => createContainer(m, { name: "c" }));
    await cycles(store, 20);
    const events = await store.events(0, 1000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 44 }, (_, i) => i + 1));
    expect(events.slice(0, 4).map((e) => [e.op, e.kind])).toEqual([["create", "unit"], ["create", "group"], ["create", "domain"], ["create", "container"]]);
    await store.close();
    rmSync(other.dir, { recursive: true, force: true });
  });

  it.each([
    [[], {}, 1_000_000],
    [["--event-retention", "0"], {}, 0],
    [[], { EVENT_RETENTION: "500" }, 500],
  ])("configuration %j %j → %d", (argv, env, expected) => {
    expect(parseConfig(argv, env).eventRetention).toBe(expected);
  });

  it("refuses a retention that is not a whole number", () => {
    expect(() => parseConfig(["--event-retention", "-1"], {})).toThrow(ConfigError);
    expect(() => parseConfig([], { EVENT_RETENTION: "lots" })).toThrow(/event retention must be an integer from 0/);
  });
});
