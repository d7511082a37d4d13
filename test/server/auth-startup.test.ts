// Start-up with and without a token table: open mode refuses a non-loopback
// address (exit 2, one line), a bad table stops start-up, and a table given
// in TOKENS protects the listening server.
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig, PROJECT_ROOT } from "../../src/config.js";
import { makeTokenEntry } from "../../src/http/tokens.js";
import { start } from "../../src/server.js";
import { tempDbFile } from "../helpers/app.js";

const LAUNCHER = path.join(PROJECT_ROOT, "bin", "iommu-arbiter-server");

function runToExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const clean = { ...process.env };
  delete clean.TOKENS;
  delete clean.TOKENS_FILE;
  const child = spawn(LAUNCHER, [], { cwd: PROJECT_ROOT, env: { ...clean, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stderr })));
}

describe("start-up and tokens", () => {
  const { dir, file } = tempDbFile();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const argv = ["--port", "0", "--db", file, "--topology", "none", "--log-level", "silent"];

  it("open mode on a non-loopback address: exit code 2 and one line, before the database is touched", async () => {
    const r = await runToExit({ HOST: "0.0.0.0", PORT: "0", DATABASE_FILE: path.join(dir, "open.db"), TOPOLOGY_FILE: "none" });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^iommu-arbiter: refusing to listen on 0\.0\.0\.0 without bearer tokens/)]);
    expect(existsSync(path.join(dir, "open.db"))).toBe(false);
  });

  it.each([
    [{ TOKENS: "{\"tokens\": [{\"name\": \"a\", \"role\": \"boss\", \"sha256\": \"00\"}]}" }, /TOKENS: \/tokens\/0\/role "boss"/],
    [{ TOKENS_FILE: "/nonexistent/tokens.json" }, /cannot read token file/],
  ])("a bad token table stops start-up: %j", async (env, message) => {
    await expect(start(parseConfig(argv, env))).rejects.toThrow(ConfigError);
    await expect(start(parseConfig(argv, env))).rejects.toThrow(message);
  });

  it("with TOKENS the server answers 401 without a token and serves the token's role", async () => {
    const reader = makeTokenEntry("dashboard", "reader");
    const app = await start(parseConfig(argv, { TOKENS: JSON.stringify({ tokens: [reader.entry] }) }));
    try {
      const address = app.server.address();
      const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const anonymous = await fetch(`${base}/v1/units`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("www-authenticate")).toMatch(/^Bearer /);
      const auth = { authorization: `Bearer ${reader.token}` };
      expect((await fetch(`${base}/v1/units`, { headers: auth })).status).toBe(200);
      const write = await fetch(`${base}/v1/units`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ name: "u", driver: "mock" }) });
      expect(write.status).toBe(403);
    } finally {
      await app.close();
    }
  });
});
