// The mapping between model records and table rows, derived per kind from
// the entity declarations (src/core/entities.ts), used both to load the
// model and to write it back. A record's fields are the table's columns, in
// declared order.
import type { FieldSpec } from "../core/declare.js";
import { ENTITIES, KINDS, type Entities, type EventRecord, type Kind } from "../core/entities.js";
import { interned } from "../core/intern.js";

import type { Cell } from "./encode.js";

export interface TableMap<T> {
  readonly table: string;
  readonly columns: readonly string[];
  toRow(entity: T): Cell[];
}

/** Prisma's DateTime text format on SQLite (the adapter's iso8601 default). */
export function sqliteTimestamp(at: Date): string {
  return at.toISOString().replace("Z", "+00:00");
}

/** A field's value as the database stores it: booleans as 0/1, shared objects as JSON text. */
function toCell(f: FieldSpec, value: unknown): Cell {
  switch (f.storage) {
    case "bool": return value ? 1 : 0;
    case "shared": return JSON.stringify(value);
    default: return value as Cell;
  }
}

function tableMap<K extends Kind>(kind: K): TableMap<Entities[K]> {
  const { table, fields } = ENTITIES[kind];
  return {
    table,
    columns: fields.map((f) => f.name),
    toRow: (row) => fields.map((f) => toCell(f, (row as Record<string, unknown>)[f.name])),
  };
}

export const TABLES = Object.fromEntries(KINDS.map((kind) => [kind, tableMap(kind)])) as { [K in Kind]: TableMap<Entities[K]> };

/** A stored value as the record holds it: shared objects interned, BIGINT cells (bigint from Prisma) as numbers. */
function fromCell(f: FieldSpec, value: unknown): unknown {
  switch (f.storage) {
    case "shared": return interned(value as object);
    // Written only as safe integers (encode.ts storable), so the number is exact.
    case "int64": return Number(value);
    default: return value;
  }
}

/**
 * A record from a row as Prisma returns it (booleans as booleans, JSON
 * parsed, BIGINT as bigint): fields in declared order, shared objects
 * interned so that the rows holding equal ones share one.
 */
export function fromStored<K extends Kind>(kind: K, row: Readonly<Record<string, unknown>>): Entities[K] {
  const record: Record<string, unknown> = {};
  for (const f of ENTITIES[kind].fields) record[f.name] = fromCell(f, row[f.name]);
  return record as Entities[K];
}

export const EVENTS: TableMap<EventRecord> = {
  table: "Event",
  columns: ["seq", "at", "op", "owner", "groupId", "deviceId", "domainId", "containerId", "errno", "code", "reason", "detail", "kind", "objectId"],
  toRow: (e: EventRecord) => [
    e.seq, sqliteTimestamp(e.at), e.op, e.owner, e.groupId, e.deviceId, e.domainId, e.containerId,
    e.errno, e.code, e.reason, e.detail, e.kind ?? null, e.objectId ?? null,
  ],
};
