// Applies the Prisma migrations in prisma/postgresql/migrations to a
// PostgreSQL database, in-process: the PostgreSQL twin of migrate.ts.
// `prisma migrate deploy` cannot do it here: through the JavaScript schema
// engine and the pg adapter it fails reading the database back (prisma/orm
// issue 27403). Rows go into _prisma_migrations exactly as Prisma writes them
// on PostgreSQL (Prisma's own table definition, the sha256 of the file), so
// `prisma migrate status` agrees and a native `prisma migrate deploy` could
// take over.
//
// Several replicas may start at once against one database. Each run takes a
// session-level advisory lock on one dedicated connection and holds it for
// the whole run; what is applied is read only after the lock is held, so
// the replicas that waited find the work done and apply nothing. Each
// migration runs in its own transaction with its _prisma_migrations row: a
// migration that fails leaves neither its changes nor a row behind (so it
// cannot run CREATE INDEX CONCURRENTLY, which refuses a transaction).
//
// Before changing anything it checks that the database is ours to migrate,
// with the same refusals, in the same words, as migrate.ts.
import type { Logger } from "pino";
import type pg from "pg";
import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { APPLIED_MIGRATIONS_SQL, MigrationError, migrationNames, type MigrationReport } from "./migrate.js";
import { connectPostgres, describePostgresUrl, isConnectionLoss, isServerError, postgresConnectionError } from "./postgres-connect.js";

/** The PostgreSQL schema's migrations, beside its schema.prisma (this file sits in src/store or dist/store). */
export const POSTGRES_MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "prisma", "postgresql", "migrations");

/**
 * The advisory lock key a migration run holds. It is the key Prisma's own
 * schema engine locks for `prisma migrate deploy` on PostgreSQL, so that
 * command and this migrator never run on one database at the same time.
 * Advisory locks belong to a database: runs on other databases of the same
 * server do not wait for each other.
 */
export const MIGRATION_LOCK_KEY = 72707369;

/** Prisma's definition of its bookkeeping table on PostgreSQL, as its schema engine creates it. */
export const POSTGRES_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

/** What _prisma_migrations says is applied (finished, not rolled back); the same text works on both providers. */
export const APPLIED_POSTGRES_MIGRATIONS_SQL = APPLIED_MIGRATIONS_SQL;

/** Anything that runs a query: a pg Client, a Pool, or a client checked out of one. */
export type PostgresQueryable = pg.Client | pg.Pool | pg.PoolClient;

/** The migrations applied to the database (sorted); none when it has no _prisma_migrations yet. */
export async function appliedPostgresMigrations(client: PostgresQueryable): Promise<string[]> {
  try {
    const { rows } = await client.query<{ migration_name: string }>(APPLIED_POSTGRES_MIGRATIONS_SQL);
    return rows.map((r) => r.migration_name).sort();
  } catch (error) {
    if ((error as { code?: unknown }).code === "42P01") return []; // undefined_table
    throw error;
  }
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
}

