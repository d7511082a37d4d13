// The migrations in prisma/migrations, applied by the service's in-process
// migrator, must produce exactly the schema in prisma/schema.prisma, and
// Prisma's own CLI must agree that the database is up to date.
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { applyMigrations, MigrationError } from "../../src/store/migrate.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";

function prisma(args: string[], dbFile: string) {
  const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, "scripts", "prisma.mjs"), ...args], {
    cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: `file:${dbFile}` }, encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Introspect the database into a Prisma schema and diff it with ours. */
function driftAgainstSchema(dbFile: string, dir: string): number | null {
  const pulled = prisma(["db", "pull", "--print"], dbFile);
  expect(pulled.status).toBe(0);
  // The CLI prints a driver-adapter warning on stdout before the schema.
  const schema = pulled.stdout.slice(pulled.stdout.indexOf("generator client {"));
  const pulledFile = path.join(dir, "pulled.prisma");
  writeFileSync(pulledFile, schema);
  return prisma(["migrate", "diff", "--from-schema-datamodel", pulledFile, "--to-schema-datamodel", "prisma/schema.prisma", "--exit-code"], dbFile).status;
}

describe("prisma migrations", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("a fresh database migrated at start-up matches schema.prisma (no drift) and prisma migrate status agrees", () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    expect(applyMigrations(file, MIGRATIONS).applied.length).toBeGreaterThan(0);
    expect(driftAgainstSchema(file, dir)).toBe(0);
    const status = prisma(["migrate", "status"], file);
    expect(status.stdout).toContain("Database schema is up to date");
    expect(status.status).toBe(0);
  });

  it("detects drift when the database differs (the check can fail)", () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    applyMigrations(file, MIGRATIONS);
    const db = new Database(file);
    db.exec(`CREATE INDEX "stray" ON "Event" ("op")`);
    db.close();
    expect(driftAgainstSchema(file, dir)).toBe(2);
  });

  it("applying again is a no-op; prisma migrate deploy accepts a database we migrated", () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    applyMigrations(file, MIGRATIONS);
    expect(applyMigrations(file, MIGRATIONS).applied).toEqual([]);
    const deploy = prisma(["migrate", "deploy"], file);
    expect(deploy.status).toBe(0);
    expect(deploy.stdout).toContain("No pending migrations");
  });

  it("refuses a database whose applied migration was edited afterwards", () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    applyMigrations(file, MIGRATIONS);
    const db = new Database(file);
    db.prepare(`UPDATE "_prisma_migrations" SET checksum = 'tampered'`).run();
    db.close();
    expect(() => applyMigrations(file, MIGRATIONS)).toThrow(MigrationError);
  });
});
