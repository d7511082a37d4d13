// The PostgreSQL half of `npm run check:migrations`: do the migrations in
// prisma/postgresql/migrations build exactly the schema
// prisma/postgresql/schema.prisma declares?
//
// Prisma's own check for this (`prisma migrate diff --from-migrations ...
// --exit-code`) cannot run here: through the JavaScript schema engine and the
// pg adapter it fails reading the database back (prisma/orm issue 27403, the
// same failure as `migrate deploy`), and it refuses --shadow-database-url
// when an adapter is configured. So, as for SQLite (migration-drift.ts), two
// scratch databases on a PostgreSQL server are compared: one migrated by the
// service's own migrator, one given the SQL Prisma writes for the schema from
// nothing. Their schemas are compared as facts read back from pg_catalog
// (columns with their types, defaults and nullability, constraints and
// indexes as PostgreSQL prints them), not as SQL text.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { connectPostgres } from "../src/store/postgres-connect.js";
import { applyPostgresMigrations, POSTGRES_MIGRATIONS_DIR } from "../src/store/postgres-migrate.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const POSTGRES_SCHEMA_FILE = path.join(ROOT, "prisma", "postgresql", "schema.prisma");
export { POSTGRES_MIGRATIONS_DIR };

/** The server the scratch databases are made on (its database is only used to create and drop them). */
export const DRIFT_SERVER_URL = process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * Everything pg_catalog says about the current schema that Prisma can
 * express, as one sentence per fact; Prisma's _prisma_migrations is left
 * out, and so is column order (an added column goes last).
 */
export async function postgresSchemaFacts(client: pg.Client): Promise<Set<string>> {
  const facts = new Set<string>();
  const add = (rows: { fact: string }[]) => rows.forEach((r) => facts.add(r.fact));
  const own = `n.nspname = current_schema() AND c.relname <> '_prisma_migrations'`;
  add((await client.query(`SELECT format('table %I', c.relname) AS fact FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${own} AND c.relkind IN ('r', 'p')`)).rows);
  add((await client.query(`SELECT format('table %I column %I %s%s%s%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
      CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
      CASE WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END,
      CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text WHEN a.attgenerated <> '' THEN ' GENERATED' ELSE '' END) AS fact
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE ${own} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`)).rows);
  // DEFERRABLE is a hand-written step Prisma cannot express (test/store/postgres-store.test.ts checks it).
  add((await client.query(`SELECT format('table %I constraint %I %s', c.relname, k.conname, replace(pg_get_constraintdef(k.oid), ' DEFERRABLE INITIALLY DEFERRED', '')) AS fact
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${own}`)).rows);
  // Indexes that back a constraint are said by the constraint.
  add((await client.query(`SELECT format('table %I index %s', t.relname, pg_get_indexdef(i.indexrelid)) AS fact
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = current_schema() AND t.relname <> '_prisma_migrations'
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))`)).rows);
  add((await client.query(`SELECT format('enum %I (%s)', t.typname, string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)) AS fact
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = current_schema() GROUP BY t.typname`)).rows);
  add((await client.query(`SELECT format('sequence %I', c.relname) AS fact FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${own} AND c.relkind = 'S'`)).rows);
  add((await client.query(`SELECT format('view %I: %s', c.relname, regexp_replace(pg_get_viewdef(c.oid), '\\s+', ' ', 'g')) AS fact
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${own} AND c.relkind IN ('v', 'm')`)).rows);
  return facts;
}

/** The URL of database `name` on the drift server. */
function scratchUrl(name: string): string {
  const url = new URL(DRIFT_SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs `use` on a new, empty database on the drift server, dropped afterwards. */
async function withScratchDatabase<T>(use: (url: string) => Promise<T>): Promise<T> {
  const name = `arbiter_drift_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = await connectPostgres(DRIFT_SERVER_URL);
  try {
    await admin.query(`CREATE DATABASE ${q(name)}`);
    try {
      return await use(scratchUrl(name));
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${q(name)} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}

async function factsOf(url: string): Promise<Set<string>> {
  const client = await connectPostgres(url);
  try {
    return await postgresSchemaFacts(client);
  } finally {
    await client.end();
  }
}

/** What Prisma would write to create the PostgreSQL schema from nothing (the CLI wants a postgresql:// URL to pick the provider). */
export function prismaPostgresCreateSql(schemaFile: string, databaseUrl: string): string {
  const r = spawnSync(process.execPath, [
    path.join(ROOT, "scripts", "prisma.mjs"), "migrate", "diff", "--from-empty", "--to-schema-datamodel", schemaFile, "--script",
  ], { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`prisma migrate diff failed (${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** The schema the migrations in `migrationsDir` build, applied by the service's migrator. */
export function migratedPostgresFacts(migrationsDir = POSTGRES_MIGRATIONS_DIR): Promise<Set<string>> {
  return withScratchDatabase(async (url) => {
    await applyPostgresMigrations(url, migrationsDir);
    return factsOf(url);
  });
}

/** The schema `schemaFile` declares, as Prisma creates it from nothing. */
export function declaredPostgresFacts(schemaFile = POSTGRES_SCHEMA_FILE): Promise<Set<string>> {
  return withScratchDatabase(async (url) => {
    const sql = prismaPostgresCreateSql(schemaFile, url);
    const client = await connectPostgres(url);
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
    return factsOf(url);
  });
}

/** The facts on one side only, as lines marked with the side they belong to. */
export function comparePostgresFacts(migrated: ReadonlySet<string>, declared: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const f of migrated) if (!declared.has(f)) out.push(`only the migrations make: ${f}`);
  for (const f of declared) if (!migrated.has(f)) out.push(`only prisma/postgresql/schema.prisma declares: ${f}`);
  return out.sort((a, b) => a.slice(a.indexOf(":")).localeCompare(b.slice(b.indexOf(":"))));
}

/** The differences between what the PostgreSQL migrations build and what the schema declares; empty when they agree. */
export async function postgresMigrationDrift(migrationsDir = POSTGRES_MIGRATIONS_DIR, schemaFile = POSTGRES_SCHEMA_FILE): Promise<string[]> {
  // One after the other: the Prisma CLI runs synchronously and would starve a connection being opened meanwhile.
  const migrated = await migratedPostgresFacts(migrationsDir);
  return comparePostgresFacts(migrated, await declaredPostgresFacts(schemaFile));
}
