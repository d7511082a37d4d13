// `npm run check:migrations`: do the migrations in prisma/migrations build
// exactly the schema prisma/schema.prisma declares? (And the PostgreSQL ones
// theirs: postgres-migration-drift.ts, run from here too.)
//
// Two fresh SQLite files are compared: one migrated by the service's own
// migrator (src/store/migrate.ts), one given the SQL Prisma writes for the
// schema from nothing (`prisma migrate diff --from-empty
// --to-schema-datamodel ... --script`). Their schemas are compared as facts
// read back from SQLite (columns, keys, indexes, AUTOINCREMENT, ...), not
// as the text of their CREATE statements: an ALTER TABLE writes a table's
// text differently from a CREATE TABLE of the same table. A hand edit to a
// migration, or a schema.prisma change without its migration, shows up as
// facts on one side only.
import Database from "better-sqlite3";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { applyMigrations } from "../src/store/migrate.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SCHEMA_FILE = path.join(ROOT, "prisma", "schema.prisma");
export const MIGRATIONS_DIR = path.join(ROOT, "prisma", "migrations");

const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const squash = (sql: string | null): string => (sql ?? "").replace(/\s+/g, " ").trim();

interface ColumnInfo { name: string; type: string; notnull: number; dflt_value: string | null; pk: number; hidden: number }
interface ForeignKeyInfo { id: number; seq: number; table: string; from: string; to: string | null; on_update: string; on_delete: string }
interface IndexInfo { name: string; unique: number; origin: string; partial: number }
interface IndexColumnInfo { seqno: number; name: string | null; desc: number; coll: string; key: number }

/**
 * Everything SQLite says about a database's schema that Prisma can express,
 * as one sentence per fact. Prisma's own bookkeeping (_prisma_migrations)
 * and SQLite's internal tables are left out; the order of a table's columns
 * is too (an added column goes last, whatever the model says, and Prisma
 * itself does not compare it).
 */
export function schemaFacts(db: Database.Database): Set<string> {
  const facts = new Set<string>();
  const objects = db.prepare(
    `SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> '_prisma_migrations' ORDER BY name`,
  ).all() as { type: string; name: string; tbl_name: string; sql: string | null }[];
  for (const o of objects) {
    if (o.type === "table") {
      const t = `table ${q(o.name)}`;
      facts.add(t);
      if (/\bAUTOINCREMENT\b/i.test(o.sql ?? "")) facts.add(`${t} is AUTOINCREMENT`);
      if (/\)\s*WITHOUT\s+ROWID\s*$/i.test(o.sql ?? "")) facts.add(`${t} is WITHOUT ROWID`);
      for (const c of db.prepare(`PRAGMA table_xinfo(${q(o.name)})`).all() as ColumnInfo[]) {
        facts.add(`${t} column ${q(c.name)} ${c.type.toUpperCase()}${c.notnull ? " NOT NULL" : ""}`
          + `${c.dflt_value !== null ? ` DEFAULT ${c.dflt_value}` : ""}${c.pk ? ` primary key #${c.pk}` : ""}${c.hidden ? ` hidden ${c.hidden}` : ""}`);
      }
      const fks = new Map<number, ForeignKeyInfo[]>();
      for (const fk of db.prepare(`PRAGMA foreign_key_list(${q(o.name)})`).all() as ForeignKeyInfo[]) {
        fks.set(fk.id, [...(fks.get(fk.id) ?? []), fk]);
      }
      for (const parts of fks.values()) {
        parts.sort((a, b) => a.seq - b.seq);
        const first = parts[0]!;
        facts.add(`${t} foreign key (${parts.map((p) => q(p.from)).join(", ")}) references ${q(first.table)} `
          + `(${parts.map((p) => (p.to === null ? "its primary key" : q(p.to))).join(", ")}) on delete ${first.on_delete} on update ${first.on_update}`);
      }
      for (const index of db.prepare(`PRAGMA index_list(${q(o.name)})`).all() as IndexInfo[]) {
        // A primary key's own index says nothing the columns' "primary key" did not.
        if (index.origin === "pk") continue;
        const columns = (db.prepare(`PRAGMA index_xinfo(${q(index.name)})`).all() as IndexColumnInfo[])
          .filter((c) => c.key === 1)
          .map((c) => `${c.name === null ? "<expression>" : q(c.name)}${c.desc ? " DESC" : ""}${c.coll !== "BINARY" ? ` COLLATE ${c.coll}` : ""}`)
          .join(", ");
        if (index.origin === "u") facts.add(`${t} UNIQUE (${columns})`);
        else facts.add(`${t} ${index.unique ? "unique " : ""}index ${q(index.name)} (${columns})${index.partial ? ` partial: ${squash(db.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).pluck().get(index.name) as string)}` : ""}`);
      }
    } else if (o.type === "view" || o.type === "trigger") {
      facts.add(`${o.type} ${q(o.name)}: ${squash(o.sql)}`);
    }
  }
  return facts;
}

