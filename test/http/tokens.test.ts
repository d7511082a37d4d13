// The token table: strict validation at start-up (one-line ConfigError),
// lookup by digest, where it comes from, the open-mode loopback rule, and the
// `npm run token` script that makes entries.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig, PROJECT_ROOT } from "../../src/config.js";
import {
  hashToken, isLoopbackHost, loadTokens, makeTokenEntry, parseTokenTable, refuseOpenNonLoopback, TokenTable,
} from "../../src/http/tokens.js";

const HEX = "a".repeat(64);
const entry = (over: Record<string, unknown> = {}) => ({ name: "vmm-a", role: "client", sha256: HEX, ...over });
const file = (...tokens: unknown[]) => JSON.stringify({ tokens });

describe("parseTokenTable refuses a bad table with a one-line ConfigError", () => {
  it.each([
    ["not JSON", "{tokens: []", /is not JSON/],
    ["an array, not an object", JSON.stringify([entry()]), /expected \{"tokens"/],
    ["no tokens field", "{}", /tokens/],
    ["an unknown top-level field", JSON.stringify({ tokens: [entry()], extra: 1 }), /\/extra is not a known field/],
    ["no tokens at all", file(), /lists no tokens/],
    ["an entry without sha256", file({ name: "a", role: "admin" }), /sha256/],
    ["an entry with an unknown field", file(entry({ token: "secret" })), /\/tokens\/0\/token is not a known field/],
    ["an unknown role", file(entry({ role: "root" })), /\/tokens\/0\/role "root" is not one of reader, client, admin/],
    ["a role of the wrong case", file(entry({ role: "Admin" })), /is not one of/],
    ["upper-case hex", file(entry({ sha256: "A".repeat(64) })), /64 lowercase hex digits/],
    ["a short digest", file(entry({ sha256: "ab" })), /64 lowercase hex digits/],
    ["a digest that is not hex", file(entry({ sha256: "g".repeat(64) })), /64 lowercase hex digits/],
    ["an empty name", file(entry({ name: "" })), /\/tokens\/0\/name must be 1-64 letters/],
    ["a name with a space", file(entry({ name: "vmm a" })), /name must be 1-64 letters/],
    ["a duplicate name", file(entry(), entry({ sha256: "b".repeat(64) })), /\/tokens\/1\/name "vmm-a" appears twice/],
    ["a duplicate digest", file(entry(), entry({ name: "vmm-b" })), /\/tokens\/1\/sha256 repeats an earlier entry's/],
  ])("%s", (_case, text, message) => {
    let thrown: unknown;
    try {
      parseTokenTable(text, "token file t.json");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const msg = (thrown as Error).message;
    expect(msg).toMatch(message);
    expect(msg).toMatch(/^(token file t\.json)/);
    expect(msg).not.toContain("\n");
  });

  it("accepts a valid table of every role", () => {
    const table = parseTokenTable(file(entry(), entry({ name: "ops", role: "admin", sha256: "b".repeat(64) }), entry({ name: "r", role: "reader", sha256: "c".repeat(64) })), "t");
    expect(table.size).toBe(3);
  });
});

describe("TokenTable.identify", () => {
  const made = (["admin", "client", "reader"] as const).map((role, i) => makeTokenEntry(`who-${i}`, role));
  const table = parseTokenTable(file(...made.map((m) => m.entry)), "t");

  it("finds each token's own identity, by the SHA-256 of the token", () => {
    made.forEach((m) => {
      expect(m.entry.sha256).toBe(hashToken(m.token));
      expect(table.identify(m.token)).toEqual({ name: m.entry.name, role: m.entry.role });
    });
  });

  it.each([
    ["an unknown token", "iat_nope"],
    ["the empty string", ""],
    ["a digest from the file", made[0]!.entry.sha256],
    ["a token with a character more", `${made[0]!.token}x`],
  ])("knows nobody for %s", (_case, token) => {
    expect(table.identify(token)).toBeNull();
  });

  it("an empty table (never built from a file, which must list one) knows nobody", () => {
    expect(new TokenTable({ tokens: [] }).identify(made[0]!.token)).toBeNull();
  });

  it("makeTokenEntry gives a fresh random token each time", () => {
    const a = makeTokenEntry("x", "client");
    const b = makeTokenEntry("x", "client");
    expect(a.token).not.toBe(b.token);
    expect(a.token).toMatch(/^iat_[A-Za-z0-9_-]{43}$/);
  });
});

describe("where the table comes from", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-tokens-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const good = file(entry());

  it("no file and no TOKENS: null, open mode", () => {
    expect(loadTokens({ tokensFile: null, tokensJson: null })).toBeNull();
  });

  it("reads a file, or the TOKENS variable", () => {
    const f = path.join(dir, "tokens.json");
    writeFileSync(f, good);
    expect(loadTokens({ tokensFile: f, tokensJson: null })!.size).toBe(1);
    expect(loadTokens({ tokensFile: null, tokensJson: good })!.size).toBe(1);
  });

  it.each([
    ["both", { tokensFile: "/x", tokensJson: good }, /not both/],
    ["a missing file", { tokensFile: path.join(dir, "absent.json"), tokensJson: null }, /cannot read token file .*absent\.json/],
    ["a bad TOKENS", { tokensFile: null, tokensJson: "[]" }, /^TOKENS: /],
  ])("refuses %s", (_case, settings, message) => {
    expect(() => loadTokens(settings)).toThrow(ConfigError);
    expect(() => loadTokens(settings)).toThrow(message);
  });

  it("settings: --tokens / TOKENS_FILE (resolved), TOKENS, quotas with defaults", () => {
    const d = parseConfig([], {});
    expect(d).toMatchObject({ tokensFile: null, tokensJson: null, objectQuota: 1000, maxFaults: 1000, maxFaultCount: 1000 });
    expect(parseConfig(["--tokens", "t.json"], {}).tokensFile).toBe(path.resolve("t.json"));
    expect(parseConfig([], { TOKENS_FILE: "/etc/t.json" }).tokensFile).toBe("/etc/t.json");
    expect(parseConfig([], { TOKENS: good }).tokensJson).toBe(good);
    expect(parseConfig(["--object-quota", "5", "--max-faults", "6", "--max-fault-count", "7"], {})).toMatchObject({ objectQuota: 5, maxFaults: 6, maxFaultCount: 7 });
    expect(() => parseConfig([], { OBJECT_QUOTA: "0" })).toThrow(/object quota must be an integer from 1/);
  });
});

describe("open mode is for loopback only", () => {
  it.each([
    ["127.0.0.1", true], ["127.8.9.10", true], ["::1", true], ["0:0:0:0:0:0:0:1", true], ["localhost", true],
    ["0.0.0.0", false], ["::", false], ["10.0.0.1", false], ["128.0.0.1", false], ["example.com", false], ["localhost.example.com", false],
  ])("%s is loopback: %s", (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
    const check = () => refuseOpenNonLoopback(host, null);
    if (loopback) expect(check).not.toThrow();
    else expect(check).toThrow(/refusing to listen on .* without bearer tokens/);
    // With tokens any address is allowed.
    expect(() => refuseOpenNonLoopback(host, parseTokenTable(file(entry()), "t"))).not.toThrow();
  });
});

describe("npm run token", () => {
  const run = (args: string[]) => spawnSync(process.execPath, [path.join(PROJECT_ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "scripts/token.ts", ...args], {
    cwd: PROJECT_ROOT, encoding: "utf8",
  });

  it("prints a fresh token and a file entry holding only its digest, which the table accepts", () => {
    const r = run(["--name", "vmm-a", "--role", "client"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    const token = lines[1]!;
    const printed = JSON.parse(lines[3]!) as { name: string; role: string; sha256: string };
    expect(printed).toEqual({ name: "vmm-a", role: "client", sha256: hashToken(token) });
    expect(lines[3]).not.toContain(token);
    expect(parseTokenTable(file(printed), "t").identify(token)).toEqual({ name: "vmm-a", role: "client" });
  });

  it.each([
    [["--name", "x"], /Usage: npm run token/],
    [["--name", "x", "--role", "root"], /"root" is not one of/],
    [["--name", "x", "--role", "client", "--extra"], /Unknown option/],
  ])("refuses %j with exit code 2", (args, message) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe("");
  });
});
