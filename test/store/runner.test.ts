// GroupCommitRunner with a fake writer (batching, read barriers, failure
// propagation), and SqliteStore recovery from a write the database refused.
import { rmSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createContainer, createDevice, createDomain, createGroup, createUnit } from "../../src/core/objects.js";
import { attachGroup, replaceDomain } from "../../src/core/ops.js";
import { buildApp } from "../../src/http/app.js";
import type { Prisma } from "../../src/store/database.js";
import { GroupCommitRunner } from "../../src/store/runner.js";
import { SqliteStore, StoreUnavailableError } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { Client, expectProblem, ticks, type GroupView, type PageView, type UnitView } from "../helpers/http.js";

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** State of a promise right now: settles pending microtasks first. */
async function state(p: Promise<unknown>): Promise<"pending" | "fulfilled" | "rejected"> {
  let s: "pending" | "fulfilled" | "rejected" = "pending";
  p.then(() => { s = "fulfilled"; }, () => { s = "rejected"; });
  await ticks(1);
  return s;
}

/** A writer that records its batches and, when told to, holds or fails them. */
function fakeWriter() {
  const calls: number[][] = [];
  const gates: Deferred[] = [];
  let hold = false;
  const writer = async (batch: number[]) => {
    calls.push([...batch]);
    if (!hold) return;
    const gate = deferred();
    gates.push(gate);
    await gate.promise;
  };
  return {
    calls, gates, writer,
    holdNext(on: boolean) { hold = on; },
    async untilCalls(n: number) {
      for (let i = 0; i < 100 && calls.length < n; i++) await ticks(1);
      expect(calls.length).toBe(n);
    },
  };
}

