// `npm run openapi [-- FILE]`: writes the OpenAPI 3.1 document the service
// serves at /openapi.json to FILE (default openapi.json at the project root),
// without listening on a port: the app is built on a throwaway database in a
// temporary directory, made ready, asked for its document and closed.
// `--check` only says whether FILE is current (test/docs/openapi-file.test.ts
// fails when the committed one is not).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { FastifyInstance } from "fastify";
import { PROJECT_ROOT } from "../src/config.js";
import { DRIVERS } from "../src/drivers/index.js";
import { buildApp } from "../src/http/app.js";
import { SqliteStore } from "../src/store/store.js";

export const OPENAPI_FILE = path.join(PROJECT_ROOT, "openapi.json");

/** The document as the file holds it: indented, one final newline. */
export function documentText(app: FastifyInstance): string {
  return `${JSON.stringify(app.swagger(), null, 2)}\n`;
}

/** Build the app on a temporary database, read its document, and clean up. */
export async function generateDocument(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-openapi-"));
  try {
    const store = await SqliteStore.open({ drivers: DRIVERS, file: path.join(dir, "openapi.db"), migrationsDir: path.join(PROJECT_ROOT, "prisma", "migrations") });
    const app = await buildApp({ store, logger: false });
    app.addHook("onClose", () => store.close());
    try {
      await app.ready();
      return documentText(app);
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { check: { type: "boolean", default: false } }, allowPositionals: true, strict: true });
  if (positionals.length > 1) {
    console.error("Usage: npm run openapi -- [--check] [FILE]");
    return 2;
  }
  // npm runs the script at the project root; a relative FILE is the caller's.
  const file = positionals[0] === undefined ? OPENAPI_FILE : path.resolve(process.env.INIT_CWD ?? process.cwd(), positionals[0]);
  const text = await generateDocument();
  if (values.check) {
    let current: string | null = null;
    try {
      current = readFileSync(file, "utf8");
    } catch {
      // A missing file is out of date too.
    }
    if (current === text) return 0;
    console.error(`${file}: out of date; run npm run openapi`);
    return 1;
  }
  writeFileSync(file, text);
  console.log(`${file}: OpenAPI document written`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
