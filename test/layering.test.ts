// The import direction, enforced: the core (src/core) is pure and knows no
// driver, store, HTTP or start-up code and no I/O package; a driver
// (src/drivers) reads only the contract the core publishes. Import specifiers
// are read with TypeScript's own pre-processor, so `import type`,
// `export ... from`, `import()` and `require()` all count.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { DRIVERS } from "../src/drivers/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CORE = path.join(ROOT, "src/core");
const DRIVER_DIR = path.join(ROOT, "src/drivers");

interface Rule {
  readonly name: string;
  /** May a file of this layer import the module at `target` (an absolute .ts path)? */
  readonly relative: (target: string) => boolean;
  /** May it import this package (a bare specifier)? */
  readonly bare: (specifier: string) => boolean;
}

const inside = (dir: string, file: string) => {
  const rel = path.relative(dir, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
};

/**
 * Packages the core may use: pure declarations only. No node: builtin, no
 * Fastify, Prisma, better-sqlite3, pino: adding one here is a design decision.
 */
const CORE_PACKAGES = ["@sinclair/typebox"];

const CORE_RULE: Rule = {
  name: "src/core",
  relative: (target) => inside(CORE, target),
  bare: (specifier) => CORE_PACKAGES.some((p) => specifier === p || specifier.startsWith(`${p}/`)),
};

/** What a driver may read of the core: the contract, and the Result / reason values it answers with. */
const CONTRACT = ["driver.ts"].map((f) => path.join(CORE, f));

const DRIVER_RULE: Rule = {
  name: "src/drivers",
  relative: (target) => CONTRACT.includes(target) || inside(DRIVER_DIR, target),
  bare: () => false,
};

function specifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The imports of `file` (whose text is `source`) that break `rule`. */
function violations(rule: Rule, file: string, source: string): string[] {
  return specifiers(source).filter((spec) => {
    if (!spec.startsWith(".")) return !rule.bare(spec);
    const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, ".ts");
    return !rule.relative(target);
  });
}

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.join(dir, f))
    .sort();
}

describe("the checker itself", () => {
  const coreFile = path.join(CORE, "attach.ts");
  it.each([
    ['import { driverOf } from "../drivers/index.js";', "../drivers/index.js"],
    ['import type { Prisma } from "../store/database.js";', "../store/database.js"],
    ['export { buildApp } from "../http/app.js";', "../http/app.js"],
    ['const t = await import("../startup/topology.js");', "../startup/topology.js"],
    ['import { parseConfig } from "../config.js";', "../config.js"],
    ['import Fastify from "fastify";', "fastify"],
    ['import { PrismaClient } from "@prisma/client";', "@prisma/client"],
    ['import Database from "better-sqlite3";', "better-sqlite3"],
    ['import { readFileSync } from "node:fs";', "node:fs"],
    ['import fs from "fs";', "fs"],
    ['const p = require("pino");', "pino"],
  ])("flags a core file with %s", (line, bad) => {
    const source = `import { ok } from "./result.js";\n${line}\nexport const x = ok(1);\n`;
    expect(violations(CORE_RULE, coreFile, source)).toEqual([bad]);
  });

  it("passes a core file importing the core and a pure package", () => {
    const source = 'import type { Model } from "./model.js";\nimport { Type } from "@sinclair/typebox";\nexport * from "./driver.js";\n';
    expect(violations(CORE_RULE, coreFile, source)).toEqual([]);
  });

  const driverFile = path.join(DRIVER_DIR, "some-driver.ts");
  it.each([
    ['import type { Model } from "../core/model.js";', "../core/model.js"],
    ['import { lookup } from "../core/lookup.js";', "../core/lookup.js"],
    ['import type { Unit } from "../core/entities.js";', "../core/entities.js"],
    ['import { TABLES } from "../store/rows.js";', "../store/rows.js"],
    ['import { DriverName } from "../http/schemas/resources.js";', "../http/schemas/resources.js"],
    ['import { Type } from "@sinclair/typebox";', "@sinclair/typebox"],
    ['import { fail } from "../core/result.js";', "../core/result.js"],
    ['import type { FixedReason } from "../core/reasons.js";', "../core/reasons.js"],
  ])("flags a driver file with %s", (line, bad) => {
    const source = `import type { IommuDriver } from "../core/driver.js";\n${line}\n`;
    expect(violations(DRIVER_RULE, driverFile, source)).toEqual([bad]);
  });

  it("passes a driver file importing the contract (with Result and fail) and the shared rules", () => {
    const source = [
      'import { fail, type IommuDriver, type UnitUsage } from "../core/driver.js";',
      'import type { FixedReason } from "../core/driver.js";',
      'import { OK } from "./rules.js";',
    ].join("\n");
    expect(violations(DRIVER_RULE, driverFile, source)).toEqual([]);
  });
});

describe.each([
  [CORE_RULE.name, CORE_RULE, CORE],
  [DRIVER_RULE.name, DRIVER_RULE, DRIVER_DIR],
] as const)("%s imports only what it may", (_name, rule, dir) => {
  const files = sources(dir);
  it("finds the layer's files", () => {
    expect(files.length).toBeGreaterThan(3);
  });
  it.each(files.map((f) => [path.relative(ROOT, f), f]))("%s", (_name, file) => {
    expect(violations(rule, file, readFileSync(file, "utf8"))).toEqual([]);
  });
});

describe("one file per driver, each registered", () => {
  const files = sources(DRIVER_DIR).filter((f) => !["index.ts", "rules.ts"].includes(path.basename(f)));
  const registered = new Set<unknown>(Object.values(DRIVERS));
  it.each(files.map((f) => [path.basename(f), f]))("%s exports one driver, listed in DRIVERS", async (_name, file) => {
    const exported = Object.values(await import(file) as Record<string, unknown>);
    expect(exported).toHaveLength(1);
    expect(registered.has(exported[0])).toBe(true);
  });
  it("every registered driver has its own file", () => {
    expect(files).toHaveLength(Object.keys(DRIVERS).length);
  });
});
