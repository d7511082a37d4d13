// SIGTERM on a real server with clients attached: one holding an idle
// keep-alive connection, one with a write in flight (its headers sent, its
// body not yet). The keep-alive and socket timeouts are set far beyond the
// test's own timeout, so only the shutdown itself can end those
// connections: the process closes the idle one at once, answers the write
// (and closes that connection after the answer), flushes, and exits 0; the
// write is on disk after a restart. Past --shutdown-timeout a request that
// never completes is cut off and the process exits 1, saying why.
import net from "node:net";
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { tempDbFile } from "../helpers/app.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const dirs: string[] = [];
const servers: ServerProcess[] = [];
afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) await s.kill9();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Only the shutdown may close a connection: every timeout that could is far away. */
const PATIENT = { KEEP_ALIVE_TIMEOUT: "3600000", SOCKET_TIMEOUT: "0", REQUEST_TIMEOUT: "3600000", HEADERS_TIMEOUT: "3600000" };

async function serve(env: Record<string, string> = {}): Promise<{ server: ServerProcess; file: string }> {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  const server = await startServer({ PORT: "0", DATABASE_FILE: file, TOPOLOGY_FILE: "none", LOG_LEVEL: "info", LOG_FORMAT: "json", ...PATIENT, ...env });
  servers.push(server);
  return { server, file };
}

/** A raw connection: what it has received, and a promise settled when the server closes it. */
function connect(base: string): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      let text = "";
      socket.on("data", (c: Buffer) => (text += c.toString()));
      const closed = new Promise<void>((done) => socket.once("close", () => done()));
      resolve({ socket, received: () => text, closed });
    });
    socket.once("error", reject);
  });
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

function exitCode(server: ServerProcess): Promise<number | null> {
  if (server.child.exitCode !== null) return Promise.resolve(server.child.exitCode);
  return new Promise((resolve) => server.child.once("exit", (code) => resolve(code)));
}

describe("SIGTERM", () => {
  it("closes an idle keep-alive connection at once, answers the write in flight, exits 0; the write survives a restart", { timeout: 60_000 }, async () => {
    const { server, file } = await serve();

    const idle = await connect(server.base);
    idle.socket.write("GET /livez HTTP/1.1\r\nHost: test\r\n\r\n");
    await until(() => idle.received().includes("\r\n\r\n{\"status\":\"ok\"}"));
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(idle.received()).toMatch(/keep-alive/i);

    const body = JSON.stringify({ name: "in-flight", driver: "mock" });
    const busy = await connect(server.base);
    busy.socket.write(`POST /v1/units HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
    busy.socket.write(body.slice(0, 5));
    // In flight once the server has begun it (Fastify logs it before the body arrives).
    await until(() => /"method":"POST"/.test(server.output()));

    server.child.kill("SIGTERM");
    await until(() => server.output().includes("shutting down"));
    // The idle connection is closed by the server, not by any timeout.
    await idle.closed;
    expect(server.child.exitCode).toBeNull();

    busy.socket.write(body.slice(5));
    await busy.closed;
    const answer = busy.received();
    expect(answer).toMatch(/^HTTP\/1\.1 201 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(await exitCode(server)).toBe(0);
    expect(server.output()).toMatch(/stopped: the database is closed/);

    const again = await startServer({ PORT: "0", DATABASE_FILE: file, TOPOLOGY_FILE: "none", LOG_LEVEL: "info" });
    servers.push(again);
    const units = (await (await fetch(`${again.base}/v1/units`)).json()) as { items: { name: string }[] };
    expect(units.items.map((u) => u.name)).toEqual(["in-flight"]);
    expect(await again.stop()).toBe(0);
  });

  it("past --shutdown-timeout cuts a request that never completes and exits 1, saying so", { timeout: 60_000 }, async () => {
    const { server } = await serve({ SHUTDOWN_TIMEOUT: "300" });
    const stuck = await connect(server.base);
    stuck.socket.write("POST /v1/units HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    await until(() => /"method":"POST"/.test(server.output()));
    server.child.kill("SIGTERM");
    await stuck.closed;
    expect(await exitCode(server)).toBe(1);
    expect(server.output()).toMatch(/shutdown did not finish in time/);
  });
});
