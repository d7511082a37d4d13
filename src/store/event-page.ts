// One page of the event log as the JSON body GET /v1/events answers with,
// read and serialized in one place: by the event reader's worker thread, and
// on the caller's thread when that worker is not running.
import type { Database } from "better-sqlite3";
import type { EventOp, EventRecord, Kind } from "../core/entities.js";
import { storedOutcome } from "../core/outcome.js";

const COLUMNS = `"seq", "at", "op", "owner", "groupId", "deviceId", "domainId", "containerId", "errno", "code", "reason", "detail", "kind", "objectId"`;

type Row = [
  number, string, EventOp, string | null, number | null, number | null, number | null, number | null, string | null, number, string | null, string | null,
  Kind | null, number | null,
];

export interface PageQuery {
  readonly after: number;
  readonly limit: number;
  readonly groupId?: number | undefined;
}

/** An event as the API shows it: its time as ISO 8601 text (UTC), the object of a topology change or nulls. */
export type EventRow = Omit<EventRecord, "at" | "kind" | "objectId"> & { readonly at: string; readonly kind: Kind | null; readonly objectId: number | null };

/** An event just written, as the log will read it back. */
export function eventRow(e: EventRecord): EventRow {
  return {
    seq: e.seq, at: e.at.toISOString(), op: e.op, owner: e.owner, groupId: e.groupId, deviceId: e.deviceId, domainId: e.domainId,
    containerId: e.containerId, ...storedOutcome(e.errno, e.code, e.reason, e.detail), kind: e.kind ?? null, objectId: e.objectId ?? null,
  };
}

/** Prepared once per connection. */
export function eventQueries(db: Database): (query: PageQuery) => EventRow[] {
  const all = db.prepare(`SELECT ${COLUMNS} FROM "Event" WHERE "seq" > ? ORDER BY "seq" LIMIT ?`).raw();
  const ofGroup = db.prepare(`SELECT ${COLUMNS} FROM "Event" WHERE "groupId" = ? AND "seq" > ? ORDER BY "seq" LIMIT ?`).raw();
  return ({ after, limit, groupId }) => {
    const rows = (groupId !== undefined ? ofGroup.all(groupId, after, limit) : all.all(after, limit)) as Row[];
    return rows.map(([seq, at, op, owner, gid, deviceId, domainId, containerId, errno, code, reason, detail, kind, objectId]) => ({
      // Stored in Prisma's SQLite DateTime text (+00:00); answered as ISO with Z.
      seq, at: new Date(at).toISOString(), op, owner, groupId: gid, deviceId, domainId, containerId,
      ...storedOutcome(errno, code, reason, detail), kind, objectId,
    }));
  };
}

/**
 * The answer's body: the page; `next`, the cursor of the next page, null
 * when this page reached the end of the log (fewer rows than asked for), so
 * a client paging "until null" stops; and `last`, where to poll from later
 * (the last row's seq, or the query's own when the page is empty).
 */
export function pageBody(rows: readonly EventRow[], after: number, limit: number): string {
  const last = rows.length > 0 ? rows[rows.length - 1]!.seq : after;
  return JSON.stringify({ items: rows, next: rows.length < limit ? null : last, last });
}
