// GroupCommitRunner with a fake writer (batching, read barriers, failure
// propagation), and SqliteStore recovery from a write the database refused.
import { rmSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createContainer, createDevice, createDomain, createGroup, createUnit, updateUnit } from "../../src/core/objects.js";
import { attachGroup, replaceDomain } from "../../src/core/group-moves.js";
import { buildApp } from "../../src/http/app.js";
import type { Prisma } from "../../src/store/database.js";
import { GroupCommitRunner, UnsyncedCommitError, type ItemFailure } from "../../src/store/runner.js";
import { SqliteStore, StoreUnavailableError } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { captureLog, LEVEL } from "../helpers/log.js";
import { Client, expectProblem, type GroupView, type PageView, type UnitView } from "../helpers/http.js";
import { DRIVERS } from "../../src/drivers/index.js";

/** State of a promise right now: settles pending microtasks, but lets no macrotask (a flush) run. */
async function state(p: Promise<unknown>): Promise<"pending" | "fulfilled" | "rejected"> {
  let s: "pending" | "fulfilled" | "rejected" = "pending";
  p.then(() => { s = "fulfilled"; }, () => { s = "rejected"; });
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return s;
}

/** A synchronous writer that records its batches and fails the items it is told to. */
function fakeWriter() {
  const calls: number[][] = [];
  const failing = new Map<number, Error>();
  const writer = (batch: readonly number[]): ItemFailure[] => {
    calls.push([...batch]);
    return batch.flatMap((item, index) => (failing.has(item) ? [{ index, error: failing.get(item)! }] : []));
  };
  return { calls, failing, writer };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("GroupCommitRunner", () => {
  it("writes everything committed in one turn of the event loop as one batch", async () => {
    const w = fakeWriter();
    const onFailure = vi.fn();
    const runner = new GroupCommitRunner<number>(w.writer, onFailure);
    const done = Array.from({ length: 10 }, (_, i) => runner.commit(i + 1));
    await Promise.all(done);
    expect(w.calls).toEqual([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
    expect(runner.stats).toEqual({ batches: 1, items: 10, largestBatch: 10, refused: 0 });
    expect(onFailure).not.toHaveBeenCalled();
  });

  it("tells its observer of each durable batch (size without the refused items) and counts what waits in its depth", async () => {
    const w = fakeWriter();
    w.failing.set(3, new Error("refused"));
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined);
    const told: [number, number][] = [];
    runner.onBatchDurable = (size, seconds) => told.push([size, seconds]);
    const done = [1, 2, 3].map((i) => runner.commit(i).catch(() => undefined));
    expect(runner.depth).toBe(3);
    await Promise.all(done);
    expect(runner.depth).toBe(0);
    expect(told.map(([size]) => size)).toEqual([2]);
    expect(told[0]![1]).toBeGreaterThanOrEqual(0);
  });

  it("with a sync stage: told once the sync covering the batch is done; the depth counts the items awaiting it", async () => {
    const w = fakeWriter();
    let finishSync!: () => void;
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined, () => new Promise<void>((r) => { finishSync = r; }));
    const told: number[] = [];
    runner.onBatchDurable = (size) => told.push(size);
    const done = Promise.all([runner.commit(1), runner.commit(2)]);
    await nextTurn();
    expect(w.calls).toEqual([[1, 2]]);
    expect(told).toEqual([]);
    expect(runner.depth).toBe(2);
    finishSync();
    await done;
    expect(told).toEqual([2]);
    expect(runner.depth).toBe(0);
  });

  it("does not resolve a commit before its batch is written", async () => {
    const w = fakeWriter();
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined);
    const p = runner.commit(1);
    expect(await state(p)).toBe("pending");
    expect(w.calls).toEqual([]);
    await nextTurn();
    expect(await state(p)).toBe("fulfilled");
    expect(w.calls).toEqual([[1]]);
  });

  it("commits made after a batch was written go into the next one", async () => {
    const w = fakeWriter();
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined);
    const p1 = runner.commit(1);
    await nextTurn();
    const p2 = runner.commit(2);
    const p3 = runner.commit(3);
    await Promise.all([p1, p2, p3]);
    expect(w.calls).toEqual([[1], [2, 3]]);
    expect(runner.stats).toEqual({ batches: 2, items: 3, largestBatch: 2, refused: 0 });
  });

  it("a read barrier (commit(null)) with nothing queued resolves without writing", async () => {
    const w = fakeWriter();
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined);
    await runner.commit(null);
    expect(w.calls).toEqual([]);
    expect(runner.stats.batches).toBe(0);
  });

  it("a read barrier waits for the queued batch (what the read could observe)", async () => {
    const w = fakeWriter();
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined);
    const p1 = runner.commit(1);
    const barrier = runner.commit(null);
    expect(await state(barrier)).toBe("pending");
    await Promise.all([p1, barrier]);
    expect(w.calls).toEqual([[1]]);
  });

  it("a barrier also resolves when the batch it waited for failed: the read saw nothing durable that failed", async () => {
    const w = fakeWriter();
    w.failing.set(1, new Error("disk on fire"));
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined);
    const p1 = runner.commit(1);
    const barrier = runner.commit(null);
    await expect(p1).rejects.toThrow("disk on fire");
    await expect(barrier).resolves.toBeUndefined();
  });

  it("rejects only the items the writer reports, resolves the others, and reports the failures once", async () => {
    const w = fakeWriter();
    const boom = new Error("unstorable");
    w.failing.set(2, boom);
    const reported: ItemFailure[][] = [];
    const runner = new GroupCommitRunner<number>(w.writer, (f) => reported.push(f));
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => runner.commit(i)));
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBe(boom);
    expect(reported).toEqual([[{ index: 1, error: boom }]]);
    expect(runner.stats.refused).toBe(1);
    // The runner keeps working.
    await runner.commit(4);
    expect(w.calls).toEqual([[1, 2, 3], [4]]);
  });

  it("a writer that throws fails its whole batch, and the runner keeps working", async () => {
    let fail = true;
    const reported: ItemFailure[][] = [];
    const runner = new GroupCommitRunner<number>(() => {
      if (fail) throw new Error("connection lost");
      return [];
    }, (f) => reported.push(f));
    const outcomes = await Promise.allSettled([runner.commit(1), runner.commit(2)]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected"]);
    expect(reported[0]!.map((f) => f.index)).toEqual([0, 1]);
    fail = false;
    await expect(runner.commit(3)).resolves.toBeUndefined();
  });

  it("settled waits for the queued batch, and does not throw for a failed one", async () => {
    const w = fakeWriter();
    w.failing.set(1, new Error("nope"));
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined);
    const p1 = runner.commit(1);
    const p2 = runner.commit(2);
    await expect(runner.settled()).resolves.toBeUndefined();
    await expect(p1).rejects.toThrow("nope");
    await expect(p2).resolves.toBeUndefined();
    expect(w.calls).toEqual([[1, 2]]);
  });
});