/** The facts on one side only, as lines marked with the side they belong to. */
export function compareFacts(migrated: ReadonlySet<string>, declared: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const f of migrated) if (!declared.has(f)) out.push(`only the migrations make: ${f}`);
  for (const f of declared) if (!migrated.has(f)) out.push(`only schema.prisma declares: ${f}`);
  return out.sort((a, b) => a.slice(a.indexOf(":")).localeCompare(b.slice(b.indexOf(":"))));
}

/** What Prisma would write to create the schema from nothing (it needs a database URL even so). */
export function prismaCreateSql(schemaFile: string, scratchDbFile: string): string {
  const r = spawnSync(process.execPath, [
    path.join(ROOT, "scripts", "prisma.mjs"), "migrate", "diff", "--from-empty", "--to-schema-datamodel", schemaFile, "--script",
  ], { cwd: ROOT, env: { ...process.env, DATABASE_URL: `file:${scratchDbFile}` }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`prisma migrate diff failed (${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Runs `use` on a fresh SQLite file in a scratch directory, removed afterwards. */
function withScratch<T>(use: (dir: string) => T): T {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-drift-"));
  try {
    return use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The schema the migrations in `migrationsDir` build, applied by the service's migrator. */
export function migratedSchemaFacts(migrationsDir = MIGRATIONS_DIR): Set<string> {
  return withScratch((dir) => {
    const file = path.join(dir, "migrated.db");
    applyMigrations(file, migrationsDir);
    const db = new Database(file, { readonly: true });
    try {
      return schemaFacts(db);
    } finally {
      db.close();
    }
  });
}

/** The schema `schemaFile` declares, as Prisma creates it from nothing. */
export function declaredSchemaFacts(schemaFile = SCHEMA_FILE): Set<string> {
  return withScratch((dir) => {
    const db = new Database(path.join(dir, "declared.db"));
    try {
      db.exec(prismaCreateSql(schemaFile, path.join(dir, "scratch.db")));
      return schemaFacts(db);
    } finally {
      db.close();
    }
  });
}

/**
 * The differences between the schema the migrations in `migrationsDir`
 * build and the one `schemaFile` declares; empty when they agree.
 */
export function migrationDrift(migrationsDir = MIGRATIONS_DIR, schemaFile = SCHEMA_FILE): string[] {
  return compareFacts(migratedSchemaFacts(migrationsDir), declaredSchemaFacts(schemaFile));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // `--sqlite` or `--postgresql` checks one provider; without either, both are checked.
  const args = process.argv.slice(2);
  const only = args.includes("--sqlite") !== args.includes("--postgresql");
  if (!only || args.includes("--sqlite")) {
    const drift = migrationDrift();
    if (drift.length === 0) {
      console.log("the migrations build exactly the schema prisma/schema.prisma declares");
    } else {
      console.error(`the migrations and prisma/schema.prisma disagree (${drift.length}):`);
      for (const line of drift) console.error(`  ${line}`);
      console.error("author a new migration with `npm run prisma -- migrate diff --from-schema-datamodel <previous schema> --to-schema-datamodel prisma/schema.prisma --script`; never edit an applied one");
      process.exitCode = 1;
    }
  }
  if (!only || args.includes("--postgresql")) {
    // Scratch databases on the server TEST_POSTGRES_URL names (default: the local PostgreSQL).
    const { postgresMigrationDrift } = await import("./postgres-migration-drift.js");
    try {
      const drift = await postgresMigrationDrift();
      if (drift.length === 0) {
        console.log("the PostgreSQL migrations build exactly the schema prisma/postgresql/schema.prisma declares");
      } else {
        console.error(`the PostgreSQL migrations and prisma/postgresql/schema.prisma disagree (${drift.length}):`);
        for (const line of drift) console.error(`  ${line}`);
        console.error("run `npm run prisma:postgres-schema`, then author a new migration in prisma/postgresql/migrations with `npm run prisma -- migrate diff --from-schema-datamodel <previous schema> --to-schema-datamodel prisma/postgresql/schema.prisma --script` (DATABASE_URL=postgresql://...); never edit an applied one");
        process.exitCode = 1;
      }
    } catch (error) {
      console.error(`the PostgreSQL migrations could not be checked: ${error instanceof Error ? error.message : String(error)} (run with --sqlite to check SQLite only)`);
      process.exitCode = 1;
    }
  }
}
