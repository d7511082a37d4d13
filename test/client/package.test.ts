// The client is the package's `./client` export: another program imports it
// by the package's name (here through Node's self-reference, as a dependant
// would through node_modules), with its type declarations beside it.
// Needs `npm run build` (dist/).
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { listeningArbiter, type Listening } from "../helpers/listening.js";

let server: Listening;
beforeAll(async () => {
  server = await listeningArbiter();
});
afterAll(() => server.close());

const SCRIPT = `
const client = await import("iommu-arbiter/client");
const c = new client.ArbiterClient(process.env.BASE);
const units = await c.units.list();
let refused = null;
try { await c.groups.attach(9, { domainId: 11 }); } catch (e) { refused = { errorClass: e instanceof client.ErrnoError, errno: e.errno, soft: e.soft }; }
console.log(JSON.stringify({ exports: Object.keys(client).sort(), units: units.items.map((u) => u.name), refused,
  resolved: import.meta.resolve("iommu-arbiter/client") }));
`;

it("imports as iommu-arbiter/client and talks to the server", async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["--input-type=module", "-e", SCRIPT], { cwd: PROJECT_ROOT, env: { ...process.env, BASE: server.base } },
      (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)));
  });
  const r = JSON.parse(stdout);
  expect(r.exports).toEqual(expect.arrayContaining(["ArbiterClient", "ErrnoError", "ProblemError", "TransportError", "attachWithRetry", "attachThroughContainer"]));
  expect(r.units).toEqual(["dmar0", "dmar1"]);
  expect(r.refused).toEqual({ errorClass: true, errno: "EINVAL", soft: true });
  expect(r.resolved).toBe(`file://${path.join(PROJECT_ROOT, "dist", "client", "index.js")}`);
});

it("declares its types beside it", () => {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8"));
  const entry = pkg.exports["./client"];
  expect(entry).toEqual({ types: "./dist/client/index.d.ts", default: "./dist/client/index.js" });
  expect(existsSync(path.join(PROJECT_ROOT, entry.types))).toBe(true);
  expect(readFileSync(path.join(PROJECT_ROOT, entry.types), "utf8")).toContain("ArbiterClient");
  expect(pkg.bin).toEqual({ "iommu-arbiter": "bin/iommu-arbiter" });
});

const CONSUMER = `
import { ArbiterClient, ErrnoError, type Placement, type Unit } from "iommu-arbiter/client";
const c = new ArbiterClient({ baseUrl: "http://127.0.0.1:3000", token: "t" });
export async function use(): Promise<[Unit[], Placement | null]> {
  const units = await c.units.list({ limit: 10 });
  const width: number = units.items[0]!.capabilities.addressWidth;
  void width;
  try {
    return [units.items, await c.attachWithRetry(9, [11, 13], { allocate: { type: "paging", unitId: 2 } })];
  } catch (e) {
    if (e instanceof ErrnoError && e.soft) return [[], null];
    throw e;
  }
}
// Typed from the server's schemas, not any: a unit's name is a string.
export const wrong: number = (await c.units.get(1)).name;
`;

it("a dependant type-checks against the declarations: the answers are the schemas' types, not any", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-consumer-"));
  try {
    mkdirSync(path.join(dir, "node_modules"));
    symlinkSync(PROJECT_ROOT, path.join(dir, "node_modules", "iommu-arbiter"));
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(path.join(dir, "use.ts"), CONSUMER);
    const tsc = path.join(PROJECT_ROOT, "node_modules", "typescript", "bin", "tsc");
    const out = await new Promise<string>((resolve) => {
      execFile(process.execPath, [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
        "--skipLibCheck", "--types", "node", "--typeRoots", path.join(PROJECT_ROOT, "node_modules", "@types"), "use.ts"],
      { cwd: dir }, (_error, stdout) => resolve(stdout));
    });
    // Exactly the one error planted on the last line (line 16: the template starts with a newline).
    const errors = out.trim().split("\n").filter((l) => l.includes("error TS"));
    expect(errors).toEqual([expect.stringMatching(/^use\.ts\(16,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
