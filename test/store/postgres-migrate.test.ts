// The PostgreSQL migrator (src/store/postgres-migrate.ts) on a real
// PostgreSQL server: it migrates a new database once, records what Prisma
// records, applies each migration exactly once when several processes start
// together, and refuses, in one sentence and without writing, every database
// that is not its to migrate.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { MigrationError, migrationNames } from "../../src/store/migrate.js";
import { describePostgresUrl, PostgresConnectionError } from "../../src/store/postgres-connect.js";
import {
  applyPostgresMigrations, appliedPostgresMigrations, MIGRATION_LOCK_KEY, POSTGRES_MIGRATIONS_DIR,
} from "../../src/store/postgres-migrate.js";
import { startupFailureLine } from "../../src/startup/fatal.js";
import { captureLog } from "../helpers/log.js";
import { createTestDatabase, databaseUrl, type TestDatabase } from "../helpers/postgres.js";

const NAMES = migrationNames(POSTGRES_MIGRATIONS_DIR);
const INIT = "20261130000000_init";

const databases: TestDatabase[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(databases.splice(0).map((d) => d.drop()));
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase("migrate");
  databases.push(db);
  return db;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function tables(url: string): Promise<string[]> {
  return withClient(url, async (c) => (await c.query<{ tablename: string }>(
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
  )).rows.map((r) => r.tablename));
}

/** A copy of the migrations folder, to edit or extend. */
function copyOfMigrations(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-pg-migrations-"));
  dirs.push(dir);
  const copy = path.join(dir, "migrations");
  cpSync(POSTGRES_MIGRATIONS_DIR, copy, { recursive: true });
  return copy;
}

function addMigration(dir: string, name: string, sql: string): void {
  mkdirSync(path.join(dir, name));
  writeFileSync(path.join(dir, name, "migration.sql"), sql);
}

/** Waits until `n` sessions wait for the migration lock on the database `client` is connected to; their backend pids. */
async function lockWaiters(client: pg.Client, n: number): Promise<number[]> {
  for (;;) {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, [MIGRATION_LOCK_KEY]);
    if (rows.length === n) return rows.map((r) => r.pid);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A TCP port nothing listens on: one the OS handed out and that was closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("PostgreSQL migrations", () => {
  it("migrate a new database: every migration, its tables, and rows as Prisma writes them", async () => {
    const db = await freshDatabase();
    expect(NAMES).toContain(INIT);
    expect(await applyPostgresMigrations(db.url, POSTGRES_MIGRATIONS_DIR)).toEqual({ applied: NAMES, total: NAMES.length });
    expect(await tables(db.url)).toEqual(expect.arrayContaining(["_prisma_migrations", "Unit", "Group", "Device", "Event", "ChangeLog", "IdWatermark"]));
    await withClient(db.url, async (c) => {
      const rows = (await c.query(`SELECT id, checksum, migration_name, finished_at, started_at, logs, rolled_back_at, applied_steps_count
        FROM _prisma_migrations ORDER BY migration_name`)).rows;
      expect(rows.map((r) => r.migration_name)).toEqual(NAMES);
      for (const row of rows) {
        const sql = readFileSync(path.join(POSTGRES_MIGRATIONS_DIR, row.migration_name, "migration.sql"));
        expect(row.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
        expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(row.finished_at).toBeInstanceOf(Date);
        expect(row.finished_at.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
        expect([row.logs, row.rolled_back_at, row.applied_steps_count]).toEqual([null, null, 1]);
      }
      // Prisma's own column types for the table (its schema engine's CREATE TABLE on PostgreSQL).
      const columns = (await c.query(`SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default
        FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`)).rows;
      expect(columns).toEqual([
        { column_name: "id", data_type: "character varying", len: 36, is_nullable: "NO", column_default: null },
        { column_name: "checksum", data_type: "character varying", len: 64, is_nullable: "NO", column_default: null },
        { column_name: "finished_at", data_type: "timestamp with time zone", len: null, is_nullable: "YES", column_default: null },
        { column_name: "migration_name", data_type: "character varying", len: 255, is_nullable: "NO", column_default: null },
        { column_name: "logs", data_type: "text", len: null, is_nullable: "YES", column_default: null },
        { column_name: "rolled_back_at", data_type: "timestamp with time zone", len: null, is_nullable: "YES", column_default: null },
        { column_name: "started_at", data_type: "timestamp with time zone", len: null, is_nullable: "NO", column_default: "now()" },
        { column_name: "applied_steps_count", data_type: "integer", len: null, is_nullable: "NO", column_default: "0" },
      ]);
      expect(await appliedPostgresMigrations(c)).toEqual(NAMES);
    });
  });

  it("apply nothing the second time", async () => {
    const db = await freshDatabase();
    await applyPostgresMigrations(db.url, POSTGRES_MIGRATIONS_DIR);
    expect(await applyPostgresMigrations(db.url, POSTGRES_MIGRATIONS_DIR)).toEqual({ applied: [], total: NAMES.length });
    expect(await withClient(db.url, async (c) => (await c.query(`SELECT count(*)::int AS n FROM _prisma_migrations`)).rows[0].n)).toBe(NAMES.length);
  });

  it("say that a database without _prisma_migrations has nothing applied", async () => {
    const db = await freshDatabase();
    expect(await withClient(db.url, (c) => appliedPostgresMigrations(c))).toEqual([]);
  });

  it("are applied exactly once when three processes start together on a new database", async () => {
    const db = await freshDatabase();
    const script = `
      import { applyPostgresMigrations, POSTGRES_MIGRATIONS_DIR } from "./src/store/postgres-migrate.ts";
      const report = await applyPostgresMigrations(process.env.DATABASE_URL, POSTGRES_MIGRATIONS_DIR);
      process.stdout.write(JSON.stringify(report));`;
    // The test holds the migration lock until all three wait for it, so they really start together.
    await withClient(db.url, async (holder) => {
      await holder.query(`SELECT pg_advisory_lock($1)`, [MIGRATION_LOCK_KEY]);
      const runs = [0, 1, 2].map(() => {
        const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
          cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: db.url }, stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d));
        child.stderr.on("data", (d: Buffer) => (stderr += d));
        return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
      });
      await lockWaiters(holder, 3);
      await holder.query(`SELECT pg_advisory_unlock($1)`, [MIGRATION_LOCK_KEY]);
      const results = await Promise.all(runs);
      for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0, stderr: "" });
      const reports = results.map((r) => JSON.parse(r.stdout) as { applied: string[]; total: number });
      expect(reports.map((r) => r.applied).sort((a, b) => b.length - a.length)).toEqual([NAMES, [], []]);
    });
    expect(await withClient(db.url, async (c) => (await c.query(`SELECT migration_name FROM _prisma_migrations ORDER BY 1`)).rows.map((r) => r.migration_name))).toEqual(NAMES);
  });

  it("wait for another run's lock, saying so, and fail in one sentence when the server ends the connection meanwhile", async () => {
    const db = await freshDatabase();
    const { logger, matching } = captureLog();
    await withClient(db.url, async (holder) => {
      await holder.query(`SELECT pg_advisory_lock($1)`, [MIGRATION_LOCK_KEY]);
      const run = applyPostgresMigrations(db.url, POSTGRES_MIGRATIONS_DIR, logger).catch((e: unknown) => e);
      const [pid] = await lockWaiters(holder, 1);
      expect(matching(/another process is migrating this PostgreSQL database; waiting for it/)).toHaveLength(1);
      await holder.query(`SELECT pg_terminate_backend($1)`, [pid]);
      const error = await run;
      expect(error).toBeInstanceOf(PostgresConnectionError);
      expect((error as Error).message).toBe(`lost the connection to the PostgreSQL database at ${describePostgresUrl(db.url)}: terminating connection due to administrator command`);
      expect(startupFailureLine(error)).toBe((error as Error).message);
    });
    expect(await tables(db.url)).toEqual([]);
  });

  it("refuse a migration modified after it was applied", async () => {
    const db = await freshDatabase();
    const dir = copyOfMigrations();
    await applyPostgresMigrations(db.url, dir);
    writeFileSync(path.join(dir, INIT, "migration.sql"), `${readFileSync(path.join(dir, INIT, "migration.sql"), "utf8")}\n-- an afterthought\n`);
    await expect(applyPostgresMigrations(db.url, dir)).rejects.toThrow(new MigrationError(`migration ${INIT} was modified after it was applied`));
  });

  it("refuse another program's database (tables, no _prisma_migrations) and leave it untouched", async () => {
    const db = await freshDatabase();
    await withClient(db.url, (c) => c.query(`CREATE TABLE accounts (id int PRIMARY KEY, owner text); INSERT INTO accounts VALUES (1, 'theirs')`));
    await expect(applyPostgresMigrations(db.url, POSTGRES_MIGRATIONS_DIR)).rejects.toThrow(
      new MigrationError(`PostgreSQL database ${describePostgresUrl(db.url)} belongs to another program (tables accounts, no _prisma_migrations); refusing to change it`),
    );
    expect(await tables(db.url)).toEqual(["accounts"]);
    expect(await withClient(db.url, async (c) => (await c.query(`SELECT * FROM accounts`)).rows)).toEqual([{ id: 1, owner: "theirs" }]);
  });

  it.each<[string, string, RegExp]>([
    ["made by another program's migrations", `('a', 'x', now(), '20200101000000_theirs', now(), 1)`,
      /^PostgreSQL database \S+ was made by another program \(its migrations 20200101000000_theirs are none of this build's\)$/],
    ["with a failed earlier migration", `('a', 'x', NULL, '${INIT}', now(), 0)`,
      new RegExp(`^migration ${INIT} failed earlier; resolve it with \`npm run prisma -- migrate resolve\`$`)],
    ["with a newer migration this build does not know", `('a', 'x', now(), '${INIT}', now(), 1), ('b', 'y', now(), '29991231000000_newer', now(), 1)`,
      /^database has migration 29991231000000_newer, which this build does not know: is it newer than the code\?$/],
  ])("refuse a database %s", async (_what, rows, message) => {
    const db = await freshDatabase();
    await withClient(db.url, async (c) => {
      await c.query(`CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ,
        migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0)`);
      await c.query(`INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count) VALUES ${rows}`);
    });
    const error = await applyPostgresMigrations(db.url, POSTGRES_MIGRATIONS_DIR).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(message);
    expect(await tables(db.url)).toEqual(["_prisma_migrations"]);
  });

  it("roll back a migration that fails, leaving neither its changes nor its row", async () => {
    const db = await freshDatabase();
    const dir = copyOfMigrations();
    await applyPostgresMigrations(db.url, dir);
    addMigration(dir, "29991231000000_broken", `CREATE TABLE "Half" ("id" INTEGER);\nALTER TABLE "NoSuchTable" ADD COLUMN "x" TEXT;\n`);
    await expect(applyPostgresMigrations(db.url, dir)).rejects.toThrow(
      new MigrationError(`migration 29991231000000_broken failed and was rolled back: relation "NoSuchTable" does not exist`),
    );
    expect(await tables(db.url)).not.toContain("Half");
    expect(await withClient(db.url, (c) => appliedPostgresMigrations(c))).toEqual(NAMES);
    // Fixed, it applies.
    writeFileSync(path.join(dir, "29991231000000_broken", "migration.sql"), `CREATE TABLE "Half" ("id" INTEGER);\n`);
    expect((await applyPostgresMigrations(db.url, dir)).applied).toEqual(["29991231000000_broken"]);
  });

  it("say in one sentence, without the password, that the server cannot be reached", async () => {
    const port = await closedPort();
    const url = `postgresql://arbiter:s3cret-pw@127.0.0.1:${port}/arbiter`;
    const error = await applyPostgresMigrations(url, POSTGRES_MIGRATIONS_DIR).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresConnectionError);
    expect((error as Error).message).toBe(`cannot reach the PostgreSQL database at 127.0.0.1:${port}/arbiter: ECONNREFUSED`);
  });

  it("say in one sentence, without the password, that the database does not exist", async () => {
    const url = new URL(databaseUrl("arbiter_no_such_database"));
    url.password = "s3cret-pw";
    const error = await applyPostgresMigrations(url.toString(), POSTGRES_MIGRATIONS_DIR).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresConnectionError);
    expect((error as Error).message).toBe(`cannot connect to the PostgreSQL database at ${describePostgresUrl(url.toString())}: database "arbiter_no_such_database" does not exist`);
    expect((error as Error).message).not.toContain("s3cret");
  });

  it("leave a database that prisma migrate status calls up to date", async () => {
    const db = await freshDatabase();
    await applyPostgresMigrations(db.url, POSTGRES_MIGRATIONS_DIR);
    const status = spawnSync(process.execPath, [path.join(PROJECT_ROOT, "scripts", "prisma.mjs"), "migrate", "status"], {
      cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: db.url }, encoding: "utf8",
    });
    expect(status.stdout).toContain(`PostgreSQL database "${db.name}"`);
    expect(status.stdout).toContain("Database schema is up to date");
    expect(status.status).toBe(0);
  });
});
