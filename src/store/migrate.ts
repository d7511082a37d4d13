// Applies the Prisma migrations in prisma/migrations at start-up, in-process,
// recording them in _prisma_migrations exactly as `prisma migrate deploy`
// does (same table, same sha256 checksum), so the two are interchangeable and
// `prisma migrate status` agrees. Spawning the CLI would cost seconds per
// start and per test database; this costs milliseconds.
import Database from "better-sqlite3";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

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

/** Prisma's own timestamp format in this table. */
function prismaNow(): string {
  return new Date().toISOString().replace("Z", "+00:00");
}

export interface MigrationReport {
  readonly applied: string[];
  readonly total: number;
}

export function applyMigrations(dbFile: string, migrationsDir: string): MigrationReport {
  const names = readdirSync(migrationsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(migrationsDir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort();
  const db = new Database(dbFile);
  try {
    // WAL is a property of the file: set once here, before any other connection.
    db.pragma("journal_mode = WAL");
    db.exec(MIGRATIONS_TABLE);
    const rows = db.prepare(`SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"`).all() as {
      migration_name: string; checksum: string; finished_at: string | null; rolled_back_at: string | null;
    }[];
    const done = new Map(rows.filter((r) => r.rolled_back_at === null).map((r) => [r.migration_name, r]));
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
      db.transaction(() => {
        db.prepare(`INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, 0)`)
          .run(id, checksum, name, prismaNow());
        db.exec(sql);
        db.prepare(`UPDATE "_prisma_migrations" SET finished_at = ?, applied_steps_count = 1 WHERE id = ?`).run(prismaNow(), id);
      })();
      applied.push(name);
    }
    return { applied, total: names.length };
  } finally {
    db.close();
  }
}
