// The preset topology is applied once, to a database that has never held an
// object: what is deleted through the API stays deleted across restarts, no
// object comes back under a new id, and no state reachable through the API
// can stop the default configuration from starting. Later changes come
// through `--topology-apply FILE` (a real process: it prints a report and
// exits 0, or 2 on conflict, and is refused while a server holds the file).
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig, PROJECT_ROOT } from "../../src/config.js";
import { start } from "../../src/server.js";
import { tempDbFile } from "../helpers/app.js";

const LAUNCHER = path.join(PROJECT_ROOT, "bin", "iommu-arbiter-server");
const INTEL = path.join(PROJECT_ROOT, "examples", "intel-2s-server.json");
const VIRTIO = path.join(PROJECT_ROOT, "examples", "virtio-guest.json");
const SLOW = 120_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function newDb(): string {
  const { dir, file } = tempDbFile();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return file;
}

async function serve(file: string, topology = INTEL): Promise<{ app: FastifyInstance; base: string }> {
  const app = await start(parseConfig(["--port", "0", "--db", file, "--topology", topology, "--log-level", "silent"], {}));
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error("not listening on TCP");
  return { app, base: `http://127.0.0.1:${addr.port}` };
}

interface Item { id: number; name: string; domainId?: number }

async function call<T>(base: string, method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(base + url, {
    method, ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

const list = async (base: string, kind: string) => (await call<{ items: Item[] }>(base, "GET", `/v1/${kind}?limit=1000`)).body.items;

function applyFile(file: string, topology: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(LAUNCHER, ["--db", file, "--topology-apply", topology, "--log-level", "warn"], {
    cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("preset topology, applied once", () => {
  it("keeps preset objects deleted through the API deleted across restarts, with no new ids", { timeout: SLOW }, async () => {
    const file = newDb();
    const first = await serve(file);
    const devices = await list(first.base, "devices");
    const domains = await list(first.base, "domains");
    const gone = devices.find((d) => d.name === "0000:5e:00.0")!;
    const plain = domains.find((d) => d.name === "dmar1-plain")!;
    const group = (await list(first.base, "groups")).find((g) => g.name === "iommu-group-21")!;
    const target = domains.find((d) => d.name === "dmar0-plain")!;
    // The state that used to stop the default configuration from starting:
    // a preset device deleted and its group attached elsewhere (with a device
    // of its own, since an empty group cannot be attached).
    expect((await call(first.base, "POST", "/v1/devices", { name: "replacement", groupId: group.id })).status).toBe(201);
    expect((await call(first.base, "DELETE", `/v1/devices/${gone.id}`)).status).toBe(204);
    expect((await call(first.base, "DELETE", `/v1/domains/${plain.id}`)).status).toBe(204);
    expect((await call(first.base, "POST", `/v1/groups/${group.id}/attach`, { domainId: target.id })).status).toBe(200);
    const ids = async (base: string) => Object.fromEntries(await Promise.all(
      ["units", "groups", "devices", "domains", "containers"].map(async (k) => [k, (await list(base, k)).map((o) => o.id)])));
    const before = await ids(first.base);
    await first.app.close();

    const second = await serve(file);
    cleanups.push(() => second.app.close());
    expect(await ids(second.base)).toEqual(before);
    expect((await list(second.base, "devices")).map((d) => d.name)).not.toContain("0000:5e:00.0");
    expect((await list(second.base, "domains")).map((d) => d.name)).not.toContain("dmar1-plain");
    expect((await call<Item>(second.base, "GET", `/v1/groups/${group.id}`)).body.domainId).toBe(target.id);
  });

  it("applies the preset to a database that has never held an object, once", { timeout: SLOW }, async () => {
    const file = newDb();
    const empty = await serve(file, "none");
    expect(await list(empty.base, "units")).toEqual([]);
    await empty.app.close();
    // Still new: the preset given now is applied.
    const first = await serve(file, VIRTIO);
    const units = await list(first.base, "units");
    expect(units.map((u) => u.name)).toEqual(["virtio0", "virtio1"]);
    expect(await list(first.base, "groups")).toHaveLength(5);
    await first.app.close();
    // Not new any more: another preset is not applied.
    const second = await serve(file, INTEL);
    cleanups.push(() => second.app.close());
    expect((await list(second.base, "units")).map((u) => u.name)).toEqual(["virtio0", "virtio1"]);
  });
});

describe("--topology-apply FILE", () => {
  it("reports what it created and what was present, exits 0; on conflict exits 2 with one line and changes nothing", { timeout: SLOW }, async () => {
    const file = newDb();
    const created = await applyFile(file, VIRTIO);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toBe("");
    expect(created.stdout).toMatch(/^ {2}units {7}2 created, 0 already present$/m);
    expect(created.stdout).toMatch(/^ {2}devices {5}5 created, 0 already present$/m);
    expect(created.stdout).toMatch(/^ {2}applied$/m);

    const again = await applyFile(file, VIRTIO);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^ {2}units {7}0 created, 2 already present$/m);
    expect(again.stdout).toMatch(/^ {2}groups {6}0 created, 5 already present$/m);

    // Serve it, delete a device and attach its group elsewhere: the file can
    // no longer put the device back.
    const running = await serve(file, "none");
    const device = (await list(running.base, "devices"))[0]!;
    const groupId = (await call<{ groupId: number }>(running.base, "GET", `/v1/devices/${device.id}`)).body.groupId;
    const domain = await call<Item>(running.base, "POST", "/v1/domains", { type: "paging", unitId: 1 });
    expect(domain.status).toBe(201);
    expect((await call(running.base, "POST", "/v1/devices", { name: "replacement", groupId })).status).toBe(201);
    expect((await call(running.base, "DELETE", `/v1/devices/${device.id}`)).status).toBe(204);
    expect((await call(running.base, "POST", `/v1/groups/${groupId}/attach`, { domainId: domain.body.id })).status).toBe(200);

    // Refused while the server holds the database.
    const refused = await applyFile(file, VIRTIO);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^iommu-arbiter: database file .* is in use by another process[^\n]*\n$/);
    await running.app.close();

    const conflict = await applyFile(file, VIRTIO);
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toMatch(new RegExp(`^iommu-arbiter: topology file .*virtio-guest\\.json conflicts with the database: device ${device.name}: .*; nothing applied\\n$`));
    expect(conflict.stdout).toMatch(new RegExp(`^ {2}conflict: device ${device.name}: group .* is attached to domain ${domain.body.id}`, "m"));
    expect(conflict.stdout).toMatch(/^ {2}not applied: 1 conflict\(s\); the database is unchanged$/m);

    const after = await serve(file, "none");
    cleanups.push(() => after.app.close());
    expect((await list(after.base, "devices")).map((d) => d.name)).not.toContain(device.name);
  });
});
