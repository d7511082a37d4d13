// The migrations in prisma/migrations, applied by the service's in-process
// migrator, must produce exactly the schema in prisma/schema.prisma (the
// drift check of scripts/migration-drift.ts, which must catch a hand edit),
// and Prisma's own CLI must agree that the database is up to date.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareFacts, declaredSchemaFacts, migratedSchemaFacts, migrationDrift, SCHEMA_FILE } from "../../scripts/migration-drift.js";
import { PROJECT_ROOT } from "../../src/config.js";
import { applyMigrations, MigrationError } from "../../src/store/migrate.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";

function prisma(args: string[], dbFile: string) {
  const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, "scripts", "prisma.mjs"), ...args], {
    cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: `file:${dbFile}` }, encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of the migrations with one file edited by hand, as someone might. */
function editedCopy(dir: string, migration: string, edit: (sql: string) => string): string {
  const copy = path.join(dir, "migrations");
  cpSync(MIGRATIONS, copy, { recursive: true });
  const file = path.join(copy, migration, "migration.sql");
  const before = readFileSync(file, "utf8");
  const after = edit(before);
  expect(after).not.toBe(before);
  writeFileSync(file, after);
  return copy;
}

const INIT = "20261125000000_init";

describe("prisma migrations", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const scratch = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-migrations-"));
    dirs.push(dir);
    return dir;
  };
  let declared: Set<string>;
  beforeAll(() => {
    declared = declaredSchemaFacts();
  });

  it("build exactly the schema schema.prisma declares (compared with prisma migrate diff --from-empty), and prisma migrate status agrees", () => {
    expect(declared.size).toBeGreaterThan(50);
    expect(compareFacts(migratedSchemaFacts(), declared)).toEqual([]);
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    expect(applyMigrations(file, MIGRATIONS).applied.length).toBeGreaterThan(0);
    const status = prisma(["migrate", "status"], file);
    expect(status.stdout).toContain("Database schema is up to date");
    expect(status.status).toBe(0);
  });

  it.each<[string, string, (sql: string) => string, RegExp]>([
    ["AUTOINCREMENT removed from a table", INIT, (sql) => sql.replace(/("id" INTEGER NOT NULL PRIMARY KEY) AUTOINCREMENT,(\s+"name" TEXT NOT NULL,\s+"driver")/, "$1,$2"),
      /^only schema\.prisma declares: table "Unit" is AUTOINCREMENT$/],
    ["a default changed", INIT, (sql) => sql.replace(`"online" BOOLEAN NOT NULL DEFAULT true`, `"online" BOOLEAN NOT NULL DEFAULT false`),
      /table "Unit" column "online" BOOLEAN NOT NULL DEFAULT (true|false)/],
    ["a column made nullable", INIT, (sql) => sql.replace(`"errno" TEXT NOT NULL,`, `"errno" TEXT,`), /table "Fault" column "errno" TEXT/],
    ["an index left out", INIT, (sql) => sql.replace(/-- CreateIndex\nCREATE INDEX "Event_groupId_idx"[^;]*;/, ""),
      /^only schema\.prisma declares: table "Event" index "Event_groupId_idx"/],
    ["an index added", "20261126130000_idempotency_heartbeat", (sql) => `${sql}\nCREATE INDEX "stray" ON "Heartbeat"("at");\n`,
      /^only the migrations make: table "Heartbeat" index "stray"/],
    // The Device table as it stands was made by the host-settings migration (a new foreign key redefines the table).
    ["a foreign key's ON DELETE changed", "20261128000008_host_settings", (sql) => sql.replace(/("Device_groupId_fkey" FOREIGN KEY \("groupId"\) REFERENCES "Group" \("id"\) ON DELETE) RESTRICT/, "$1 CASCADE"),
      /table "Device" foreign key \("groupId"\) references "Group" \("id"\) on delete CASCADE/],
    ["a column type changed", "20261126130000_idempotency_heartbeat", (sql) => sql.replace(`"status" INTEGER NOT NULL,`, `"status" TEXT NOT NULL,`),
      /table "IdempotentAnswer" column "status" TEXT/],
  ])("catch a hand-edited migration: %s", (_what, migration, edit, expected) => {
    const drift = compareFacts(migratedSchemaFacts(editedCopy(scratch(), migration, edit)), declared);
    expect(drift.length).toBeGreaterThan(0);
    expect(drift.some((line) => expected.test(line)), drift.join("\n")).toBe(true);
  });

  it("catch a schema.prisma change that has no migration", () => {
    const dir = scratch();
    const schema = path.join(dir, "schema.prisma");
    writeFileSync(schema, readFileSync(SCHEMA_FILE, "utf8").replace("  last Int\n}", "  last Int\n  note String?\n}"));
    expect(migrationDrift(MIGRATIONS, schema)).toEqual([`only schema.prisma declares: table "IdWatermark" column "note" TEXT`]);
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

  // Migrations run with foreign keys off, so that a table rebuild does not
  // cascade (test/store/upgrade-device-flags.test.ts); what they leave is checked.
  it("refuse a migration that leaves a dangling reference, and undo it", () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    applyMigrations(file, MIGRATIONS);
    const extra = path.join(scratch(), "migrations");
    cpSync(MIGRATIONS, extra, { recursive: true });
    mkdirSync(path.join(extra, "29991231000000_dangling"));
    writeFileSync(path.join(extra, "29991231000000_dangling", "migration.sql"),
      `INSERT INTO "Fault" ("id", "unitId", "deviceId", "errno", "remaining") VALUES (1, NULL, 424242, 'EIO', 1);\n`);
    expect(() => applyMigrations(file, extra)).toThrow(/migration 29991231000000_dangling leaves 1 row\(s\) of Fault pointing at rows that do not exist/);
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare(`SELECT count(*) AS n FROM "Fault"`).get()).toEqual({ n: 0 });
      expect(db.prepare(`SELECT count(*) AS n FROM "_prisma_migrations" WHERE migration_name = '29991231000000_dangling'`).get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});
