// A write batch on PostgreSQL as a handful of set-based statements, whatever
// its size: the rows it deleted, per table; the rows it made or changed, as
// one multi-row upsert per table (the row as the batch left it); its events
// as one multi-row insert; the id watermarks it raised as one upsert. The
// write lock is held while PostgreSQL runs them, and a statement's parsing
// and planning cost is most of a small one's: fewer statements, shorter
// hold, more replicas' batches per second.
//
// Foreign keys are checked at COMMIT (the migration makes them deferred), so
// only deletes must come first: a name a deleted row held may be taken by a
// row the same batch makes.
import type { EventRecord } from "../core/entities.js";
import { KINDS, type Entities, type Kind } from "../core/model.js";
import type { MergedRow } from "./change-log.js";
import type { Watermarks, WatermarkKind } from "./encode.js";
import { literal } from "./postgres-sql.js";
import { EVENTS, TABLES, type TableMap } from "./rows.js";

const q = (name: string): string => `"${name}"`;

function values<T>(map: TableMap<T>, rows: readonly T[]): string {
  return rows.map((row) => `(${map.toRow(row).map(literal).join(", ")})`).join(", ");
}

function upsert<T>(map: TableMap<T>, rows: readonly T[]): string {
  const [key, ...rest] = map.columns;
  const set = rest.length > 0 ? `DO UPDATE SET ${rest.map((c) => `${q(c)} = excluded.${q(c)}`).join(", ")}` : "DO NOTHING";
  return `INSERT INTO ${q(map.table)} (${map.columns.map(q).join(", ")}) VALUES ${values(map, rows)} ON CONFLICT (${q(key!)}) ${set}`;
}

export function batchStatements(merged: ReadonlyMap<Kind, ReadonlyMap<number, MergedRow>>, events: readonly EventRecord[]): string[] {
  const out: string[] = [];
  for (let k = KINDS.length - 1; k >= 0; k--) {
    const kind = KINDS[k]!;
    const gone = [...(merged.get(kind) ?? [])].filter(([, row]) => row.existed && row.after === null).map(([id]) => id);
    if (gone.length > 0) out.push(`DELETE FROM ${q(TABLES[kind].table)} WHERE "id" IN (${gone.join(", ")})`);
  }
  for (const kind of KINDS) {
    const kept = [...(merged.get(kind)?.values() ?? [])].flatMap((row) => (row.after === null ? [] : [row.after]));
    if (kept.length > 0) out.push(upsert(TABLES[kind] as TableMap<Entities[Kind]>, kept));
  }
  if (events.length > 0) out.push(`INSERT INTO ${q(EVENTS.table)} (${EVENTS.columns.map(q).join(", ")}) VALUES ${values(EVENTS, events)}`);
  return out;
}

/** The watermarks that rose from `stored` to `next`, as one statement (null: none rose); never lowers one. */
export function watermarkStatement(stored: Readonly<Watermarks>, next: Readonly<Watermarks>): string | null {
  const risen = (Object.keys(next) as WatermarkKind[]).filter((kind) => next[kind] > stored[kind]);
  if (risen.length === 0) return null;
  return `INSERT INTO "IdWatermark" ("kind", "last") VALUES ${risen.map((kind) => `(${literal(kind)}, ${literal(next[kind])})`).join(", ")}
    ON CONFLICT ("kind") DO UPDATE SET "last" = excluded."last" WHERE excluded."last" > "IdWatermark"."last"`;
}
