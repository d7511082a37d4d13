// The app over a real socket (fetch), and the server entry point start()
// with its configuration errors.
import { rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import Database from "better-sqlite3";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, PROJECT_ROOT, parseConfig } from "../../src/config.js";
import { readTopologyFile, start } from "../../src/server.js";
import { TopologyConflictError } from "../../src/startup/topology.js";
import { lockFileOf } from "../../src/store/lock.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, openApp, tempDbFile } from "../helpers/app.js";
import type { DeviceView, DomainView, GroupView, MovedView, PageView, UnitView } from "../helpers/http.js";
import { DRIVERS } from "../../src/drivers/index.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function tempDir(): { dir: string; file: string } {
  const t = tempDbFile();
  cleanups.push(() => rmSync(t.dir, { recursive: true, force: true }));
  return t;
}

/** Does some store hold the database's writer lock (lock.ts)? Answers at once (no busy wait). */
function isLocked(file: string): boolean {
  const db = new Database(lockFileOf(file), { timeout: 0 });
  try {
    db.exec("BEGIN IMMEDIATE");
    db.exec("ROLLBACK");
    return false;
  } catch (error) {
    if (/locked|busy/i.test(String(error))) return true;
    throw error;
  } finally {
    db.close();
  }
}

function baseUrl(app: FastifyInstance): string {
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error(`not listening on TCP: ${String(addr)}`);
  return `http://127.0.0.1:${addr.port}`;
}

