// The Docker files, checked without Docker (it cannot run here): the
// HEALTHCHECK command, taken verbatim from the Dockerfile, run by a shell as
// Docker runs it, against a real server on the port PORT names (healthy),
// the same server while its database refuses the readiness query and with
// nothing listening (unhealthy); the image runs as a non-root user owning
// /data; compose gives the shutdown more grace than its default timeout.
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { parseSettings, PROJECT_ROOT } from "../../src/config.js";
import { tempDbFile } from "../helpers/app.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const dockerfile = readFileSync(path.join(PROJECT_ROOT, "Dockerfile"), "utf8");
const compose = readFileSync(path.join(PROJECT_ROOT, "docker-compose.yml"), "utf8");

/** The final stage: everything after the last FROM. */
const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));

/** The HEALTHCHECK's command in shell form: what Docker runs with /bin/sh -c. */
function healthcheckCommand(): string {
  const m = /^HEALTHCHECK(?: +--[a-z-]+=\S+)* +CMD +(.+)$/m.exec(runtime);
  expect(m, "a HEALTHCHECK ... CMD line in the final stage").not.toBeNull();
  return m![1]!;
}

/** Runs the command as Docker would inside the container, with the container's environment. */
function runHealthcheck(env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile("/bin/sh", ["-c", healthcheckCommand()], { env: { PATH: process.env.PATH!, ...env }, timeout: 20_000 });
    child.on("exit", (code) => resolve(code ?? -1));
  });
}

const dirs: string[] = [];
const servers: ServerProcess[] = [];
afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) await s.kill9();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("Dockerfile HEALTHCHECK", () => {
  it("is healthy against a ready server on the configured PORT, unhealthy while the database refuses and with nothing listening", { timeout: 60_000 }, async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    const server = await startServer({ PORT: "0", DATABASE_FILE: file, TOPOLOGY_FILE: "none", LOG_LEVEL: "info" });
    servers.push(server);
    const port = new URL(server.base).port;
    expect(port).not.toBe("3000");
    // As in the image: HOST=0.0.0.0 (reached on loopback), PORT the configured one.
    expect(await runHealthcheck({ HOST: "0.0.0.0", PORT: port })).toBe(0);
    expect(await runHealthcheck({ HOST: "127.0.0.1", PORT: port })).toBe(0);

    const db = new Database(file);
    db.exec(`ALTER TABLE "_prisma_migrations" RENAME TO "_hidden"`);
    expect(await runHealthcheck({ HOST: "0.0.0.0", PORT: port })).toBe(1);
    db.exec(`ALTER TABLE "_hidden" RENAME TO "_prisma_migrations"`);
    db.close();
    expect(await runHealthcheck({ HOST: "0.0.0.0", PORT: port })).toBe(0);

    expect(await server.stop()).toBe(0);
    expect(await runHealthcheck({ HOST: "0.0.0.0", PORT: port })).toBe(1);
  });
});

describe("the image and compose", () => {
  it("runs as the node user, who owns /data, and stops with SIGTERM", () => {
    const user = runtime.indexOf("\nUSER node\n");
    expect(user).toBeGreaterThan(0);
    expect(runtime).toMatch(/chown node:node \/data/);
    expect(runtime.indexOf("chown node:node /data")).toBeLessThan(user);
    expect(runtime).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(runtime).toMatch(/^CMD \["bin\/iommu-arbiter-server"\]$/m);
  });

  it("compose stops with SIGTERM and a grace period longer than the default shutdown timeout", () => {
    expect(compose).toMatch(/^ {4}stop_signal: SIGTERM$/m);
    const grace = /^ {4}stop_grace_period: (\d+)s$/m.exec(compose);
    expect(grace).not.toBeNull();
    expect(Number(grace![1]) * 1000).toBeGreaterThan(parseSettings([], {}).shutdownTimeout);
  });
});
