// Reads the durable image into a fresh model, a page at a time so that a
// large database does not need all its rows as Prisma objects at once.
import type { DriverTable } from "../core/driver.js";
import { ENTITIES } from "../core/entities.js";
import { completeStored } from "../core/stored-rows.js";
import { KINDS, Model, type Kind } from "../core/model.js";
import { readWatermarks, type Watermarks } from "./encode.js";
import { fromStored } from "./rows.js";

// Smaller pages hold fewer rows as Prisma objects at once: 1,000 loads
// faster and peaks lower than 5,000.
const PAGE = 1000;

/** The part of a Prisma model delegate the loader uses. */
interface Pages {
  findMany(args: {
    select: Record<string, true>; where: { id: { gt: number } }; orderBy: { id: "asc" }; take: number;
  }): Promise<Record<string, unknown>[]>;
}

/**
 * What the loader reads through: a Prisma client (or transaction) of either
 * provider's generated client. The two are the same model, so they have the
 * same delegates; TypeScript sees two unrelated generated types.
 */
export interface TopologySource {
  /** BIGINT on PostgreSQL (SQLite's INTEGER is 64-bit already): a bigint there. */
  readonly idWatermark: { findMany(): Promise<{ kind: string; last: number | bigint }[]> };
  readonly event: {
    findFirst(args: { orderBy: { seq: "asc" | "desc" }; select: { seq: true } }): Promise<{ seq: number | bigint } | null>;
  };
}

/** Loads every row of a kind into the model, in id order, a page at a time. */
async function loadKind(prisma: TopologySource, model: Model, kind: Kind): Promise<void> {
  const { table, fields } = ENTITIES[kind];
  // Prisma names a model's delegate after it, first letter lowered.
  const delegate = (prisma as unknown as Record<string, Pages>)[table[0]!.toLowerCase() + table.slice(1)]!;
  const select = Object.fromEntries(fields.map((f) => [f.name, true as const]));
  let cursor = 0;
  for (;;) {
    const rows = await delegate.findMany({ select, where: { id: { gt: cursor } }, orderBy: { id: "asc" }, take: PAGE });
    for (const row of rows) model.load(kind, completeStored(model, kind, fromStored(kind, row)));
    if (rows.length < PAGE) return;
    cursor = rows[rows.length - 1]!.id as number;
  }
}

export interface Loaded {
  readonly model: Model;
  readonly lastEventSeq: number;
  /** The oldest event kept (lastEventSeq + 1 when there is none). */
  readonly firstEventSeq: number;
  /** The id watermarks storage holds (IdWatermark), per kind and for the event seq. */
  readonly idWatermarks: Watermarks;
}

export async function loadTopology(prisma: TopologySource, drivers: DriverTable): Promise<Loaded> {
  const model = new Model(drivers);
  for (const kind of KINDS) await loadKind(prisma, model, kind);
  // The highest ids ever handed out, deleted rows included: ids are never
  // handed out twice, across restarts too.
  const idWatermarks = readWatermarks((await prisma.idWatermark.findMany()).map((row) => ({ kind: row.kind, last: Number(row.last) })));
  for (const kind of KINDS) model.reserveIds(kind, idWatermarks[kind]);
  const last = await prisma.event.findFirst({ orderBy: { seq: "desc" }, select: { seq: true } });
  const first = await prisma.event.findFirst({ orderBy: { seq: "asc" }, select: { seq: true } });
  const lastEventSeq = Math.max(Number(last?.seq ?? 0), idWatermarks.event);
  return { model, lastEventSeq, firstEventSeq: first ? Number(first.seq) : lastEventSeq + 1, idWatermarks };
}
