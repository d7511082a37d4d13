// --log-format: JSON lines unless told otherwise or on a terminal; pretty
// lines when forced. The server's stdout here is a pipe, so "auto" is JSON.
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

async function linesWith(format: string | null): Promise<string[]> {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  const server = await startServer({ PORT: "0", DATABASE_FILE: file, TOPOLOGY_FILE: "none", LOG_LEVEL: "info", ...(format ? { LOG_FORMAT: format } : {}) });
  servers.push(server);
  expect(await server.stop()).toBe(0);
  return server.output().split("\n").filter((l) => l !== "");
}

const isJson = (line: string) => {
  try {
    return typeof JSON.parse(line) === "object";
  } catch {
    return false;
  }
};

describe("log format", () => {
  it("auto on a pipe, and json: one JSON object per line", { timeout: 60_000 }, async () => {
    for (const format of [null, "auto", "json"]) {
      const lines = await linesWith(format);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(isJson(line), `${format}: ${line}`).toBe(true);
      expect(lines.map((l) => (JSON.parse(l) as { msg?: string }).msg)).toContain("stopped: the database is closed");
    }
  });

  it("pretty: readable lines, no JSON", { timeout: 60_000 }, async () => {
    const lines = await linesWith("pretty");
    expect(lines.some((l) => /INFO.*Server listening at http:\/\/127\.0\.0\.1:\d+/.test(l))).toBe(true);
    expect(lines.some((l) => /INFO.*stopped: the database is closed/.test(l))).toBe(true);
    expect(lines.filter(isJson)).toEqual([]);
  });
});
