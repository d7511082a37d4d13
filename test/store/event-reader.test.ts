// Pages of the event log come from a worker thread with its own connection,
// in exactly the shape GET /v1/events answers; if the worker dies, pages are
// read on the caller's thread, and nothing asked of the dead worker is lost.
import { rmSync } from "node:fs";
import type { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { createContainer, createDevice, createDomain, createGroup, createUnit } from "../../src/core/objects.js";
import { attachGroup, detachGroup } from "../../src/core/group-moves.js";
import type { Result } from "../../src/core/result.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { captureLog } from "../helpers/log.js";
import type { EventPageView } from "../helpers/http.js";
import { DRIVERS } from "../../src/drivers/index.js";

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(r.error.detail);
  return r.value;
}

async function storeWithEvents() {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  const log = captureLog();
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS, logger: log.logger });
  const reported = () => log.matching(/event reader worker failed/).map((l) => new Error(l.err!.message));
  stores.push(store);
  const unit = value(await store.execute((m) => createUnit(m, { name: "u", driver: "mock" })));
  const groups = [];
  for (let i = 0; i < 2; i++) {
    const g = value(await store.execute((m) => createGroup(m, { name: `g${i}`, unitId: unit.id })));
    value(await store.execute((m) => createDevice(m, { name: `d${i}`, groupId: g.id })));
    groups.push(g);
  }
  const domain = value(await store.execute((m) => createDomain(m, { type: "paging", unitId: unit.id })));
  for (const g of groups) {
    value(await store.execute((m) => attachGroup(m, { owner: null }, g.id, domain.id)));
    value(await store.execute((m) => detachGroup(m, { owner: null }, g.id, domain.id)));
  }
  return { store, groups, reported };
}

const readerOf = (store: SqliteStore) => (store as unknown as { eventReader: { running: boolean; worker: Worker | null } }).eventReader;

describe("event pages", () => {
  it("come from the worker, equal to the events the store reads, paged by seq and by group", async () => {
    const { store, groups, reported } = await storeWithEvents();
    // Nobody asked for a page yet: no worker, no thread, no connection.
    expect(readerOf(store).running).toBe(false);
    const all = (await store.events(0, 1000)).map((e) => ({ ...e, at: e.at.toISOString() }));
    // The unit, the groups with their devices and the domain created, then the four attempts.
    expect(all.map((e) => [e.op, e.kind])).toEqual([
      ["create", "unit"], ["create", "group"], ["create", "device"], ["create", "group"], ["create", "device"], ["create", "domain"],
      ["attach-group", null], ["detach-group", null], ["attach-group", null], ["detach-group", null],
    ]);
    const end = all[9]!.seq;
    expect(JSON.parse(await store.eventPage({ after: 0, limit: 1000 }))).toEqual({ items: all, next: null, last: end });
    expect(JSON.parse(await store.eventPage({ after: all[1]!.seq, limit: 1 }))).toEqual({ items: [all[2]], next: all[2]!.seq, last: all[2]!.seq });
    expect(JSON.parse(await store.eventPage({ after: all[5]!.seq, limit: 4 }))).toEqual({ items: all.slice(6), next: end, last: end });
    expect(JSON.parse(await store.eventPage({ after: end, limit: 10 }))).toEqual({ items: [], next: null, last: end });
    const mine = JSON.parse(await store.eventPage({ after: 0, limit: 10, groupId: groups[1]!.id })) as { items: { groupId: number }[] };
    expect(mine.items.map((e) => e.groupId)).toEqual([groups[1]!.id, groups[1]!.id]);
    // Served by the worker all along, not by the fallback.
    expect(reported()).toEqual([]);
    expect(readerOf(store).running).toBe(true);
  });

  it("are read on the caller's thread once the worker has died, and the failure is reported", async () => {
    const { store, reported } = await storeWithEvents();
    const reader = readerOf(store);
    const expected = await store.eventPage({ after: 0, limit: 1000 });
    expect(reported()).toEqual([]);
    await reader.worker!.terminate();
    expect(reader.running).toBe(false);
    expect(reported().map((e) => e.message)).toEqual([expect.stringMatching(/event reader exited/)]);
    expect(await store.eventPage({ after: 0, limit: 1000 })).toBe(expected);
    // New events are seen too.
    const container = value(await store.execute((m) => createContainer(m, { name: "c" })));
    const items = (JSON.parse(await store.eventPage({ after: 0, limit: 1000 })) as EventPageView).items;
    expect(items).toHaveLength(11);
    expect(items[10]).toMatchObject({ op: "create", kind: "container", objectId: container.id });
  });
});
