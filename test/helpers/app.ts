// Builds the real app on a fresh temporary database, for inject() tests and
// for tests that listen on a real port: a SQLite file, or, when the test
// project sets TEST_STORE=postgresql (vitest.config.ts), a fresh database on
// the test PostgreSQL server (test/helpers/postgres.ts).
import Database from "better-sqlite3";
import pg from "pg";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { PROJECT_ROOT } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import type { LimitOptions } from "../../src/http/limits.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { SqliteStore, type ArbiterStore } from "../../src/store/store.js";
import { createTestDatabase } from "./postgres.js";
import { DRIVERS } from "../../src/drivers/index.js";

export const MIGRATIONS = path.join(PROJECT_ROOT, "prisma", "migrations");
export const POSTGRES_MIGRATIONS = path.join(PROJECT_ROOT, "prisma", "postgresql", "migrations");

/** Which store makeTestApp builds on: the test project's choice. */
export const TEST_STORE: "sqlite" | "postgresql" = process.env.TEST_STORE === "postgresql" ? "postgresql" : "sqlite";

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
  readonly store: ArbiterStore;
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
  return { app: await appOn(store, limits), store };
}

async function appOn(store: ArbiterStore, limits: LimitOptions): Promise<FastifyInstance> {
  const app = await buildApp({ store, logger: false, limits });
  app.addHook("onClose", () => store.close());
  await app.ready();
  return app;
}

export async function makeTestApp(limits: LimitOptions = TEST_LIMITS): Promise<TestApp> {
  if (TEST_STORE === "postgresql") {
    const db = await createTestDatabase("app");
    const store = await PostgresStore.open({ drivers: DRIVERS, url: db.url, migrationsDir: POSTGRES_MIGRATIONS });
    const app = await appOn(store, limits);
    return {
      app, store, dir: "", file: db.url,
      async close() {
        await app.close();
        await db.drop();
      },
    };
  }
  const { dir, file } = tempDbFile();
  const { app, store } = await openApp(file, limits);
  return {
    app, store, dir, file,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `sql` on the test app's database through a connection of its own, as
 * another program (or an operator) would; returns the rows of a query.
 */
export async function onTheDatabase(t: Pick<TestApp, "file">, sql: string): Promise<Record<string, unknown>[]> {
  if (TEST_STORE === "postgresql") {
    const client = new pg.Client({ connectionString: t.file });
    await client.connect();
    try {
      return (await client.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }
  const db = new Database(t.file);
  try {
    const statement = db.prepare(sql);
    return statement.reader ? (statement.all() as Record<string, unknown>[]) : (statement.run(), []);
  } finally {
    db.close();
  }
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
