// The built command line (bin/iommu-arbiter -> dist/cli/main.js; run
// `npm run build` first) against a real listening server: tables for people,
// --json for scripts, the exit status of a refusal is its errno's number
// with one line on stderr, usage errors exit 2, an unreachable server 69.
import { execFile, spawn } from "node:child_process";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArbiterClient } from "../../src/client/index.js";
import { PROJECT_ROOT } from "../../src/config.js";
import { listeningArbiter, type Listening } from "../helpers/listening.js";

const CLI = path.join(PROJECT_ROOT, "bin", "iommu-arbiter");

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end (asynchronously: the server answering it lives in this process). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      cwd: PROJECT_ROOT, env: { ...process.env, IOMMU_ARBITER_URL: server.base, NO_COLOR: "1", ...env }, timeout: 30_000,
    }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

let server: Listening;
let client: ArbiterClient;

beforeAll(async () => {
  server = await listeningArbiter();
  client = new ArbiterClient(server.base);
});
afterAll(() => server.close());

describe("output", () => {
  it("list: an aligned table, no escape codes when stdout is not a terminal", async () => {
    const r = await cli(["list", "units"]);
    expect(r).toMatchObject({ status: 0, stderr: "" });
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["ID", "NAME", "DRIVER", "ONLINE", "ADDR-BITS", "SNOOP"]);
    expect(lines[1]!.split(/\s{2,}/)).toEqual(["1", "dmar0", "intel-vtd", "true", "48", "true"]);
    expect(lines[2]!.split(/\s{2,}/)).toEqual(["2", "dmar1", "intel-vtd", "true", "39", "false"]);
    // Each column starts at the same place on every line.
    for (const [header, first, second] of [["NAME", "dmar0", "dmar1"], ["ADDR-BITS", "48", "39"]] as const) {
      expect(lines[1]!.indexOf(first)).toBe(lines[0]!.indexOf(header));
      expect(lines[2]!.indexOf(second)).toBe(lines[0]!.indexOf(header));
    }
    expect(r.stdout).not.toContain("\x1b[");
  });

  it("--json: the API's document, as the client reads it", async () => {
    const units = await cli(["list", "units", "--json"]);
    expect(JSON.parse(units.stdout)).toEqual(await client.units.list());
    const group = await cli(["--json", "show", "groups", "3"]);
    expect(JSON.parse(group.stdout)).toEqual(await client.groups.get(3));
    const all = await cli(["list", "groups", "--limit", "4", "--all", "--json"]);
    expect(JSON.parse(all.stdout).items).toEqual((await client.groups.list({ limit: 1000 })).items);
  });

  it("show: one field per line, the values aligned", async () => {
    const r = await cli(["show", "domains", "11"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^id {18}11$/m);
    expect(r.stdout).toMatch(/^name {16}vm1-coherent$/m);
  });

  it("the dry run: a verdict per domain", async () => {
    const r = await cli(["compat", "9", "--limit", "20"]);
    expect(r.status).toBe(0);
    const row = r.stdout.split("\n").find((l) => l.startsWith("11 "));
    expect(row?.split(/\s{2,}/)).toEqual(["11", "false", "false", "EINVAL", "true", "snoop-control"]);
  });
});