/** A sync stage the test finishes by hand: each call is one sync, with the batches written before it started. */
function fakeSync(w: { calls: number[][] }) {
  const syncs: { covers: number; finish(): void; fail(error: Error): void }[] = [];
  const sync = () => new Promise<void>((resolve, reject) => {
    syncs.push({ covers: w.calls.length, finish: resolve, fail: reject });
  });
  return { syncs, sync };
}

describe("GroupCommitRunner with a sync stage", () => {
  it("answers a written batch only once a sync that started after it has finished", async () => {
    const w = fakeWriter();
    const s = fakeSync(w);
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined, s.sync);
    const p = runner.commit(1);
    await nextTurn();
    expect(w.calls).toEqual([[1]]);
    expect(s.syncs.map((x) => x.covers)).toEqual([1]);
    expect(await state(p)).toBe("pending");
    s.syncs[0]!.finish();
    expect(await state(p)).toBe("fulfilled");
  });

  it("keeps one sync in flight: what is committed meanwhile is written as one batch when it finishes, then synced", async () => {
    const w = fakeWriter();
    const s = fakeSync(w);
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined, s.sync);
    const p1 = runner.commit(1);
    await nextTurn();
    const p2 = runner.commit(2);
    await nextTurn();
    const p3 = runner.commit(3);
    await nextTurn();
    // One batch written, one sync started after it; 2 and 3 wait in the queue.
    expect(w.calls).toEqual([[1]]);
    expect(s.syncs.map((x) => x.covers)).toEqual([1]);
    s.syncs[0]!.finish();
    expect(await state(p1)).toBe("fulfilled");
    await nextTurn();
    expect(w.calls).toEqual([[1], [2, 3]]);
    expect([await state(p2), await state(p3)]).toEqual(["pending", "pending"]);
    expect(s.syncs.map((x) => x.covers)).toEqual([1, 2]);
    s.syncs[1]!.finish();
    expect([await state(p2), await state(p3)]).toEqual(["fulfilled", "fulfilled"]);
  });

  it("a read barrier waits for the sync of everything written before it, and for the queued batch's", async () => {
    const w = fakeWriter();
    const s = fakeSync(w);
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined, s.sync);
    void runner.commit(1);
    await nextTurn();
    const afterWrite = runner.commit(null);
    const synced = runner.synced();
    expect([await state(afterWrite), await state(synced)]).toEqual(["pending", "pending"]);
    s.syncs[0]!.finish();
    expect([await state(afterWrite), await state(synced)]).toEqual(["fulfilled", "fulfilled"]);

    void runner.commit(2);
    const queued = runner.commit(null);
    // synced() does not wait for a batch that is not written yet: nothing read from the database can show it.
    expect(await state(runner.synced())).toBe("fulfilled");
    await nextTurn();
    expect(await state(queued)).toBe("pending");
    s.syncs[1]!.finish();
    expect(await state(queued)).toBe("fulfilled");
  });

  it("a failed sync refuses every item it was to cover, reports them, and the next batches go on", async () => {
    const w = fakeWriter();
    const s = fakeSync(w);
    const reported: ItemFailure[][] = [];
    const runner = new GroupCommitRunner<number>(w.writer, (f) => reported.push(f), s.sync);
    const covered = [runner.commit(1), runner.commit(2)];
    const barrier = runner.commit(null);
    await nextTurn();
    const eio = new Error("EIO: fdatasync");
    s.syncs[0]!.fail(eio);
    const outcomes = await Promise.allSettled(covered);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected"]);
    const refusal = (outcomes[0] as PromiseRejectedResult).reason as UnsyncedCommitError;
    expect(refusal).toBeInstanceOf(UnsyncedCommitError);
    expect(refusal.cause).toBe(eio);
    expect(refusal.message).toBe("committed, but syncing the log failed: EIO: fdatasync");
    await expect(barrier).resolves.toBeUndefined();
    expect(reported).toEqual([[{ index: 0, error: eio }, { index: 1, error: eio }]]);
    expect(runner.stats.refused).toBe(2);

    const later = runner.commit(3);
    await nextTurn();
    s.syncs[1]!.finish();
    await expect(later).resolves.toBeUndefined();
  });

  it("items the writer refused are answered at once, without waiting for the sync", async () => {
    const w = fakeWriter();
    w.failing.set(2, new Error("unstorable"));
    const s = fakeSync(w);
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined, s.sync);
    const p1 = runner.commit(1);
    const p2 = runner.commit(2);
    await expect(p2).rejects.toThrow("unstorable");
    expect(await state(p1)).toBe("pending");
    s.syncs[0]!.finish();
    await expect(p1).resolves.toBeUndefined();
  });

  it("a batch with nothing left to sync starts no sync", async () => {
    const w = fakeWriter();
    w.failing.set(1, new Error("nope"));
    const s = fakeSync(w);
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined, s.sync);
    await expect(runner.commit(1)).rejects.toThrow("nope");
    await runner.settled();
    expect(s.syncs).toEqual([]);
  });

  it("settled waits for the syncs too", async () => {
    const w = fakeWriter();
    const s = fakeSync(w);
    const runner = new GroupCommitRunner<number>(w.writer, () => undefined, s.sync);
    const p1 = runner.commit(1);
    const settled = runner.settled();
    await nextTurn();
    expect(await state(settled)).toBe("pending");
    s.syncs[0]!.finish();
    await settled;
    expect(await state(p1)).toBe("fulfilled");
  });
});

