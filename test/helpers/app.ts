// Builds the real app on a fresh temporary SQLite file, for inject() tests
// and for tests that listen on a real port.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { PROJECT_ROOT } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import type { LimitOptions } from "../../src/http/limits.js";
import { SqliteStore } from "../../src/store/store.js";
import { DRIVERS } from "../../src/drivers/index.js";

export const MIGRATIONS = path.join(PROJECT_ROOT, "prisma", "migrations");

/** A copy, under `dir`, of the migrations an earlier release shipped: every one before `first` (the first it lacked). */
export function migrationsBefore(dir: string, first: string): string {
  const out = path.join(dir, "earlier-migrations");
  mkdirSync(out);
  for (const name of readdirSync(MIGRATIONS).filter((n) => /^\d/.test(n) && n < first)) {
    cpSync(path.join(MIGRATIONS, name), path.join(out, name), { recursive: true });
  }
  return out;
}

export interface TestApp {
  readonly app: FastifyInstance;
  readonly store: SqliteStore;
  readonly dir: string;
  readonly file: string;
  /** Close the app (and its store) and delete the database directory. */
  close(): Promise<void>;
}

export function tempDbFile(): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-test-"));
  return { dir, file: path.join(dir, "test.db") };
}

/**
 * The production limits, except load shedding: inject() drives requests with
 * promises only, which starves the event loop's timers, so the lag sample
 * load shedding reads is stale or huge in-process. test/http/limits.test.ts
 * tests shedding on its own app.
 */
export const TEST_LIMITS: LimitOptions = { maxEventLoopDelay: 0 };

export async function openApp(file: string, limits: LimitOptions = TEST_LIMITS): Promise<{ app: FastifyInstance; store: SqliteStore }> {
  const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
  const app = await buildApp({ store, logger: false, limits });
  app.addHook("onClose", () => store.close());
  await app.ready();
  return { app, store };
}

export async function makeTestApp(): Promise<TestApp> {
  const { dir, file } = tempDbFile();
  const { app, store } = await openApp(file);
  return {
    app, store, dir, file,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POST/PATCH JSON through inject and return status + parsed body. */
export async function call(app: FastifyInstance, method: "GET" | "POST" | "PATCH" | "DELETE", url: string, body?: unknown) {
  const res = await app.inject({ method, url, ...(body !== undefined ? { payload: body as object } : {}) });
  const text = res.body;
  return {
    status: res.statusCode,
    headers: res.headers,
    body: text.length > 0 ? (JSON.parse(text) as Record<string, unknown> & { items?: Record<string, unknown>[] }) : null,
  };
}
