// Turns one operation's changes into the statements that make them
// durable: one prepared statement per row change, with bound parameters.
//
// Encoding happens right after the operation ran, before it joins a
// group-commit batch, so a value the database could not store faithfully (a
// lone UTF-16 surrogate, a NUL, a number that is not a safe integer) fails
// that one operation, never the batch it would have shared with others.
import type { EventRecord } from "../core/entities.js";
import { KINDS, type ChangeSet, type Kind } from "../core/model.js";
import { EVENTS, TABLES, type TableMap } from "./rows.js";

export type Cell = string | number | null;

/** One statement of a write, by shape: the writer prepares each shape once. */
export interface Step {
  readonly sql: string;
  readonly params: readonly Cell[];
}

/** A value the database would not store as given. */
export class UnstorableValueError extends Error {
  constructor(readonly field: string, why: string) {
    super(`${field} cannot be stored: ${why}`);
  }
}

/** The value, if the database stores it exactly; else UnstorableValueError naming the field. */
export function storable(value: Cell, field: string): Cell {
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw new UnstorableValueError(field, "text with a lone UTF-16 surrogate");
    if (value.includes("\0")) throw new UnstorableValueError(field, "text with a NUL character");
  } else if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new UnstorableValueError(field, `${value} is not an integer the database holds exactly`);
  }
  return value;
}

const q = (name: string): string => `"${name}"`;

/** SQL text per statement shape, built once. */
const sqlCache = new Map<string, string>();
function sqlFor(key: string, build: () => string): string {
  let sql = sqlCache.get(key);
  if (sql === undefined) sqlCache.set(key, (sql = build()));
  return sql;
}

function insert<T>(map: TableMap<T>, row: T): Step {
  const cells = map.toRow(row);
  const sql = sqlFor(`i:${map.table}`, () =>
    `INSERT INTO ${q(map.table)} (${map.columns.map(q).join(", ")}) VALUES (${map.columns.map(() => "?").join(", ")})`);
  return { sql, params: cells.map((c, i) => storable(c, `${map.table}.${map.columns[i]!}`)) };
}

function remove(map: TableMap<unknown>, id: number): Step {
  return { sql: sqlFor(`d:${map.table}`, () => `DELETE FROM ${q(map.table)} WHERE "id" = ?`), params: [id] };
}

/**
 * Only the columns that changed: writing unchanged ones would rewrite their
 * index entries too (a group move would touch all four of its indexes).
 */
function update<T>(map: TableMap<T>, before: T, after: T): Step | null {
  const old = map.toRow(before);
  const now = map.toRow(after);
  const changed: number[] = [];
  for (let i = 1; i < now.length; i++) if (now[i] !== old[i]) changed.push(i);
  if (changed.length === 0) return null;
  const sql = sqlFor(`u:${map.table}:${changed.join(",")}`, () =>
    `UPDATE ${q(map.table)} SET ${changed.map((i) => `${q(map.columns[i]!)} = ?`).join(", ")} WHERE "id" = ?`);
  return { sql, params: [...changed.map((i) => storable(now[i]!, `${map.table}.${map.columns[i]!}`)), now[0]!] };
}

/**
 * The steps for one operation's changes. Deletes come first, children before
 * parents, so that a name freed and taken again in one operation does not
 * collide; inserts then go parents first, then updates. Foreign keys are
 * checked at commit (the writer defers them), since a row may be updated to
 * point at a parent inserted later in the list.
 */
export function encodeChanges(changes: ChangeSet, events: readonly EventRecord[]): Step[] {
  const steps: Step[] = [];
  for (let k = KINDS.length - 1; k >= 0; k--) {
    const kind = KINDS[k]!;
    for (const [id, c] of changes.rows[kind]) if (c.before !== null && c.after === null) steps.push(remove(TABLES[kind] as TableMap<unknown>, id));
  }
  for (const kind of KINDS) {
    const map = TABLES[kind] as TableMap<unknown>;
    for (const c of changes.rows[kind].values()) if (c.before === null && c.after !== null) steps.push(insert(map, c.after));
  }
  for (const kind of KINDS) {
    const map = TABLES[kind] as TableMap<unknown>;
    for (const c of changes.rows[kind].values()) {
      if (c.before === null || c.after === null) continue;
      const step = update(map, c.before, c.after);
      if (step) steps.push(step);
    }
  }
  for (const e of events) steps.push(insert(EVENTS, e));
  return steps;
}

