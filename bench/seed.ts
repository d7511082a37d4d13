// Builds a database file directly with better-sqlite3, the way the service
// would have left it: the Prisma migrations applied and recorded in
// _prisma_migrations (same sha256 checksum src/store/migrate.ts compares, so
// the service does not re-apply them), then units, groups with one device and
// their default "dma" domain each, and paging domains to attach to.
//
// Ids are assigned here (the service assigns ids itself; AUTOINCREMENT keeps
// sqlite_sequence at the highest id inserted, which is what the service reads
// back to continue numbering).
import Database from "better-sqlite3";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, "prisma", "migrations");

/** intel-vtd defaults (src/drivers/intel-vtd.ts), every field spelled out as the service stores it. */
const CAPABILITIES = {
  addressWidth: 48, pageSizes: [4096, 2097152, 1073741824], snoopControl: true,
  dirtyTracking: false, nesting: false, domainIds: 65535, cpuPageSize: 4096,
};
/** The configuration createGroup / createDomain give a domain shaped like such a unit. */
const DOMAIN_CONFIG = {
  addressWidth: CAPABILITIES.addressWidth, pageSizes: CAPABILITIES.pageSizes,
  enforceCacheCoherency: false, dirtyTracking: false, nestParent: false,
};
const DEVICE_FLAGS = { noDirty: false, canwbs: false, requiresIdentity: false, pasid: false };
const DRIVER = "intel-vtd";

export interface SeedSpec {
  /** intel-vtd units; groups are dealt to them round-robin. */
  readonly units: number;
  readonly groups: number;
  /** One paging domain shared by each unit's groups, or one per group. */
  readonly paging: "per-unit" | "per-group";
}

export interface Seeded {
  /** Group ids, 1..groups. */
  readonly groupIds: Int32Array;
  /** targetDomain[groupId] = the paging domain that group attaches to. */
  readonly targetDomain: Int32Array;
  readonly rows: { units: number; groups: number; devices: number; domains: number };
}

/** Prisma's timestamp text: ISO 8601 with +00:00. */
const prismaNow = (): string => new Date().toISOString().replace("Z", "+00:00");

/** Applies every prisma/migrations/<name>/migration.sql and records it as `prisma migrate deploy` does. */
export function applyMigrationSql(db: Database.Database, migrationsDir = MIGRATIONS_DIR): string[] {
  const names = readdirSync(migrationsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(migrationsDir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort();
  db.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
    "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,
    "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`);
  const record = db.prepare(`INSERT INTO "_prisma_migrations"
    (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
    VALUES (?, ?, ?, ?, NULL, NULL, ?, 1)`);
  for (const name of names) {
    const sql = readFileSync(path.join(migrationsDir, name, "migration.sql"), "utf8");
    const checksum = createHash("sha256").update(sql).digest("hex");
    const startedAt = prismaNow();
    db.transaction(() => {
      db.exec(sql);
      record.run(randomUUID(), checksum, prismaNow(), name, startedAt);
    })();
  }
  return names;
}

/** Creates `file` (which must not exist) holding the topology `spec` describes. */
export function seedDatabase(file: string, spec: SeedSpec): Seeded {
  if (existsSync(file)) throw new Error(`seed: ${file} exists`);
  if (spec.units < 1 || spec.groups < 1) throw new Error("seed: need at least one unit and one group");
  const db = new Database(file);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    db.pragma("foreign_keys = ON");
    applyMigrationSql(db);

    const G = spec.groups;
    const U = spec.units;
    const unitOf = (g: number): number => ((g - 1) % U) + 1;
    const pagingId = (g: number): number => (spec.paging === "per-unit" ? G + unitOf(g) : G + g);
    const pagingCount = spec.paging === "per-unit" ? U : G;

    const capabilities = JSON.stringify(CAPABILITIES);
    const config = JSON.stringify(DOMAIN_CONFIG);
    const flags = JSON.stringify(DEVICE_FLAGS);
    const insUnit = db.prepare(`INSERT INTO "Unit" (id, name, driver, capabilities, online) VALUES (?, ?, ?, ?, 1)`);
    const insDomain = db.prepare(`INSERT INTO "Domain" (id, name, type, driver, unitId, config, auto, containerId) VALUES (?, ?, ?, ?, ?, ?, 0, NULL)`);
    const insGroup = db.prepare(`INSERT INTO "Group" (id, name, unitId, domainId, defaultDomainId, blockingDomainId, owner) VALUES (?, ?, ?, ?, ?, NULL, NULL)`);
    const insDevice = db.prepare(`INSERT INTO "Device" (id, name, groupId, flags, faulty) VALUES (?, ?, ?, ?, 0)`);

    const targetDomain = new Int32Array(G + 1);
    db.transaction(() => {
      for (let u = 1; u <= U; u++) insUnit.run(u, `bench-dmar${u}`, DRIVER, capabilities);
      // Default domains first (ids 1..G, as each group's own), then the paging domains.
      for (let g = 1; g <= G; g++) insDomain.run(g, `bench-group-${g}-default`, "dma", DRIVER, unitOf(g), config);
      for (let p = 1; p <= pagingCount; p++) {
        const unitId = spec.paging === "per-unit" ? p : unitOf(p);
        insDomain.run(G + p, `bench-paging-${p}`, "paging", DRIVER, unitId, config);
      }
      for (let g = 1; g <= G; g++) {
        insGroup.run(g, `bench-group-${g}`, unitOf(g), g, g);
        insDevice.run(g, `0000:bench:${g.toString(16).padStart(6, "0")}.0`, g, flags);
        targetDomain[g] = pagingId(g);
      }
    })();
    db.pragma("wal_checkpoint(TRUNCATE)");
    const groupIds = new Int32Array(G);
    for (let g = 1; g <= G; g++) groupIds[g - 1] = g;
    return { groupIds, targetDomain, rows: { units: U, groups: G, devices: G, domains: G + pagingCount } };
  } finally {
    db.close();
  }
}
