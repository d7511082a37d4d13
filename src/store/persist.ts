// Turns drained model changes into a few multi-row statements: per table one
// upsert of the rows' final state and one delete, plus one insert of the
// events. A whole group-commit batch is written with a handful of statements
// whatever the number of operations in it, which is what makes Prisma's
// per-statement cost affordable.
//
// The SQL is plain: INSERT ... ON CONFLICT ... DO UPDATE works unchanged on
// SQLite and PostgreSQL; only the placeholder style is the dialect's.
import type { EventRecord } from "../core/entities.js";
import { KINDS, type ChangeSet, type Entities, type Kind } from "../core/model.js";
import { EVENTS, TABLES, type TableMap } from "./rows.js";

export interface Statement {
  readonly sql: string;
  readonly params: (string | number | null)[];
}

/** SQLite allows 32766 bound parameters per statement; stay well below. */
const MAX_PARAMS = 8000;

const q = (name: string): string => `"${name}"`;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function upserts<T>(map: TableMap<T>, rows: T[]): Statement[] {
  const cols = map.columns;
  const tuple = `(${cols.map(() => "?").join(", ")})`;
  const update = cols.filter((c) => c !== cols[0]).map((c) => `${q(c)} = excluded.${q(c)}`).join(", ");
  return chunks(rows, Math.floor(MAX_PARAMS / cols.length)).map((part) => ({
    sql: `INSERT INTO ${q(map.table)} (${cols.map(q).join(", ")}) VALUES ${part.map(() => tuple).join(", ")}`
      + (update ? ` ON CONFLICT (${q(cols[0]!)}) DO UPDATE SET ${update}` : ""),
    params: part.flatMap((row) => map.toRow(row)),
  }));
}

function inserts<T>(map: TableMap<T>, rows: T[]): Statement[] {
  const tuple = `(${map.columns.map(() => "?").join(", ")})`;
  return chunks(rows, Math.floor(MAX_PARAMS / map.columns.length)).map((part) => ({
    sql: `INSERT INTO ${q(map.table)} (${map.columns.map(q).join(", ")}) VALUES ${part.map(() => tuple).join(", ")}`,
    params: part.flatMap((row) => map.toRow(row)),
  }));
}

function deletes(table: string, ids: number[]): Statement[] {
  return chunks(ids, MAX_PARAMS).map((part) => ({
    sql: `DELETE FROM ${q(table)} WHERE "id" IN (${part.map(() => "?").join(", ")})`,
    params: part,
  }));
}

/**
 * Statements for a batch of change sets, applied in order. Later sets win for
 * the same row. Deletes come first, children before parents, so that a name
 * freed and taken again in one batch does not collide; inserts then go
 * parents first. Foreign keys are checked at commit (deferred), when the
 * batch is whole again.
 */
export function statementsFor(batch: readonly ChangeSet[], events: readonly EventRecord[]): Statement[] {
  const finalRows = new Map<Kind, Map<number, unknown>>();
  for (const kind of KINDS) finalRows.set(kind, new Map());
  for (const set of batch) {
    for (const kind of KINDS) {
      const target = finalRows.get(kind)!;
      for (const [id, row] of set.rows[kind]) target.set(id, row);
    }
  }
  const out: Statement[] = [];
  for (const kind of [...KINDS].reverse()) {
    const gone = [...finalRows.get(kind)!].filter(([, row]) => row === null).map(([id]) => id);
    out.push(...deletes(TABLES[kind].table, gone));
  }
  for (const kind of KINDS) {
    const live = [...finalRows.get(kind)!.values()].filter((row) => row !== null) as Entities[typeof kind][];
    out.push(...upserts(TABLES[kind] as TableMap<Entities[typeof kind]>, live));
  }
  out.push(...inserts(EVENTS, [...events]));
  return out;
}