/**
 * Refuses, with the error encodeChanges would raise, a value of the
 * operation's rows or events the database would not store; builds no
 * statement (for a writer that writes a batch set by set).
 */
export function checkStorable(changes: ChangeSet, events: readonly EventRecord[]): void {
  const check = <T>(map: TableMap<T>, row: T) => map.toRow(row).forEach((cell, i) => storable(cell, `${map.table}.${map.columns[i]!}`));
  for (const kind of KINDS) {
    const map = TABLES[kind] as TableMap<unknown>;
    for (const c of changes.rows[kind].values()) if (c.after !== null) check(map, c.after);
  }
  for (const e of events) check(EVENTS, e);
}

/** The rows an operation changed, as "kind:id" keys (to see which operations overlap). */
export function touchedRows(changes: ChangeSet): Set<string> {
  const out = new Set<string>();
  for (const kind of KINDS) for (const id of changes.rows[kind].keys()) out.add(`${kind}:${id}`);
  return out;
}

/** What IdWatermark holds: the highest id handed out per kind, and the last event seq. */
export type WatermarkKind = Kind | "event";
export type Watermarks = Record<WatermarkKind, number>;
export const WATERMARK_KINDS: readonly WatermarkKind[] = [...KINDS, "event"];

/** IdWatermark rows as a full record (0 where there is no row yet). */
export function readWatermarks(rows: readonly { kind: string; last: number }[]): Watermarks {
  const out = Object.fromEntries(WATERMARK_KINDS.map((k) => [k, 0])) as Watermarks;
  for (const row of rows) if ((WATERMARK_KINDS as readonly string[]).includes(row.kind)) out[row.kind as WatermarkKind] = row.last;
  return out;
}

/**
 * The steps that raise the stored watermarks from `stored` to `next`, for
 * the kinds that rose: written in the same transaction as the rows whose ids
 * they cover. Never lowers one, whatever `stored` believed.
 */
export function watermarkSteps(stored: Readonly<Watermarks>, next: Readonly<Watermarks>): Step[] {
  const steps: Step[] = [];
  for (const kind of WATERMARK_KINDS) {
    if (next[kind] <= stored[kind]) continue;
    steps.push({
      sql: `INSERT INTO "IdWatermark" ("kind", "last") VALUES (?, ?)
            ON CONFLICT ("kind") DO UPDATE SET "last" = excluded."last" WHERE excluded."last" > "IdWatermark"."last"`,
      params: [kind, storable(next[kind], "IdWatermark.last")],
    });
  }
  return steps;
}

/** What an Idempotency-Key's answer is stored as (the store's StoredAnswer). */
export interface AnswerCells {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * The statement that remembers the answer to a request with an
 * Idempotency-Key, written in the same transaction as its operation; a key
 * whose answer expired is taken over.
 */
export function answerStep(remember: { client: string; key: string; fingerprint: string }, answer: AnswerCells, storedAt: number): Step {
  return {
    sql: `INSERT INTO "IdempotentAnswer" ("client", "key", "fingerprint", "status", "contentType", "headers", "body", "storedAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT ("client", "key") DO UPDATE SET "fingerprint" = excluded."fingerprint", "status" = excluded."status", "contentType" = excluded."contentType",
          "headers" = excluded."headers", "body" = excluded."body", "storedAt" = excluded."storedAt"`,
    params: [
      remember.client, remember.key, remember.fingerprint, answer.status, answer.contentType, JSON.stringify(answer.headers ?? {}), answer.body, storedAt,
    ].map((cell) => storable(cell, "IdempotentAnswer")),
  };
}