// ---- SqliteStore recovery ----------------------------------------------------

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function openStore() {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  const log = captureLog();
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS, logger: log.logger });
  /** The errors the store logged as failed writes or failed read-backs. */
  const failures = () => log.lines.filter((l) => l.level >= LEVEL.error).map((l) => l.err!.message);
  closers.push(() => store.close());
  // The store's own connection. Used only while the store is idle, to make
  // the database refuse writes.
  const prisma = (store as unknown as { prisma: Prisma }).prisma;
  return {
    store, failures, log, prisma,
    refuse: async (table: string) => {
      for (const op of ["INSERT", "UPDATE"]) {
        await prisma.$executeRawUnsafe(`CREATE TRIGGER "refuse_${op}_${table}" BEFORE ${op} ON "${table}" BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
      }
    },
    accept: async (table: string) => {
      for (const op of ["INSERT", "UPDATE"]) await prisma.$executeRawUnsafe(`DROP TRIGGER "refuse_${op}_${table}"`);
    },
  };
}

function value<T>(r: { ok: true; value: T } | { ok: false; error: unknown }): T {
  if (!r.ok) throw new Error(`operation failed: ${JSON.stringify(r.error)}`);
  return r.value;
}

/** Polls until the check holds (bounded). */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("SqliteStore recovery after a refused write", () => {
  it("refuses only the operation the database refused; the others in its batch commit, and the model matches the disk", async () => {
    const { store, failures, refuse, accept } = await openStore();
    const kept = value(await store.execute((m) => createUnit(m, { name: "kept", driver: "mock" })));
    await refuse("Unit");

    // Three operations in one turn share one batch; the database refuses the unit.
    const lost = store.execute((m) => createUnit(m, { name: "lost", driver: "mock" }));
    const group = store.execute((m) => createGroup(m, { name: "g-kept", unitId: kept.id }));
    const read = store.read((m) => m.count("group"));
    const settled = await Promise.allSettled([lost, group, read]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "fulfilled", "fulfilled"]);
    const reason = (settled[0] as PromiseRejectedResult).reason as StoreUnavailableError;
    expect(reason).toBeInstanceOf(StoreUnavailableError);
    expect(reason.message).toMatch(/the store is unavailable:[\s\S]*disk on fire/);
    expect(failures()).toEqual([expect.stringMatching(/disk on fire/)]);

    // The in-memory model has what the disk has: not the refused unit, the group.
    await until(() => store.health().ready);
    expect(await store.read((m) => [...m.all("unit")].map((u) => u.name))).toEqual(["kept"]);
    expect(await store.read((m) => [...m.all("group")].map((g) => g.name))).toEqual(["g-kept"]);

    // Once the database accepts writes again, the same operation succeeds.
    await accept("Unit");
    const again = value(await store.execute((m) => createUnit(m, { name: "lost", driver: "mock" })));
    expect(again.name).toBe("lost");
    expect(await store.read((m) => [...m.all("unit")].map((u) => u.name).sort())).toEqual(["kept", "lost"]);
  });

  it("refuses an operation built on a refused one (it changed the same row), and keeps the rest", async () => {
    const { store, prisma } = await openStore();
    const unit = value(await store.execute((m) => createUnit(m, { name: "u", driver: "mock" })));
    await prisma.$executeRawUnsafe(`CREATE TRIGGER "no_offline" BEFORE UPDATE ON "Unit" WHEN NEW."online" = 0 BEGIN SELECT RAISE(ABORT, 'cannot go offline'); END`);
    const offline = store.execute((m) => updateUnit(m, unit.id, { online: false }));
    const other = store.execute((m) => createContainer(m, { name: "independent" }));
    const backOnline = store.execute((m) => updateUnit(m, unit.id, { online: true }));
    const settled = await Promise.allSettled([offline, other, backOnline]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "fulfilled", "rejected"]);
    expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/built on[\s\S]*cannot go offline/);
    await until(() => store.health().ready);
    expect(await store.read((m) => m.get("unit", unit.id)!.online)).toBe(true);
    expect(await store.read((m) => [...m.all("container")].map((c) => c.name))).toEqual(["independent"]);
  });

  it("a value the database cannot store faithfully fails that operation alone, before it joins a batch", async () => {
    const { store, failures } = await openStore();
    const results = await Promise.all([
      store.execute((m) => createUnit(m, { name: "a", driver: "mock" })),
      store.execute((m) => createUnit(m, { name: "bad \ud800", driver: "mock" })),
      store.execute((m) => createContainer(m, { name: "nul\u0000" })),
      store.execute((m) => createUnit(m, { name: "b", driver: "mock" })),
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, false, false, true]);
    expect(results[1]).toMatchObject({ ok: false, error: { errno: "EINVAL", reason: "invalid-request", detail: expect.stringMatching(/Unit\.name cannot be stored: text with a lone UTF-16 surrogate/) } });
    expect(results[2]).toMatchObject({ ok: false, error: { detail: expect.stringMatching(/Container\.name cannot be stored: text with a NUL/) } });
    expect(failures()).toEqual([]);
    expect(store.health().ready).toBe(true);
    expect(await store.read((m) => [...m.all("unit")].map((u) => u.name))).toEqual(["a", "b"]);
    expect(await store.read((m) => m.count("container"))).toBe(0);
  });

  it("an operation that throws leaves nothing behind: no change, no event", async () => {
    const { store } = await openStore();
    const unit = value(await store.execute((m) => createUnit(m, { name: "dmar0", driver: "intel-vtd" })));
    const group = value(await store.execute((m) => createGroup(m, { name: "g0", unitId: unit.id })));
    value(await store.execute((m) => createDevice(m, { name: "d0", groupId: group.id })));
    const dom = value(await store.execute((m) => createDomain(m, { type: "paging", unitId: unit.id })));
    const created = await store.events(0, 100);
    expect(created.map((e) => e.op)).toEqual(["create", "create", "create", "create"]);
    await expect(store.execute((m) => {
      const moved = attachGroup(m, { owner: null }, group.id, dom.id);
      expect(moved.ok).toBe(true);
      throw new Error("presenter bug");
    })).rejects.toThrow("presenter bug");
    expect(await store.read((m) => m.get("group", group.id)!.domainId)).toBe(group.domainId);
    expect(await store.events(0, 100)).toEqual(created);
    // The next operation writes only its own changes.
    const next = value(await store.execute((m) => createContainer(m, { name: "next" })));
    expect(await store.read((m) => m.get("group", group.id)!.domainId)).toBe(group.domainId);
    expect((await store.events(created.at(-1)!.seq, 100)).map((e) => [e.op, e.kind, e.objectId])).toEqual([["create", "container", next.id]]);
  });

  it("a refused operation changes nothing but its event, even if it changed the model before failing", async () => {
    const { store } = await openStore();
    const unit = value(await store.execute((m) => createUnit(m, { name: "u", driver: "mock" })));
    const r = await store.execute((m) => {
      const c = createContainer(m, { name: "half-made" });
      expect(c.ok).toBe(true);
      return updateUnit(m, unit.id + 100, { online: false });
    });
    expect(r.ok).toBe(false);
    expect(await store.read((m) => m.count("container"))).toBe(0);
    // Nor its create: only the unit's is logged.
    expect((await store.events(0, 100)).map((e) => [e.op, e.kind, e.objectId])).toEqual([["create", "unit", unit.id]]);
  });

  it("undoes an attach whose event could not be written, and the event log has no gap afterwards", async () => {
    const { store, refuse, accept } = await openStore();
    const unit = value(await store.execute((m) => createUnit(m, { name: "dmar0", driver: "intel-vtd" })));
    const group = value(await store.execute((m) => createGroup(m, { name: "g0", unitId: unit.id })));
    value(await store.execute((m) => createDevice(m, { name: "d0", groupId: group.id })));
    const dom = value(await store.execute((m) => createDomain(m, { type: "paging", unitId: unit.id })));
    const other = value(await store.execute((m) => createDomain(m, { type: "paging", unitId: unit.id })));
    value(await store.execute((m) => attachGroup(m, { owner: null }, group.id, other.id)));
    value(await store.execute((m) => attachGroup(m, { owner: null }, group.id, other.id)));
    const seq = (await store.events(0, 1000)).at(-1)!.seq;
    expect(seq).toBe(7); // 5 creates, 2 attaches

    await refuse("Event");
    await expect(store.execute((m) => attachGroup(m, { owner: null }, group.id, dom.id))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.read((m) => m.get("group", group.id)!.domainId)).toBe(other.id);
    await accept("Event");
    await until(() => store.health().ready);

    value(await store.execute((m) => replaceDomain(m, { owner: null }, group.id, dom.id)));
    const events = await store.events(0, 1000);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(events[7]).toMatchObject({ op: "replace-group", domainId: dom.id, errno: null });
  });

  it("over HTTP: 503 problem store-unavailable, and the refused change is not visible afterwards", async () => {
    const { store, refuse, accept } = await openStore();
    const app = await buildApp({ store, logger: false });
    closers.push(() => app.close());
    await app.ready();
    const c = new Client(app);
    const unit = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(unit.id);
    const dom = await c.domain({ unitId: unit.id });
    const seq = await c.lastSeq();

    await refuse("Unit");
    const res = await c.post("/v1/units", { name: "refused", driver: "mock" });
    expectProblem(res, 503, "EIO", "store-unavailable", { soft: false, code: -5 });
    // The cause goes to the server log, not to the client.
    expect((res.body as { detail: string }).detail).not.toMatch(/disk on fire|prisma/i);
    const units = await c.read<PageView<UnitView>>("/v1/units");
    expect(units.items.map((u) => u.id)).toEqual([unit.id]);
    await accept("Unit");
    await until(() => store.health().ready);

    await refuse("Group");
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: dom.id }), 503, "EIO", "store-unavailable");
    expect(await c.groupNow(group.id)).toEqual(group);
    expect(await c.lastSeq()).toBe(seq);
    await accept("Group");
    await until(() => store.health().ready);

    const ok = await c.ok<{ changed: boolean; group: GroupView }>("POST", `/v1/groups/${group.id}/attach`, { domainId: dom.id });
    expect(ok.group.domainId).toBe(dom.id);
    const events = await c.events(seq);
    expect(events.map((e) => [e.seq, e.op, e.errno])).toEqual([[seq + 1, "attach-group", null]]);
  });

  it("a store that is closed refuses operations with StoreUnavailableError (503 over HTTP)", async () => {
    const { store } = await openStore();
    const app = await buildApp({ store, logger: false });
    await app.ready();
    await store.close();
    await expect(store.execute((m) => createContainer(m, { name: "late" }))).rejects.toBeInstanceOf(StoreUnavailableError);
    expectProblem(await new Client(app).post("/v1/containers", { name: "late" }), 503, "EIO", "store-unavailable");
    await app.close();
  });

  it("logs a failed write, the model rebuilt from disk, and the disk taking writes again, in that order", async () => {
    const { store, log, refuse, accept } = await openStore();
    value(await store.execute((m) => createUnit(m, { name: "kept", driver: "mock" })));
    await refuse("Unit");
    await expect(store.execute((m) => createUnit(m, { name: "lost", driver: "mock" }))).rejects.toBeInstanceOf(StoreUnavailableError);
    await until(() => store.health().ready);
    await accept("Unit");
    expect(log.lines.map((l) => [l.level, l.msg.split(":")[0]])).toEqual([
      [LEVEL.info, "database migrated"],
      [LEVEL.error, "a database write failed"],
      [LEVEL.warn, "the model was rebuilt from the database after a failed write"],
      [LEVEL.warn, "the database takes writes again; changes are accepted"],
    ]);
    expect(log.lines[1]).toMatchObject({ refused: 1, err: { message: expect.stringMatching(/disk on fire/) } });
  });

  it("when the database cannot even be read back, nothing is served from the diverged model until it can", async () => {
    const { store, prisma, log } = await openStore();
    value(await store.execute((m) => createContainer(m, { name: "kept" })));
    // A table that has vanished: the write fails, and so does reading back.
    await prisma.$executeRawUnsafe(`ALTER TABLE "Container" RENAME TO "Container_away"`);
    await expect(store.execute((m) => createContainer(m, { name: "lost" }))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.read((m) => m.count("container"))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.execute((m) => createContainer(m, { name: "also-lost" }))).rejects.toBeInstanceOf(StoreUnavailableError);
    // Each failed read-back is logged as an error, with its cause.
    const failedReloads = log.matching(/could not be rebuilt from the database/);
    expect(failedReloads.length).toBeGreaterThan(0);
    expect(failedReloads[0]).toMatchObject({ level: LEVEL.error, err: { message: expect.stringMatching(/Container/) } });
    // Once the database is whole again, the next operation reloads and proceeds.
    await prisma.$executeRawUnsafe(`ALTER TABLE "Container_away" RENAME TO "Container"`);
    expect(await store.read((m) => [...m.all("container")].map((c) => c.name))).toEqual(["kept"]);
    await until(() => store.health().ready);
    value(await store.execute((m) => createContainer(m, { name: "after" })));
    expect(await store.read((m) => [...m.all("container")].map((c) => c.name))).toEqual(["kept", "after"]);
    expect(log.matching(/the model was rebuilt from the database/)).toHaveLength(1);
  });
});
