// The same Snapshot as readSnapshot (invariants.ts) reads from a SQLite
// file, read from a PostgreSQL database: every table in one REPEATABLE READ
// read-only transaction, so the checks see one committed state whatever the
// replicas are doing. PostgreSQL enforces foreign keys itself; what could
// still be wrong is a constraint left unvalidated, which is reported.
import pg from "pg";
import type { EventRow, Snapshot } from "./invariants.js";

type Raw = Record<string, unknown>;
const num = (v: unknown): number => Number(v);
const orNull = <T>(v: unknown, f: (x: unknown) => T): T | null => (v === null || v === undefined ? null : f(v));
/** JSONB arrives parsed; a text column holding JSON does not. */
const json = <T>(v: unknown): T => (typeof v === "string" ? JSON.parse(v) : v) as T;

export async function readPostgresSnapshot(url: string): Promise<Snapshot> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const all = async (sql: string) => (await client.query<Raw>(sql)).rows;
    const unvalidated = await all(`SELECT conrelid::regclass::text AS "table", conname FROM pg_constraint WHERE contype = 'f' AND NOT convalidated`);
    const units = (await all(`SELECT * FROM "Unit" ORDER BY id`)).map((r) => ({
      id: num(r.id), name: String(r.name), driver: String(r.driver), online: r.online === true,
      capabilities: json<Snapshot["units"][number]["capabilities"]>(r.capabilities),
    }));
    const containers = (await all(`SELECT * FROM "Container" ORDER BY id`)).map((r) => ({ id: num(r.id), name: String(r.name), kind: String(r.kind) }));
    const domains = (await all(`SELECT * FROM "Domain" ORDER BY id`)).map((r) => ({
      id: num(r.id), name: orNull(r.name, String), type: String(r.type), driver: String(r.driver),
      unitId: orNull(r.unitId, num), config: json<Record<string, unknown>>(r.config), auto: r.auto === true, search: String(r.search),
      containerId: orNull(r.containerId, num),
    }));
    const groups = (await all(`SELECT * FROM "Group" ORDER BY id`)).map((r) => ({
      id: num(r.id), name: String(r.name), unitId: num(r.unitId), domainId: num(r.domainId), defaultDomainId: num(r.defaultDomainId),
      blockingDomainId: orNull(r.blockingDomainId, num), owner: orNull(r.owner, String),
    }));
    const devices = (await all(`SELECT * FROM "Device" ORDER BY id`)).map((r) => ({
      id: num(r.id), name: String(r.name), groupId: num(r.groupId), flags: json<Record<string, boolean>>(r.flags), faulty: r.faulty === true,
    }));
    const faults = (await all(`SELECT * FROM "Fault" ORDER BY id`)).map((r) => ({
      id: num(r.id), unitId: orNull(r.unitId, num), deviceId: orNull(r.deviceId, num), errno: String(r.errno), remaining: num(r.remaining),
    }));
    const events = (await all(`SELECT * FROM "Event" ORDER BY seq`)).map((r): EventRow => ({
      seq: num(r.seq), at: r.at instanceof Date ? r.at.toISOString() : String(r.at), op: String(r.op), owner: orNull(r.owner, String),
      groupId: orNull(r.groupId, num), deviceId: orNull(r.deviceId, num), domainId: orNull(r.domainId, num),
      containerId: orNull(r.containerId, num), errno: orNull(r.errno, String), code: num(r.code), reason: orNull(r.reason, String),
      detail: orNull(r.detail, String), kind: orNull(r.kind, String), objectId: orNull(r.objectId, num),
    }));
    const [watermark] = await all(`SELECT "last" FROM "IdWatermark" WHERE "kind" = 'event'`);
    await client.query("COMMIT");
    return {
      integrity: ["ok"], foreignKeyViolations: unvalidated,
      units, containers, domains, groups, devices, faults, events, lastEventSeq: watermark ? num(watermark.last) : 0,
    };
  } finally {
    await client.end();
  }
}

/** Rows of a table, for the start-up checks (how many migrations were recorded, ...). */
export async function queryRows<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}
