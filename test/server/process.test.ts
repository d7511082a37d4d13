// The service as a process, started the way `npm start`, the Dockerfile and
// docker-compose.yml start it (bin/iommu-arbiter-server, which execs node on
// dist/server.js, built by `npm run build`, which `npm test` runs first;
// configured by environment variables), stopped with SIGTERM, and started
// again on the same database file.
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { tempDbFile } from "../helpers/app.js";

const LAUNCHER = path.join(PROJECT_ROOT, "bin", "iommu-arbiter-server");

interface Running {
  readonly child: ChildProcess;
  readonly base: string;
  readonly output: () => string;
}

function startServer(env: Record<string, string>): Promise<Running> {
  const child = spawn(LAUNCHER, [], {
    cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 20_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1]!, output: () => out });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
}

function stop(server: Running): Promise<number | null> {
  return new Promise((resolve) => {
    server.child.removeAllListeners("exit");
    server.child.on("exit", (code) => resolve(code));
    server.child.kill("SIGTERM");
  });
}

function runToExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(LAUNCHER, [], {
    cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stderr })));
}

describe("server process", () => {
  const { dir, file } = tempDbFile();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = {
    HOST: "127.0.0.1", PORT: "0", DATABASE_FILE: file, LOG_LEVEL: "info",
    TOPOLOGY_FILE: path.join(PROJECT_ROOT, "examples", "intel-2s-server.json"),
  };

  it("starts from environment variables, serves, stops on SIGTERM and keeps its state across a restart", async () => {
    const first = await startServer(env);
    expect((await fetch(`${first.base}/healthz`)).status).toBe(200);
    const units = (await (await fetch(`${first.base}/v1/units`)).json()) as { items: { name: string }[] };
    expect(units.items.map((u) => u.name)).toEqual(["dmar0", "dmar1"]);
    const container = await fetch(`${first.base}/v1/containers`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "restart-check" }),
    });
    expect(container.status).toBe(201);
    const attach = await fetch(`${first.base}/v1/containers/${((await container.json()) as { id: number }).id}/attach`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ groupId: 1 }),
    });
    expect(attach.status).toBe(200);
    const placed = (await attach.json()) as { domain: { id: number } };
    expect(await stop(first)).toBe(0);

    // Same file, same topology file: nothing duplicated, the attach survived.
    const second = await startServer(env);
    // While it runs, a second process on the same file is refused: one writer.
    const intruder = await runToExit(env);
    expect(intruder.code).toBe(2);
    expect(intruder.stderr).toMatch(/in use by another process/);
    const group = (await (await fetch(`${second.base}/v1/groups/1`)).json()) as { domainId: number };
    expect(group.domainId).toBe(placed.domain.id);
    const again = (await (await fetch(`${second.base}/v1/units`)).json()) as { items: unknown[] };
    expect(again.items).toHaveLength(2);
    expect(await stop(second)).toBe(0);
  });

  it.each([
    [{ PORT: "http" }, /port must be an integer/],
    [{ LOG_LEVEL: "loud" }, /log level must be one of/],
    [{ TOPOLOGY_FILE: "/nonexistent/topology.json" }, /cannot read topology file/],
    [{ TOPOLOGY_FILE: path.join(PROJECT_ROOT, "package.json") }, /is not valid/],
  ])("refuses bad configuration %j with a clear message and exit code 2", async (bad, message) => {
    const r = await runToExit({ ...env, DATABASE_FILE: path.join(dir, "bad.db"), ...bad });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