describe("GroupCommitRunner", () => {
  it("writes everything committed in one tick as one batch", async () => {
    const w = fakeWriter();
    const onFailure = vi.fn(async () => undefined);
    const runner = new GroupCommitRunner<number>(w.writer, onFailure);
    const done = Array.from({ length: 10 }, (_, i) => runner.commit(i + 1));
    await Promise.all(done);
    expect(w.calls).toEqual([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
    expect(runner.stats).toEqual({ batches: 1, items: 10, largestBatch: 10 });
    expect(onFailure).not.toHaveBeenCalled();
  });

  it("does not resolve a commit before its batch is written", async () => {
    const w = fakeWriter();
    w.holdNext(true);
    const runner = new GroupCommitRunner<number>(w.writer, async () => undefined);
    const p = runner.commit(1);
    await w.untilCalls(1);
    expect(await state(p)).toBe("pending");
    w.gates[0]!.resolve();
    expect(await state(p)).toBe("fulfilled");
  });

  it("fills the next batch while one is being written", async () => {
    const w = fakeWriter();
    w.holdNext(true);
    const runner = new GroupCommitRunner<number>(w.writer, async () => undefined);
    const p1 = runner.commit(1);
    await w.untilCalls(1);
    const p2 = runner.commit(2);
    const p3 = runner.commit(3);
    await ticks(3);
    expect(w.calls).toEqual([[1]]); // nothing else is written while batch 1 is in flight
    w.holdNext(false);
    w.gates[0]!.resolve();
    await Promise.all([p1, p2, p3]);
    expect(w.calls).toEqual([[1], [2, 3]]);
    expect(runner.stats).toEqual({ batches: 2, items: 3, largestBatch: 2 });
  });

  it("a read barrier (commit(null)) with nothing queued resolves without writing", async () => {
    const w = fakeWriter();
    const runner = new GroupCommitRunner<number>(w.writer, async () => undefined);
    await runner.commit(null);
    expect(w.calls).toEqual([]);
    expect(runner.stats.batches).toBe(0);
  });

  it("a read barrier waits for the pending batch (what the read could observe)", async () => {
    const w = fakeWriter();
    w.holdNext(true);
    const runner = new GroupCommitRunner<number>(w.writer, async () => undefined);
    const p1 = runner.commit(1);
    await w.untilCalls(1);
    const p2 = runner.commit(2);
    const barrier = runner.commit(null);
    w.gates[0]!.resolve();
    await p1;
    // Batch [2] is now being written and held: the barrier still waits for it.
    await w.untilCalls(2);
    expect(await state(barrier)).toBe("pending");
    w.gates[1]!.resolve();
    await Promise.all([p2, barrier]);
    expect(w.calls).toEqual([[1], [2]]);
  });

  it("a read barrier with only a batch in flight waits for that batch", async () => {
    const w = fakeWriter();
    w.holdNext(true);
    const runner = new GroupCommitRunner<number>(w.writer, async () => undefined);
    const p1 = runner.commit(1);
    await w.untilCalls(1);
    const barrier = runner.commit(null);
    expect(await state(barrier)).toBe("pending");
    w.gates[0]!.resolve();
    await Promise.all([p1, barrier]);
  });

  it("a failed batch rejects its commits and everything queued after it, calls onFailure once, and the runner keeps working", async () => {
    const w = fakeWriter();
    w.holdNext(true);
    const failures: unknown[] = [];
    const runner = new GroupCommitRunner<number>(w.writer, async (e) => { failures.push(e); });
    const p1 = runner.commit(1);
    const p1b = runner.commit(11);
    await w.untilCalls(1);
    const p2 = runner.commit(2);
    const p3 = runner.commit(3);
    const barrier = runner.commit(null);
    const boom = new Error("disk on fire");
    w.holdNext(false);
    w.gates[0]!.reject(boom);
    const outcomes = await Promise.allSettled([p1, p1b, p2, p3, barrier]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected", "rejected", "rejected"]);
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason).toBe(boom);
    expect(failures).toEqual([boom]);
    // The queued batch was computed on top of the failed one: it is never written.
    expect(w.calls).toEqual([[1, 11]]);
    await runner.commit(4);
    expect(w.calls).toEqual([[1, 11], [4]]);
    await runner.commit(null);
    expect(failures).toHaveLength(1);
  });

  it("runs exclusive work one at a time, in order, even when some of it fails", async () => {
    const runner = new GroupCommitRunner<number>(async () => undefined, async () => undefined);
    const log: string[] = [];
    const job = (name: string, fail = false) => async () => {
      log.push(`start ${name}`);
      await ticks(2);
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([runner.exclusive(job("a")), runner.exclusive(job("b", true)), runner.exclusive(job("c"))]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("drain waits for queued and in-flight batches, and does not throw for a failed one", async () => {
    const w = fakeWriter();
    w.holdNext(true);
    const runner = new GroupCommitRunner<number>(w.writer, async () => undefined);
    const p1 = runner.commit(1);
    await w.untilCalls(1);
    const p2 = runner.commit(2);
    const drained = runner.drain();
    expect(await state(drained)).toBe("pending");
    w.holdNext(false);
    w.gates[0]!.resolve();
    await drained;
    await expect(p1).resolves.toBeUndefined();
    await expect(p2).resolves.toBeUndefined();
    expect(w.calls).toEqual([[1], [2]]);

    const failing = new GroupCommitRunner<number>(async () => { throw new Error("nope"); }, async () => undefined);
    const p = failing.commit(1);
    await expect(failing.drain()).resolves.toBeUndefined();
    await expect(p).rejects.toThrow("nope");
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
  const failures: unknown[] = [];
  const store = await SqliteStore.open({ file, migrationsDir: MIGRATIONS, onWriteFailure: (e) => failures.push(e) });
  closers.push(() => store.close());
  // The store's own connection. Used only while the store is idle, to make
  // the database refuse writes.
  const prisma = (store as unknown as { prisma: Prisma }).prisma;
  return {
    store, failures, prisma,
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

describe("SqliteStore recovery after a refused write", () => {
  it("rejects the whole batch with StoreUnavailableError and reloads the model from disk", async () => {
    const { store, failures, refuse, accept } = await openStore();
    const kept = value(await store.execute((m) => createUnit(m, { name: "kept", driver: "mock" })));
    await refuse("Unit");

    // Three operations in one tick share one batch; the database refuses it.
    const lost = store.execute((m) => createUnit(m, { name: "lost", driver: "mock" }));
    const alsoLost = store.execute((m) => createGroup(m, { name: "g-lost", unitId: kept.id }));
    const read = store.read((m) => m.count("group"));
    const settled = await Promise.allSettled([lost, alsoLost, read]);
    for (const s of settled) {
      expect(s.status).toBe("rejected");
      const reason = (s as PromiseRejectedResult).reason as Error;
      expect(reason).toBeInstanceOf(StoreUnavailableError);
      expect(reason.message).toMatch(/the store is unavailable:[\s\S]*disk on fire/);
    }
    expect(failures).toHaveLength(1);
    expect(String(failures[0])).toMatch(/disk on fire/);

    // The in-memory model no longer has the changes the disk refused.
    expect(await store.read((m) => [...m.all("unit")].map((u) => u.name))).toEqual(["kept"]);
    expect(await store.read((m) => m.count("group") + m.count("domain"))).toBe(0);

    // Once the database accepts writes again, the same operations succeed.
    await accept("Unit");
    const again = value(await store.execute((m) => createUnit(m, { name: "lost", driver: "mock" })));
    expect(again.name).toBe("lost");
    expect(await store.read((m) => [...m.all("unit")].map((u) => u.name).sort())).toEqual(["kept", "lost"]);
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
    expect(seq).toBe(2);

    await refuse("Event");
    await expect(store.execute((m) => attachGroup(m, { owner: null }, group.id, dom.id))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.read((m) => m.get("group", group.id)!.domainId)).toBe(other.id);
    await accept("Event");

    value(await store.execute((m) => replaceDomain(m, { owner: null }, group.id, dom.id)));
    const events = await store.events(0, 1000);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(events[2]).toMatchObject({ op: "replace-group", domainId: dom.id, errno: null });
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

    await refuse("Group");
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: dom.id }), 503, "EIO", "store-unavailable");
    expect(await c.groupNow(group.id)).toEqual(group);
    expect(await c.lastSeq()).toBe(seq);
    await accept("Group");

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

  it("when the database cannot even be read back, nothing is served from the diverged model until it can", async () => {
    const { store, prisma } = await openStore();
    value(await store.execute((m) => createContainer(m, { name: "kept" })));
    // A table that has vanished: the write fails, and so does reading back.
    await prisma.$executeRawUnsafe(`ALTER TABLE "Container" RENAME TO "Container_away"`);
    await expect(store.execute((m) => createContainer(m, { name: "lost" }))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.read((m) => m.count("container"))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.execute((m) => createContainer(m, { name: "also-lost" }))).rejects.toBeInstanceOf(StoreUnavailableError);
    // Once the database is whole again, the next operation reloads and proceeds.
    await prisma.$executeRawUnsafe(`ALTER TABLE "Container_away" RENAME TO "Container"`);
    expect(await store.read((m) => [...m.all("container")].map((c) => c.name))).toEqual(["kept"]);
    value(await store.execute((m) => createContainer(m, { name: "after" })));
    expect(await store.read((m) => [...m.all("container")].map((c) => c.name))).toEqual(["kept", "after"]);
  });
});