describe("moves", () => {
  it("attach, replace, detach, claim and release; exit 0", async () => {
    const attached = await cli(["attach", "1", "11", "--json"]);
    expect(attached.status).toBe(0);
    expect(JSON.parse(attached.stdout)).toMatchObject({ changed: true, group: { id: 1, domainId: 11 } });
    const replaced = await cli(["replace", "1", "12"]);
    expect(replaced.status).toBe(0);
    expect(replaced.stdout).toMatch(/^domain +12$/m);
    expect((await cli(["detach", "1"])).stdout).toMatch(/^domain +1$/m);
    expect((await cli(["claim", "3", "--owner", "vm-a"])).stdout).toMatch(/^owner +vm-a$/m);
    expect((await cli(["release", "3"], { IOMMU_ARBITER_OWNER: "vm-a" })).stdout).toMatch(/^owner +-$/m);
  });

  it("a soft EINVAL exits 22 with one line on stderr", async () => {
    const r = await cli(["attach", "9", "11"]);
    expect(r).toEqual({
      status: 22, stdout: "",
      stderr: "iommu-arbiter: EINVAL (soft): domain 11 enforces cache coherency (force_snooping); dmar1 has no snoop control\n",
    });
  });

  it("EBUSY exits 16", async () => {
    await client.groups.attach(2, { domainId: 11 });
    const r = await cli(["attach", "2", "12"]);
    expect(r).toEqual({ status: 16, stdout: "", stderr: "iommu-arbiter: EBUSY: group iommu-group-22 is attached to domain 11; use replace\n" });
    await client.groups.detach(2, { domainId: 11 });
  });

  it("host: the kernel profile, and a 6.1 kernel's answer (EOPNOTSUPP, read as ENODEV: exit 19)", async () => {
    expect((await cli(["host", "--kernel-profile", "6.1"])).stdout).toMatch(/^kernel profile +6\.1$/m);
    try {
      const r = await cli(["attach", "9", "11"]);
      expect(r.status).toBe(19);
      expect(r.stderr).toMatch(/^iommu-arbiter: ENODEV \(driver EOPNOTSUPP\): domain 11 enforces cache coherency/);
    } finally {
      expect((await cli(["host", "--kernel-profile", "6.5+"])).status).toBe(0);
    }
    expect(JSON.parse((await cli(["host", "--json"])).stdout)).toEqual(await client.host.get());
  });

  it("a driver code outside the contract exits 19 (ENODEV), naming the raw code", async () => {
    const injected = await cli(["faults", "inject", "--unit", "1", "--errno", "ETIMEDOUT"]);
    expect(injected.status).toBe(0);
    const r = await cli(["attach", "4", "12"]);
    expect(r.status).toBe(19);
    expect(r.stderr).toMatch(/^iommu-arbiter: ENODEV \(driver ETIMEDOUT\): injected ETIMEDOUT .*\n$/);
    expect((await cli(["faults", "clear"])).stdout).toMatch(/^cleared +0$/m);
  });

  it("several candidates: retry-on-EINVAL, with the attempts", async () => {
    const r = await cli(["attach", "9", "11", "12", "13"]);
    expect(r.status).toBe(0);
    const rows = r.stdout.split("\n").filter((l) => /^\d+ /.test(l)).map((l) => l.split(/\s{2,}/));
    expect(rows).toEqual([
      ["11", "false", "false", "EINVAL", "true", "snoop-control"],
      ["12", "false", "false", "EINVAL", "true", "page-size"],
      ["13", "false", "false", "-", "-", "-"],
    ]);
    await client.groups.detach(9, { domainId: 13 });
    const allocated = await cli(["attach", "9", "11", "--allocate", '{"type":"paging","unitId":2}', "--json"]);
    expect(JSON.parse(allocated.stdout)).toMatchObject({ allocated: true, group: { domainId: expect.any(Number) } });
    await client.groups.detach(9, { domainId: JSON.parse(allocated.stdout).domain.id });
  });

  it("container attach: the server's search and its attempts", async () => {
    const r = await cli(["container", "attach", "1", "10", "--json"]);
    expect(r.status).toBe(0);
    const answer = JSON.parse(r.stdout);
    expect(answer).toMatchObject({ allocated: true, group: { id: 10 } });
    const detached = await cli(["container", "detach", "1", "10"]);
    expect(detached.stdout).toMatch(new RegExp(`^freed domain +${answer.domain.id}$`, "m"));
  });

  it("events: a page of the log", async () => {
    const r = await cli(["events", "--group", "1", "--json"]);
    expect(JSON.parse(r.stdout).items.map((e: { op: string }) => e.op)).toEqual(["attach-group", "replace-group", "detach-group"]);
  });
});

describe("exit status", () => {
  it.each([
    [["attach", "x", "1"], /group.*positive integer/],
    [["attach", "1"], /missing required argument 'domains'/],
    [["list", "nothing"], /Allowed choices are units, groups/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["list", "units", "--bogus"], /unknown option '--bogus'/],
    [["faults", "inject", "--errno", "EIO"], /name --unit or --device/],
    [["--url", "ftp://example", "list", "units"], /must be an http: or https: URL/],
  ])("usage error %j exits 2", async (args, message) => {
    const r = await cli(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("--help exits 0", async () => {
    const r = await cli(["--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Usage: iommu-arbiter");
  });

  it("an unreachable server exits 69", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await cli(["list", "units", "--retries", "1"], { IOMMU_ARBITER_URL: `http://127.0.0.1:${port}` });
    expect(r).toEqual({ status: 69, stdout: "", stderr: "iommu-arbiter: GET /v1/units: ECONNREFUSED (2 tries)\n" });
  });

  it("the service's own refusals exit with their errno too (400 EINVAL names the field)", async () => {
    const r = await cli(["faults", "inject", "--unit", "1", "--errno", "ENOTANERRNO"]);
    expect(r.status).toBe(22);
    expect(r.stderr).toMatch(/^iommu-arbiter: EINVAL \(hard\): .*body\.errno/);
  });
});

describe("server and token", () => {
  it("--token and IOMMU_ARBITER_TOKEN send the bearer token", async () => {
    const seen: (string | undefined)[] = [];
    const tiny = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ items: [], next: null }));
    });
    await new Promise<void>((resolve) => tiny.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(tiny.address() as AddressInfo).port}`;
    try {
      expect((await cli(["--url", url, "--token", "flag-token", "list", "units"])).status).toBe(0);
      expect((await cli(["list", "units"], { IOMMU_ARBITER_URL: url, IOMMU_ARBITER_TOKEN: "env-token" })).status).toBe(0);
      expect(seen).toEqual(["Bearer flag-token", "Bearer env-token"]);
    } finally {
      tiny.closeAllConnections();
      await new Promise<void>((resolve) => tiny.close(() => resolve()));
    }
  });

  it("serve runs the service through bin/iommu-arbiter-server with the flags given, and stops with it", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-cli-"));
    const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--db", path.join(dir, "x.db"), "--log-level", "info"], {
      cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"],
    });
    const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      let out = "";
      const base = await new Promise<string>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          out += chunk.toString();
          const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) resolve(m[1]!);
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        void exit.then((code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
      });
      const r = await cli(["list", "units", "--json"], { IOMMU_ARBITER_URL: base });
      expect(JSON.parse(r.stdout).items.map((u: { name: string }) => u.name)).toEqual(["dmar0", "dmar1"]);
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
