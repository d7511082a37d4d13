// Builds a bench database through the project's own code, as the service
// would have left it: the migrations applied by the service's migrator
// (src/store/migrate.ts), then units, groups with one device and their
// default domain each, and paging domains to attach to, made by the core's
// create operations on a model and written by the store's encoding
// (src/store/encode.ts: the same rows, statements and id watermarks the
// service writes) in one transaction. Only the transport differs: one large
// transaction instead of group-commit batches.
import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import path from "node:path";
import type { Statement } from "better-sqlite3";
import { PROJECT_ROOT } from "../src/config.js";
import { Model } from "../src/core/model.js";
import { DRIVERS } from "../src/drivers/index.js";
import { createDevice, createDomain, createGroup, createUnit } from "../src/core/objects.js";
import type { Result } from "../src/core/result.js";
import { encodeChanges, watermarkSteps, WATERMARK_KINDS, type Step, type Watermarks } from "../src/store/encode.js";
import { applyMigrations } from "../src/store/migrate.js";
import { applyPostgresMigrations, POSTGRES_MIGRATIONS_DIR } from "../src/store/postgres-migrate.js";
import { inline } from "../src/store/postgres-sql.js";
import pg from "pg";

export { PROJECT_ROOT };
export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, "prisma", "migrations");

const DRIVER = "intel-vtd";

export interface SeedSpec {
  /** intel-vtd units (the driver's default capabilities); groups are dealt to them round-robin. */
  readonly units: number;
  readonly groups: number;
  /** One paging domain shared by each unit's groups, or one per group. */
  readonly paging: "per-unit" | "per-group";
}

export interface Seeded {
  /** Group ids, in creation order. */
  readonly groupIds: Int32Array;
  /** targetDomain[groupId] = the paging domain that group attaches to. */
  readonly targetDomain: Int32Array;
  readonly rows: { units: number; groups: number; devices: number; domains: number };
}

function made<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(`seed: ${result.error.reason}: ${result.error.detail}`);
  return result.value;
}

/** The model `spec` describes, made by the core's operations. */
function build(spec: SeedSpec): { model: Model; seeded: Seeded } {
  const model = new Model(DRIVERS);
  const G = spec.groups;
  const units = Array.from({ length: spec.units }, (_, u) => made(createUnit(model, { name: `bench-dmar${u + 1}`, driver: DRIVER })));
  const groupIds = new Int32Array(G);
  const unitOfGroup = new Int32Array(G);
  for (let g = 0; g < G; g++) {
    const unit = units[g % units.length]!;
    const group = made(createGroup(model, { name: `bench-group-${g + 1}`, unitId: unit.id }));
    made(createDevice(model, { name: `0000:bench:${(g + 1).toString(16).padStart(6, "0")}.0`, groupId: group.id }));
    groupIds[g] = group.id;
    unitOfGroup[g] = unit.id;
  }
  const maxGroupId = groupIds.reduce((a, b) => Math.max(a, b), 0);
  const targetDomain = new Int32Array(maxGroupId + 1);
  const paging = (p: number, unitId: number) => made(createDomain(model, { type: "paging", name: `bench-paging-${p}`, unitId })).id;
  if (spec.paging === "per-unit") {
    const ofUnit = new Map(units.map((u, i) => [u.id, paging(i + 1, u.id)]));
    for (let g = 0; g < G; g++) targetDomain[groupIds[g]!] = ofUnit.get(unitOfGroup[g]!)!;
  } else {
    for (let g = 0; g < G; g++) targetDomain[groupIds[g]!] = paging(g + 1, unitOfGroup[g]!);
  }
  return {
    model,
    seeded: {
      groupIds, targetDomain,
      rows: { units: model.count("unit"), groups: model.count("group"), devices: model.count("device"), domains: model.count("domain") },
    },
  };
}

/** The statements that write the topology `spec` describes, and what they make. */
function seedSteps(spec: SeedSpec): { steps: Step[]; seeded: Seeded } {
  if (spec.units < 1 || spec.groups < 1) throw new Error("seed: need at least one unit and one group");
  const { model, seeded } = build(spec);
  const none = Object.fromEntries(WATERMARK_KINDS.map((k) => [k, 0])) as Watermarks;
  return { steps: [...encodeChanges(model.takeChanges(), []), ...watermarkSteps(none, { ...model.lastIds(), event: 0 })], seeded };
}

/**
 * Fills the new PostgreSQL database at `url` with the topology `spec`
 * describes: the service's PostgreSQL migrator, then the same rows in one
 * transaction, as the PostgreSQL store writes them (postgres-sql.ts).
 */
export async function seedPostgres(url: string, spec: SeedSpec): Promise<Seeded> {
  const { steps, seeded } = seedSteps(spec);
  await applyPostgresMigrations(url, POSTGRES_MIGRATIONS_DIR);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`BEGIN;\n${steps.map(inline).join(";\n")};\nCOMMIT`);
    return seeded;
  } finally {
    await client.end();
  }
}

/** Creates `file` (which must not exist) holding the topology `spec` describes. */
export function seedDatabase(file: string, spec: SeedSpec): Seeded {
  if (existsSync(file)) throw new Error(`seed: ${file} exists`);
  const { steps, seeded } = seedSteps(spec);
  applyMigrations(file, MIGRATIONS_DIR);
  const db = new Database(file);
  try {
    // A scratch file until the bench copies it: no need to wait for the disk.
    db.pragma("synchronous = OFF");
    db.pragma("foreign_keys = ON");
    const statements = new Map<string, Statement<unknown[]>>();
    db.transaction(() => {
      // As the store's writer: foreign keys are checked at commit.
      db.pragma("defer_foreign_keys = ON");
      for (const step of steps) {
        let s = statements.get(step.sql);
        if (!s) statements.set(step.sql, (s = db.prepare(step.sql)));
        s.run(...step.params);
      }
    })();
    db.pragma("wal_checkpoint(TRUNCATE)");
    return seeded;
  } finally {
    db.close();
  }
}
