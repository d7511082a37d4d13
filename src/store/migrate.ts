// Applies the Prisma migrations in prisma/migrations at start-up, in-process,
// recording them in _prisma_migrations exactly as `prisma migrate deploy`
// does (same table, same sha256 checksum), so the two are interchangeable and
// `prisma migrate status` agrees. Spawning the CLI would cost seconds per
// start and per test database; this costs milliseconds.
//
// Before touching the file it checks that the file is ours to migrate: a
// SQLite database (not some other file), intact (PRAGMA quick_check), and
// either empty or made by these migrations. Anything else is refused with
// one sentence, never written to.
import Database from "better-sqlite3";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { DatabaseFileError } from "./file-check.js";

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;

export class MigrationError extends Error {}

/** SQLite's verdict on a file that is not a usable database, as one sentence. */
function sqliteFileError(file: string, error: unknown): Error {
  const code = String((error as { code?: unknown }).code ?? "");
  const message = (error as Error).message;
  if (code === "SQLITE_NOTADB") return new DatabaseFileError(`database file ${file} is not a SQLite database`);
  if (code.startsWith("SQLITE_CORRUPT")) return new DatabaseFileError(`database file ${file} is corrupt: ${message}`);
  if (code.startsWith("SQLITE_CANTOPEN")) return new DatabaseFileError(`cannot open database file ${file}: ${message}`);
  if (code.startsWith("SQLITE_READONLY")) return new DatabaseFileError(`cannot write database file ${file}: ${message}`);
  if (code.startsWith("SQLITE_IOERR")) return new DatabaseFileError(`cannot read database file ${file}: ${message} (${code})`);
  return error as Error;
}

/**
 * Refuses a damaged file or another program's database. quick_check reads
 * every page (without the index-content cross-check of integrity_check):
 * about a second per GB, paid once per start.
 */
function inspect(db: Database.Database, file: string): void {
  const [verdict] = db.pragma("quick_check(1)") as { quick_check: string }[];
  if (verdict?.quick_check !== "ok") {
    const detail = (verdict?.quick_check ?? "no answer").split("\n").filter((l) => !l.startsWith("***"))[0] ?? "";
    throw new DatabaseFileError(`database file ${file} is corrupt (quick_check: ${detail})`);
  }
  const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[])
    .map((t) => t.name);
  if (tables.length > 0 && !tables.includes("_prisma_migrations")) {
    const shown = tables.slice(0, 3).join(", ") + (tables.length > 3 ? ", ..." : "");
    throw new MigrationError(`database file ${file} belongs to another program (tables ${shown}, no _prisma_migrations); refusing to change it`);
  }
}

/** Prisma's own timestamp format in this table. */
function prismaNow(): string {
  return new Date().toISOString().replace("Z", "+00:00");
}

export interface MigrationReport {
  readonly applied: string[];
  readonly total: number;
}

/** The migrations the folder holds, in the order they apply. */
export function migrationNames(migrationsDir: string): string[] {
  return readdirSync(migrationsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(migrationsDir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort();
}

/** What _prisma_migrations says is applied (finished, not rolled back). */
export const APPLIED_MIGRATIONS_SQL = `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;

export function applyMigrations(dbFile: string, migrationsDir: string): MigrationReport {
  const names = migrationNames(migrationsDir);
  let db: Database.Database;
  try {
    db = new Database(dbFile);
  } catch (error) {
    throw sqliteFileError(dbFile, error);
  }
  try {
    inspect(db, dbFile);
    // WAL is a property of the file: set once here, before any other connection.
    db.pragma("journal_mode = WAL");
    db.exec(MIGRATIONS_TABLE);
    const rows = db.prepare(`SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"`).all() as {
      migration_name: string; checksum: string; finished_at: string | null; rolled_back_at: string | null;
    }[];
    const done = new Map(rows.filter((r) => r.rolled_back_at === null).map((r) => [r.migration_name, r]));
    if (done.size > 0 && ![...done.keys()].some((name) => names.includes(name))) {
      const theirs = [...done.keys()].sort();
      throw new MigrationError(`database file ${dbFile} was made by another program (its migrations ${theirs.slice(0, 2).join(", ")}${theirs.length > 2 ? ", ..." : ""} are none of this build's)`);
    }
    for (const r of done.values()) {
      if (r.finished_at === null) throw new MigrationError(`migration ${r.migration_name} failed earlier; resolve it with \`npm run prisma -- migrate resolve\``);
      if (!names.includes(r.migration_name)) throw new MigrationError(`database has migration ${r.migration_name}, which this build does not know: is it newer than the code?`);
    }
    const applied: string[] = [];
    for (const name of names) {
      const sql = readFileSync(path.join(migrationsDir, name, "migration.sql"), "utf8");
      const checksum = createHash("sha256").update(sql).digest("hex");
      const previous = done.get(name);
      if (previous) {
        if (previous.checksum !== checksum) throw new MigrationError(`migration ${name} was modified after it was applied`);
        continue;
      }
      const id = randomUUID();
      // A generated migration that redefines a table (Prisma's RedefineTables:
      // copy into new_X, DROP TABLE X, rename) turns foreign keys off around
      // it, but SQLite ignores PRAGMA foreign_keys inside a transaction, and
      // the DROP TABLE would then run the ON DELETE CASCADE of every row
      // pointing at X (a device's injected faults). So enforcement is off for
      // the whole migration, and what it leaves is checked before it commits.
      db.pragma("foreign_keys = OFF");
      try {
        db.transaction(() => {
          db.prepare(`INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, 0)`)
            .run(id, checksum, name, prismaNow());
          db.exec(sql);
          const dangling = db.pragma("foreign_key_check") as { table: string }[];
          if (dangling.length > 0) {
            throw new MigrationError(`migration ${name} leaves ${dangling.length} row(s) of ${dangling[0]!.table} pointing at rows that do not exist`);
          }
          db.prepare(`UPDATE "_prisma_migrations" SET finished_at = ?, applied_steps_count = 1 WHERE id = ?`).run(prismaNow(), id);
        })();
      } finally {
        db.pragma("foreign_keys = ON");
      }
      applied.push(name);
    }
    return { applied, total: names.length };
  } catch (error) {
    throw sqliteFileError(dbFile, error);
  } finally {
    db.close();
  }
}
