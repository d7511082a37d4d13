// The PostgreSQL baseline: Fastify and raw `pg`, no Prisma, no in-memory
// model, no group commit. Each attach / detach is one transaction that does
// what a replica's write does for it, one request at a time: take the same
// advisory lock every replica's write batch takes (so that several of these
// servers could share the database, as replicas do), read the group with
// its domain and unit, check, move the group, append an Event row, commit.
//
//   node --import tsx bench/pg-baseline-server.ts --port P --url postgresql://...
//
// The database must already hold the schema and rows (bench/seed.ts,
// seedPostgres). The queries are the baseline's own on purpose: the
// simplest server one could write on those tables.
import Fastify from "fastify";
import { baselineRoutes, type GroupAnswer, type Outcome } from "./baseline-routes.js";
import pg from "pg";
import { parseArgs } from "node:util";
import { WRITE_LOCK_KEY } from "../src/store/postgres.js";

const { values } = parseArgs({
  options: { port: { type: "string" }, url: { type: "string" }, host: { type: "string" }, connections: { type: "string", default: "8" } },
  strict: true,
});
if (!values.url || values.port === undefined) {
  console.error("usage: pg-baseline-server --port P --url postgresql://... [--connections N]");
  process.exit(2);
}

// BIGINT as a number, like the store.
const pool = new pg.Pool({ connectionString: values.url, max: Number(values.connections) });

interface GroupRow extends GroupAnswer {
  unitDriver: string;
  targetDriver: string | null;
}

const ERRNO_CODE: Record<string, number> = { EINVAL: -22, EBUSY: -16, ENOENT: -2 };

async function move(op: "attach" | "detach", groupId: number, domainId: number): Promise<Outcome> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(`SELECT pg_advisory_xact_lock(${WRITE_LOCK_KEY})`);
    const found = await client.query<GroupRow>(
      `SELECT g.id, g.name, g."unitId", g."domainId", g."defaultDomainId", g."blockingDomainId", g.owner, u.driver AS "unitDriver",
              (SELECT d.driver FROM "Domain" d WHERE d.id = CASE WHEN $2 = 'attach' THEN $3::int ELSE g."defaultDomainId" END) AS "targetDriver"
         FROM "Group" g JOIN "Unit" u ON u.id = g."unitId" WHERE g.id = $1`, [groupId, op, domainId]);
    const group = found.rows[0];
    let outcome: Outcome;
    if (!group) outcome = { ok: false, status: 404, errno: "ENOENT", reason: "no-such-group", detail: `no group ${groupId}` };
    else if (group.targetDriver === null) outcome = { ok: false, status: 404, errno: "ENOENT", reason: "no-such-domain", detail: `no domain ${domainId}` };
    else if (op === "attach" && group.domainId !== group.defaultDomainId) {
      outcome = { ok: false, status: 409, errno: "EBUSY", reason: "group-attached", detail: `group ${group.name} is attached to domain ${group.domainId}` };
    } else if (op === "detach" && group.domainId !== domainId) {
      outcome = { ok: false, status: 409, errno: "EINVAL", reason: "not-attached", detail: `group ${group.name} is not on domain ${domainId}` };
    } else if (group.targetDriver !== group.unitDriver) {
      outcome = { ok: false, status: 409, errno: "EINVAL", reason: "different-driver", detail: `domain ${domainId} belongs to ${group.targetDriver}` };
    } else {
      const targetId = op === "attach" ? domainId : group.defaultDomainId;
      await client.query(`UPDATE "Group" SET "domainId" = $1 WHERE id = $2`, [targetId, groupId]);
      const { unitDriver: _u, targetDriver: _t, ...rest } = group;
      outcome = { ok: true, group: { ...rest, domainId: targetId } };
    }
    const failed = outcome.ok ? null : outcome;
    await client.query(
      `INSERT INTO "Event" ("seq", "at", "op", "groupId", "domainId", "errno", "code", "reason")
       VALUES ((SELECT coalesce(max("seq"), 0) + 1 FROM "Event"), now(), $1, $2, $3, $4, $5, $6)`,
      [op === "attach" ? "attach-group" : "detach-group", groupId, domainId, failed?.errno ?? null, failed ? ERRNO_CODE[failed.errno] ?? -1 : 0, failed?.reason ?? null]);
    await client.query("COMMIT");
    return outcome;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

const app = Fastify({ logger: false });
baselineRoutes(app, move);

const stop = async (): Promise<void> => {
  await app.close();
  await pool.end();
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());

await app.listen({ host: values.host ?? "127.0.0.1", port: Number(values.port) });
