// The change log replicas share through PostgreSQL: per committed write
// batch, the rows as the batch left them, the id watermarks it reached and
// the events it recorded. A replica applies the batches other replicas
// committed to its own in-memory model, in seq order, before it runs an
// operation (under the write lock) and before it answers a read; the
// result is the model it would have had if it had run those operations
// itself.
import type { EventRecord } from "../core/entities.js";
import { KINDS, type ChangeSet, type Entities, type Kind, type Model, type RowChange } from "../core/model.js";
import { eventRow, type EventRow } from "./event-page.js";
import { WATERMARK_KINDS, type Watermarks } from "./encode.js";
import { fromStored } from "./rows.js";

/** One committed batch, as stored in "ChangeLog"."body" (JSON). */
export interface ChangeBody {
  /** Per kind, the changed rows as the batch left them: [id, row] (row null: deleted). */
  readonly rows: { readonly [K in Kind]?: readonly (readonly [number, Record<string, unknown> | null])[] };
  readonly watermarks: Watermarks;
  readonly events: readonly EventRow[];
  /** Events up to this seq are pruned from the log once this batch commits. */
  readonly prunedUpTo: number;
}

/** One row a batch changed: whether it existed before the batch, and how the batch left it (null: deleted). */
export interface MergedRow {
  readonly existed: boolean;
  readonly after: Entities[Kind] | null;
}

/** What a batch's operations changed, row by row, in operation order: the first state before and the last after. */
export function mergeRows(sets: readonly ChangeSet[]): Map<Kind, Map<number, MergedRow>> {
  const out = new Map<Kind, Map<number, MergedRow>>();
  for (const set of sets) {
    for (const kind of KINDS) {
      const rows = set.rows[kind] as ReadonlyMap<number, RowChange<Entities[Kind]>>;
      if (rows.size === 0) continue;
      let merged = out.get(kind);
      if (!merged) out.set(kind, (merged = new Map()));
      for (const [id, change] of rows) merged.set(id, { existed: merged.get(id)?.existed ?? change.before !== null, after: change.after });
    }
  }
  return out;
}

export function changeBody(merged: ReadonlyMap<Kind, ReadonlyMap<number, MergedRow>>, events: readonly EventRecord[], watermarks: Watermarks, prunedUpTo: number): ChangeBody {
  const rows: Partial<Record<Kind, [number, Record<string, unknown> | null][]>> = {};
  for (const [kind, changed] of merged) rows[kind] = [...changed].map(([id, row]) => [id, row.after as Record<string, unknown> | null]);
  return { rows, watermarks, events: events.map(eventRow), prunedUpTo };
}

/**
 * Brings the model to the state a batch left: every row it changed is
 * replaced (deleted first, children before parents, then written back
 * parents first, so an index reading another table finds its row), and the
 * id watermarks are raised to the batch's. Model.restore does exactly this
 * replacement, without marking anything changed: it is handed the batch's
 * rows as the state to put in place.
 */
export function applyChangeBody(model: Model, body: ChangeBody): void {
  const rows = {} as Record<Kind, Map<number, RowChange<Entities[Kind]>>>;
  for (const kind of KINDS) rows[kind] = new Map();
  for (const kind of KINDS) {
    for (const [id, stored] of body.rows[kind] ?? []) {
      // Complete records (the model that wrote them had every field): no completeStored.
      rows[kind].set(id, { before: stored === null ? null : fromStored(kind, stored), after: null });
    }
  }
  model.restore({ rows, events: [] } as unknown as ChangeSet);
  for (const kind of WATERMARK_KINDS) if (kind !== "event") model.reserveIds(kind, body.watermarks[kind]);
}
