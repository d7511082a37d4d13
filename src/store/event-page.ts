// One page of the event log as the JSON body GET /v1/events answers with,
// read and serialized in one place: by the event reader's worker thread, and
// on the caller's thread when that worker is not running.
import type { Database } from "better-sqlite3";
import type { EventOp, EventRecord } from "../core/entities.js";
import { storedOutcome } from "../core/outcome.js";

const COLUMNS = `"seq", "at", "op", "owner", "groupId", "deviceId", "domainId", "containerId", "errno", "code", "reason", "detail"`;

type Row = [number, string, EventOp, string | null, number | null, number | null, number | null, number | null, string | null, number, string | null, string | null];

export interface PageQuery {
  readonly after: number;
  readonly limit: number;
  readonly groupId?: number | undefined;
}

/** An event as the API shows it: its time as ISO 8601 text (UTC). */
export type EventRow = Omit<EventRecord, "at"> & { readonly at: string };

/** Prepared once per connection. */
export function eventQueries(db: Database): (query: PageQuery) => EventRow[] {
  const all = db.prepare(`SELECT ${COLUMNS} FROM "Event" WHERE "seq" > ? ORDER BY "seq" LIMIT ?`).raw();
  const ofGroup = db.prepare(`SELECT ${COLUMNS} FROM "Event" WHERE "groupId" = ? AND "seq" > ? ORDER BY "seq" LIMIT ?`).raw();
  return ({ after, limit, groupId }) => {
    const rows = (groupId !== undefined ? ofGroup.all(groupId, after, limit) : all.all(after, limit)) as Row[];
    return rows.map(([seq, at, op, owner, gid, deviceId, domainId, containerId, errno, code, reason, detail]) => ({
      // Stored in Prisma's SQLite DateTime text (+00:00); answered as ISO with Z.
      seq, at: new Date(at).toISOString(), op, owner, groupId: gid, deviceId, domainId, containerId,
      ...storedOutcome(errno, code, reason, detail),
    }));
  };
}

/**
 * The answer's body for `query`: the page, `next` (the cursor to continue
 * from, null on the last page: one row past the limit is read to know) and
 * `last` (where a client polling for new events continues, on every page).
 */
export function pageBody(read: (query: PageQuery) => EventRow[], query: PageQuery): string {
  const rows = read({ ...query, limit: query.limit + 1 });
  const more = rows.length > query.limit;
  if (more) rows.length = query.limit;
  const last = rows.length > 0 ? rows[rows.length - 1]!.seq : query.after;
  return JSON.stringify({ items: rows, next: more ? last : null, last });
}