interface Migration {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

/** The folder's migrations, read before connecting: a missing file fails before the database is touched. */
function readMigrations(migrationsDir: string): Migration[] {
  return migrationNames(migrationsDir).map((name) => {
    const sql = readFileSync(path.join(migrationsDir, name, "migration.sql"), "utf8");
    return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
  });
}

/** Waits for the migration lock; says so in the log when another run holds it. */
async function takeMigrationLock(client: pg.Client, where: string, logger: Logger | undefined): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock($1) AS locked`, [MIGRATION_LOCK_KEY]);
  if (rows[0]?.locked) return;
  logger?.info({ database: where, lock: MIGRATION_LOCK_KEY }, "another process is migrating this PostgreSQL database; waiting for it");
  await client.query(`SELECT pg_advisory_lock($1)`, [MIGRATION_LOCK_KEY]);
}

/** Refuses a database whose current schema holds tables but not _prisma_migrations. */
async function refuseForeignDatabase(client: pg.Client, where: string): Promise<void> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
  );
  const tables = rows.map((r) => r.name);
  if (tables.length > 0 && !tables.includes("_prisma_migrations")) {
    const shown = tables.slice(0, 3).join(", ") + (tables.length > 3 ? ", ..." : "");
    throw new MigrationError(`PostgreSQL database ${where} belongs to another program (tables ${shown}, no _prisma_migrations); refusing to change it`);
  }
}

/** The same checks as migrate.ts, on the rows that are not rolled back. */
function checkHistory(done: ReadonlyMap<string, MigrationRow>, migrations: readonly Migration[], where: string): void {
  const names = migrations.map((m) => m.name);
  if (done.size > 0 && ![...done.keys()].some((name) => names.includes(name))) {
    const theirs = [...done.keys()].sort();
    throw new MigrationError(`PostgreSQL database ${where} was made by another program (its migrations ${theirs.slice(0, 2).join(", ")}${theirs.length > 2 ? ", ..." : ""} are none of this build's)`);
  }
  for (const r of done.values()) {
    if (r.finished_at === null) throw new MigrationError(`migration ${r.migration_name} failed earlier; resolve it with \`npm run prisma -- migrate resolve\``);
    if (!names.includes(r.migration_name)) throw new MigrationError(`database has migration ${r.migration_name}, which this build does not know: is it newer than the code?`);
  }
  for (const m of migrations) {
    const previous = done.get(m.name);
    if (previous && previous.checksum !== m.checksum) throw new MigrationError(`migration ${m.name} was modified after it was applied`);
  }
}

/** One migration and its row, in one transaction; on failure neither is left. */
async function applyOne(client: pg.Client, migration: Migration): Promise<void> {
  const id = randomUUID();
  await client.query("BEGIN");
  try {
    await client.query(`INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, clock_timestamp(), 0)`,
      [id, migration.checksum, migration.name]);
    try {
      // No parameters: the simple query protocol, which runs a file of many statements.
      await client.query(migration.sql);
    } catch (error) {
      if (isServerError(error) && !isConnectionLoss(error)) {
        throw new MigrationError(`migration ${migration.name} failed and was rolled back: ${error.message}`);
      }
      throw error;
    }
    await client.query(`UPDATE _prisma_migrations SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

/**
 * Brings the PostgreSQL database at `url` up to date with the migrations in
 * `migrationsDir`. Throws MigrationError when the database is not ours to
 * migrate or a migration fails, PostgresConnectionError when it cannot be
 * reached (or the connection is lost); both say it in one sentence.
 */
export async function applyPostgresMigrations(url: string, migrationsDir: string, logger?: Logger): Promise<MigrationReport> {
  const where = describePostgresUrl(url);
  const migrations = readMigrations(migrationsDir);
  const client = await connectPostgres(url);
  try {
    // Held until the connection ends (below): every check and every migration is under it.
    await takeMigrationLock(client, where, logger);
    await refuseForeignDatabase(client, where);
    await client.query(POSTGRES_MIGRATIONS_TABLE);
    const { rows } = await client.query<MigrationRow>(
      `SELECT migration_name, checksum, finished_at FROM _prisma_migrations WHERE rolled_back_at IS NULL ORDER BY started_at`,
    );
    const done = new Map(rows.map((r) => [r.migration_name, r]));
    checkHistory(done, migrations, where);
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.name)) continue;
      await applyOne(client, migration);
      logger?.info({ database: where, migration: migration.name }, "applied migration");
      applied.push(migration.name);
    }
    return { applied, total: migrations.length };
  } catch (error) {
    if (error instanceof MigrationError) throw error;
    if (isConnectionLoss(error)) throw postgresConnectionError(url, error, true);
    if (isServerError(error)) throw new MigrationError(`cannot migrate the PostgreSQL database at ${where}: ${error.message}`);
    throw error;
  } finally {
    // Ending the session releases the advisory lock.
    await client.end().catch(() => {});
  }
}
