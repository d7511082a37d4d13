// The baseline the service is compared with: Fastify and raw better-sqlite3,
// no Prisma, no in-memory model, no group commit. Each attach / detach is one
// better-sqlite3 transaction: read the group, domain and unit rows, check,
// move the group, append an Event row, answer with the group as JSON.
//
//   node --import tsx bench/baseline-server.ts --port P --db FILE [--synchronous full|normal]
//
// Its SQLite settings are the service's writer's (src/store/sqlite.ts): WAL,
// foreign keys, and synchronous FULL unless told otherwise, so that both
// answer only once the change would survive a power loss. Compared at
// NORMAL against the service at FULL, the baseline would skip the WAL sync
// the service pays for at every commit.
//
// The database file must already hold the schema and rows (bench/seed.ts
// builds it with the service's own migrator and row encoding). The queries
// below are the baseline's own on purpose: it stands for the simplest server
// one could write on those tables, not for this project's code.
import Database from "better-sqlite3";
import Fastify from "fastify";
import { baselineRoutes, type GroupAnswer, type Outcome } from "./baseline-routes.js";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string" }, db: { type: "string" }, host: { type: "string" }, synchronous: { type: "string", default: "full" } },
  strict: true,
});
if (!values.db || values.port === undefined) {
  console.error("usage: baseline-server --port P --db FILE [--synchronous full|normal]");
  process.exit(2);
}
if (values.synchronous !== "full" && values.synchronous !== "normal") {
  console.error(`--synchronous must be full or normal, got "${values.synchronous}"`);
  process.exit(2);
}

const db = new Database(values.db, { fileMustExist: true });
db.pragma("journal_mode = WAL");
db.pragma(`synchronous = ${values.synchronous.toUpperCase()}`);
db.pragma("foreign_keys = ON");

type GroupRow = GroupAnswer;
interface DomainRow { id: number; type: string; driver: string }
interface UnitRow { id: number; driver: string }

const getGroup = db.prepare<[number], GroupRow>(
  `SELECT id, name, unitId, domainId, defaultDomainId, blockingDomainId, owner FROM "Group" WHERE id = ?`);
const getDomain = db.prepare<[number], DomainRow>(`SELECT id, type, driver FROM "Domain" WHERE id = ?`);
const getUnit = db.prepare<[number], UnitRow>(`SELECT id, driver FROM "Unit" WHERE id = ?`);
const setGroupDomain = db.prepare<[number, number]>(`UPDATE "Group" SET "domainId" = ? WHERE id = ?`);
const addEvent = db.prepare<[string, string, number, number, string | null, number, string | null]>(
  `INSERT INTO "Event" ("at", "op", "owner", "groupId", "deviceId", "domainId", "containerId", "errno", "code", "reason", "detail")
   VALUES (?, ?, NULL, ?, NULL, ?, NULL, ?, ?, ?, NULL)`);


const now = (): string => new Date().toISOString().replace("Z", "+00:00");
const ERRNO_CODE: Record<string, number> = { EINVAL: -22, EBUSY: -16, ENOENT: -2 };

/** One attach or detach, all of it inside one transaction. */
const move = db.transaction((op: "attach" | "detach", groupId: number, domainId: number): Outcome => {
  const group = getGroup.get(groupId);
  if (!group) return { ok: false, status: 404, errno: "ENOENT", reason: "no-such-group", detail: `no group ${groupId}` };
  const targetId = op === "attach" ? domainId : group.defaultDomainId;
  const domain = getDomain.get(targetId);
  if (!domain) return { ok: false, status: 404, errno: "ENOENT", reason: "no-such-domain", detail: `no domain ${targetId}` };
  const unit = getUnit.get(group.unitId)!;
  let failure: Outcome | null = null;
  if (op === "attach" && group.domainId !== group.defaultDomainId) {
    failure = { ok: false, status: 409, errno: "EBUSY", reason: "group-attached", detail: `group ${group.name} is attached to domain ${group.domainId}` };
  } else if (op === "detach" && group.domainId !== domainId) {
    failure = { ok: false, status: 409, errno: "EINVAL", reason: "not-attached", detail: `group ${group.name} is not on domain ${domainId}` };
  } else if (domain.driver !== unit.driver) {
    failure = { ok: false, status: 409, errno: "EINVAL", reason: "different-driver", detail: `domain ${domain.id} belongs to ${domain.driver}` };
  }
  const opName = op === "attach" ? "attach-group" : "detach-group";
  if (failure && !failure.ok) {
    addEvent.run(now(), opName, groupId, domainId, failure.errno, ERRNO_CODE[failure.errno] ?? -1, failure.reason);
    return failure;
  }
  setGroupDomain.run(targetId, groupId);
  addEvent.run(now(), opName, groupId, domainId, null, 0, null);
  return { ok: true, group: { ...group, domainId: targetId } };
});

const app = Fastify({ logger: false });

baselineRoutes(app, move);

const stop = async (): Promise<void> => {
  await app.close();
  db.close();
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());

await app.listen({ host: values.host ?? "127.0.0.1", port: Number(values.port) });
