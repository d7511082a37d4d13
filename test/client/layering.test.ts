// The client and the CLI run on a machine with no server: at run time they
// load only themselves, the core's pure declarations (errno and reason
// tables) and their packages. The server's schemas and routes are imported
// for their types only (erased by the compiler), and the CLI reaches the
// server only through the client.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";

const SRC = path.join(PROJECT_ROOT, "src");

interface Import {
  readonly specifier: string;
  /** Erased at compile time: `import type`, or only `type` specifiers. */
  readonly typeOnly: boolean;
}

function importsOf(file: string, text: string): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  for (const statement of source.statements) {
    if ((ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier && ts.isStringLiteral(statement.moduleSpecifier)) {
      let typeOnly = false;
      if (ts.isImportDeclaration(statement)) {
        const clause = statement.importClause;
        const named = clause?.namedBindings;
        typeOnly = clause !== undefined && (clause.isTypeOnly
          || (!clause.name && named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly)));
      } else {
        typeOnly = statement.isTypeOnly;
      }
      out.push({ specifier: statement.moduleSpecifier.text, typeOnly });
    }
  }
  // `import("...")` in a type position is erased too; a call is not.
  source.forEachChild(function visit(node): void {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && ts.isStringLiteral(node.arguments[0]!)) {
      out.push({ specifier: node.arguments[0].text, typeOnly: false });
    }
    node.forEachChild(visit);
  });
  return out;
}

function filesOf(dir: string): string[] {
  return readdirSync(path.join(SRC, dir)).filter((f) => f.endsWith(".ts")).map((f) => path.join(SRC, dir, f));
}

/** What a layer's files may load at run time (and, type-only, what else they may name). */
const RULES = {
  client: {
    runtime: (target: string) => target.startsWith(path.join(SRC, "client") + path.sep) || ["core/errno.ts", "core/reasons.ts"].includes(path.relative(SRC, target)),
    typeOnly: (target: string) => target.startsWith(path.join(SRC, "http", "schemas") + path.sep) || target.startsWith(path.join(SRC, "http", "routes") + path.sep),
    packages: (name: string) => name.startsWith("node:") || name === "@sinclair/typebox",
  },
  cli: {
    runtime: (target: string) => target.startsWith(path.join(SRC, "cli") + path.sep) || target.startsWith(path.join(SRC, "client") + path.sep),
    typeOnly: () => false,
    packages: (name: string) => name.startsWith("node:") || name === "commander",
  },
} as const;

type Rule = (typeof RULES)[keyof typeof RULES];

function violations(rule: Rule, file: string, text: string): string[] {
  return importsOf(file, text).filter(({ specifier, typeOnly }) => {
    if (!specifier.startsWith(".")) return !(rule.packages(specifier) || (typeOnly && specifier === "@sinclair/typebox"));
    const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, ".ts");
    return !(rule.runtime(target) || (typeOnly && rule.typeOnly(target)));
  }).map((i) => i.specifier);
}

describe.each(Object.entries(RULES))("src/%s loads only what it may", (dir, rule) => {
  const files = filesOf(dir);
  it("finds the layer's files", () => {
    expect(files.length).toBeGreaterThan(3);
  });
  it.each(files.map((f) => [path.relative(PROJECT_ROOT, f), f]))("%s", (_name, file) => {
    expect(violations(rule, file, readFileSync(file, "utf8"))).toEqual([]);
  });
});

describe("the checker itself", () => {
  const clientFile = path.join(SRC, "client", "x.ts");
  const cliFile = path.join(SRC, "cli", "x.ts");
  it.each([
    [clientFile, 'import { Unit } from "../http/schemas/resources.js";', "../http/schemas/resources.js"],
    [clientFile, 'import { Unit, type Group } from "../http/schemas/resources.js";', "../http/schemas/resources.js"],
    [clientFile, 'import { buildApp } from "../http/app.js";', "../http/app.js"],
    [clientFile, 'import type { Model } from "../core/model.js";', "../core/model.js"],
    [clientFile, 'const m = await import("../store/store.js");', "../store/store.js"],
    [clientFile, 'import Fastify from "fastify";', "fastify"],
    [cliFile, 'import { ERRNO_VALUES } from "../core/errno.js";', "../core/errno.js"],
    [cliFile, 'import { Type } from "@sinclair/typebox";', "@sinclair/typebox"],
  ])("flags %s importing: %s", (file, line, bad) => {
    const rule = file === clientFile ? RULES.client : RULES.cli;
    expect(violations(rule, file, `${line}\n`)).toEqual([bad]);
  });
  it("passes type-only imports of the schemas and the core's tables", () => {
    const source = [
      'import type { Unit } from "../http/schemas/resources.js";',
      'import { type Stats } from "../http/routes/index.js";',
      'import { ERRNO_VALUES } from "../core/errno.js";',
      'import { setTimeout } from "node:timers/promises";',
      'import type { Static } from "@sinclair/typebox";',
    ].join("\n");
    expect(violations(RULES.client, clientFile, source)).toEqual([]);
  });
});