async function json<T>(base: string, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + url, {
    method,
    headers: body !== undefined ? { "content-type": "application/json", ...headers } : headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
}

describe("over a real listening socket", () => {
  it("creates, attaches and reads back through fetch, echoing X-Request-Id", async () => {
    const { file } = tempDir();
    const { app } = await openApp(file);
    cleanups.push(() => app.close());
    expect(isLocked(file)).toBe(true);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const base = baseUrl(app);

    const unit = await json<UnitView>(base, "POST", "/v1/units", { name: "dmar0", driver: "intel-vtd" });
    expect(unit.status).toBe(201);
    const group = await json<GroupView>(base, "POST", "/v1/groups", { name: "iommu-group-7", unitId: unit.body.id });
    expect(group.status).toBe(201);
    const device = await json<DeviceView>(base, "POST", "/v1/devices", { name: "0000:03:00.0", groupId: group.body.id });
    expect(device.status).toBe(201);
    const domain = await json<DomainView>(base, "POST", "/v1/domains", { type: "paging", unitId: unit.body.id });
    expect(domain.status).toBe(201);

    const attach = await json<MovedView>(base, "POST", `/v1/groups/${group.body.id}/attach`, { domainId: domain.body.id }, { "X-Request-Id": "abc" });
    expect(attach.status).toBe(200);
    expect(attach.headers.get("x-request-id")).toBe("abc");
    expect(attach.body).toMatchObject({ changed: true, group: { id: group.body.id, domainId: domain.body.id, deviceIds: [device.body.id] } });

    const read = await json<GroupView>(base, "GET", `/v1/groups/${group.body.id}`);
    expect(read.body).toEqual(attach.body.group);
    const onDomain = await json<PageView<GroupView>>(base, "GET", `/v1/groups?domainId=${domain.body.id}`);
    expect(onDomain.body.items.map((g) => g.id)).toEqual([group.body.id]);

    // Without a client id the server makes one, different per request.
    const a = await fetch(`${base}/healthz`);
    const b = await fetch(`${base}/healthz`);
    expect(await a.json()).toEqual({ status: "ok" });
    const ida = a.headers.get("x-request-id");
    const idb = b.headers.get("x-request-id");
    expect(ida).toMatch(/\S/);
    expect(idb).toMatch(/\S/);
    expect(ida).not.toBe(idb);

    // Problems over the wire: content type, and the request id in the body and header.
    const problem = await fetch(`${base}/v1/groups/abc`, { headers: { "x-request-id": "req-42" } });
    expect(problem.status).toBe(400);
    expect(problem.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(problem.headers.get("x-request-id")).toBe("req-42");
    expect(await problem.json()).toMatchObject({ requestId: "req-42", reason: "invalid-request", errors: [{ field: "params.id" }] });

    await app.close();
    cleanups.pop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe("start(config)", () => {
  it("opens the database, loads a topology file from examples/ and listens", async () => {
    const { file } = tempDir();
    const config = parseConfig(["--port", "0", "--db", file, "--topology", path.join(PROJECT_ROOT, "examples/virtio-guest.json"), "--log-level", "silent"], {});
    expect(config).toMatchObject({ port: 0, host: "127.0.0.1", databaseFile: file, logLevel: "silent" });
    const app = await start(config);
    cleanups.push(() => app.close());
    const base = baseUrl(app);

    const units = await json<PageView<UnitView>>(base, "GET", "/v1/units");
    expect(units.body.items.map((u) => [u.name, u.driver])).toEqual([["virtio0", "virtio-iommu"], ["virtio1", "virtio-iommu"]]);
    const groups = await json<PageView<GroupView>>(base, "GET", "/v1/groups");
    expect(groups.body.items.map((g) => g.name)).toEqual(["iommu-group-0", "iommu-group-1", "iommu-group-2", "iommu-group-3", "iommu-group-4"]);
    expect(groups.body.items.every((g) => g.deviceIds.length === 1)).toBe(true);
    const domains = await json<PageView<DomainView>>(base, "GET", "/v1/domains?limit=1000");
    const nvme = domains.body.items.find((d) => d.name === "l2-vm-nvme");
    expect(nvme).toMatchObject({ type: "paging", driver: "virtio-iommu", unitId: units.body.items[0]!.id });

    // The example's story: the 64 KiB-granule virtio-iommu cannot finalise a
    // domain; the guest runs 6.1, which answers EINVAL (ENODEV since 6.2), an
    // answer the 6.2 contract classifies as soft.
    const g3 = groups.body.items[3]!;
    const containers = await json<PageView<{ id: number; name: string }>>(base, "GET", "/v1/containers");
    const vm = containers.body.items.find((c) => c.name === "l2-vm")!;
    const refused = await json<{ errno: string; reason: string }>(base, "POST", `/v1/containers/${vm.id}/attach`, { groupId: g3.id });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ errno: "EINVAL", soft: true, reason: "granule-too-large" });
    const g0 = groups.body.items[0]!;
    expect((await json(base, "POST", `/v1/containers/${vm.id}/attach`, { groupId: g0.id })).status).toBe(200);

    // Starting again on the same file with the same topology keeps the state and adds nothing.
    await app.close();
    cleanups.pop();
    const again = await start(config);
    cleanups.push(() => again.close());
    const base2 = baseUrl(again);
    const groups2 = await json<PageView<GroupView>>(base2, "GET", "/v1/groups");
    expect(groups2.body.items).toHaveLength(5);
    expect(groups2.body.items[0]!.domainId).not.toBe(g0.defaultDomainId);
    expect((await json<PageView<UnitView>>(base2, "GET", "/v1/units")).body.items).toHaveLength(2);
  });

  it("a topology file that does not exist or is not JSON: ConfigError 'cannot read topology file'", async () => {
    const { dir } = tempDir();
    const missing = path.join(dir, "nope.json");
    expect(() => readTopologyFile(missing)).toThrow(ConfigError);
    expect(() => readTopologyFile(missing)).toThrow(/cannot read topology file .*nope\.json/);
    const garbage = path.join(dir, "garbage.json");
    writeFileSync(garbage, "{ units: [");
    expect(() => readTopologyFile(garbage)).toThrow(/cannot read topology file .*garbage\.json/);
    await expect(start(parseConfig(["--port", "0", "--db", path.join(dir, "a.db"), "--topology", missing, "--log-level", "silent"], {})))
      .rejects.toThrow(ConfigError);
  });

  it("a topology file that fails the schema: ConfigError naming the path of the problem", async () => {
    const { dir } = tempDir();
    const bad = path.join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ units: [{ name: "dmar0", driver: "intel-vtd", capabilities: { adressWidth: 48 } }] }));
    let error: unknown;
    try { readTopologyFile(bad); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/topology file .*bad\.json is not valid/);
    expect((error as Error).message).toContain("/units/0/capabilities");
  });

  it("a topology naming an undefined unit: TopologyConflictError, and the database is released", async () => {
    const { dir } = tempDir();
    const bad = path.join(dir, "dangling.json");
    writeFileSync(bad, JSON.stringify({ units: [], groups: [{ name: "g0", unit: "dmar9" }] }));
    const db = path.join(dir, "a.db");
    const err = await start(parseConfig(["--port", "0", "--db", db, "--topology", bad, "--log-level", "silent"], {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TopologyConflictError);
    expect((err as Error).message).toMatch(/dangling\.json cannot be applied: group g0 names unit dmar9/);
    // The store was closed: the file is free again.
    expect(isLocked(db)).toBe(false);
    const store = await SqliteStore.open({ drivers: DRIVERS, file: db, migrationsDir: MIGRATIONS });
    await store.close();
  });

  it("a port already in use: start() rejects and releases the database", async () => {
    const { dir } = tempDir();
    const db = path.join(dir, "a.db");
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as net.AddressInfo).port;
    const err = await start(parseConfig(["--port", String(port), "--db", db, "--topology", "none", "--log-level", "silent"], {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/EADDRINUSE|in use/);
    // Nothing may keep holding the database file after a failed start.
    expect(isLocked(db)).toBe(false);
  });

  it.each([
    [["--port", "abc"], /port must be an integer from 0 to 65535, got "abc"/],
    [["--port", "70000"], /port must be an integer from 0 to 65535, got "70000"/],
    [["--port=-1"], /port must be an integer from 0 to 65535, got "-1"/],
    [["--port", "80.5"], /port must be an integer/],
    [["--log-level", "loud"], /log level must be one of .*got "loud"/],
    [["--db", " "], /database file must not be empty/],
    [["--bogus"], /^Unknown option '--bogus' \(--help lists the settings\)$/],
  ])("parseConfig(%j) throws ConfigError %s", (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });

  it("reads PORT / DATABASE_FILE / TOPOLOGY_FILE from the environment; flags win", () => {
    const env = { PORT: "4000", DATABASE_FILE: "/tmp/x.db", TOPOLOGY_FILE: "none", LOG_LEVEL: "warn" };
    expect(parseConfig([], env)).toMatchObject({ port: 4000, databaseFile: "/tmp/x.db", topologyFile: null, logLevel: "warn" });
    expect(parseConfig(["--port", "5000"], env).port).toBe(5000);
    expect(() => parseConfig([], { PORT: "http" })).toThrow(/port must be an integer/);
  });
});
