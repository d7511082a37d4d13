// The entity declarations and what is derived from them in the core: the
// column store laid out from the declared fields, Entity.make, and the
// declaration checks.
import fc from "fast-check";
import { Type } from "@sinclair/typebox";
import { describe, expect, it } from "vitest";
import { ColumnRows, ObjectRows } from "../../src/core/columns.js";
import { bool, entity, enumText, id, int, int64, ref, shared, text, type FieldSpec } from "../../src/core/declare.js";
import { ENTITIES, KINDS, type Entities, type Kind } from "../../src/core/entities.js";

// Shared objects are stored by reference: a small pool, so rows share them.
const POOL = [Object.freeze({ a: 1 }), Object.freeze({ a: 2 }), Object.freeze({ b: [1, 2] })];

/** Any value a field of this storage holds (enums: the declared values and a few others). */
function valueOf(f: FieldSpec): fc.Arbitrary<unknown> {
  const base = ((): fc.Arbitrary<unknown> => {
    switch (f.storage) {
      // -1 is the null of a nullable cell (only references are nullable, and ids are positive).
      case "int32": return fc.integer({ min: f.nullable ? 0 : -(2 ** 31), max: 2 ** 31 - 1 });
      case "int64": return fc.oneof(fc.constantFrom(0, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.maxSafeNat());
      case "bool": return fc.boolean();
      case "enum": return fc.constantFrom(...f.values, "other", "", "ünï");
      case "text": return fc.string({ unit: "grapheme", maxLength: 8 });
      case "shared": return fc.constantFrom(...POOL);
    }
  })();
  return f.nullable ? fc.option(base, { nil: null, freq: 2 }) : base;
}

function recordOf(kind: Kind, rowId: number): fc.Arbitrary<Record<string, unknown>> {
  const fields = ENTITIES[kind].fields.slice(1);
  return fc.tuple(...fields.map(valueOf)).map((values) => {
    const row: Record<string, unknown> = { id: rowId };
    fields.forEach((f, i) => (row[f.name] = values[i]));
    return row;
  });
}

/** Ids across the columns' first two growths (1024, 2048). */
const rowId = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1000, max: 1030 }), fc.integer({ min: 2040, max: 2100 }));
const op = (kind: Kind) => fc.oneof(
  rowId.chain((i) => recordOf(kind, i).map((row) => ({ set: row }))),
  rowId.map((i) => ({ del: i })),
);

const columnKinds = KINDS.filter((k) => ENTITIES[k].storage === "columns");

describe("column store", () => {
  it("the kinds that grow with the machine are column-stored, the others are objects", () => {
    expect(columnKinds).toEqual(["domain", "group", "device"]);
  });

  it.each(columnKinds)("%s: any sequence of sets and deletes reads back like one object per row", (kind) => {
    const names = ENTITIES[kind].fields.map((f) => f.name);
    fc.assert(fc.property(fc.array(op(kind), { maxLength: 60 }), (ops) => {
      const columns = new ColumnRows<Entities[Kind]>(ENTITIES[kind].fields);
      const objects = new ObjectRows<Record<string, unknown>>();
      const ids = new Set<number>();
      for (const o of ops) {
        if ("set" in o) {
          columns.set(o.set.id as number, o.set as Entities[Kind]);
          objects.set(o.set.id as number, o.set);
          ids.add(o.set.id as number);
        } else {
          columns.delete(o.del);
          objects.delete(o.del);
        }
      }
      expect(columns.end).toBe(objects.end);
      for (const i of [...ids, -1, 1.5, 5000]) {
        expect(columns.has(i)).toBe(objects.has(i));
        const want = objects.get(i);
        const got = columns.get(i) as Record<string, unknown> | undefined;
        expect(got).toStrictEqual(want);
        if (want === undefined) continue;
        // Declared order, and the very objects stored (interned ones stay shared).
        expect(Object.keys(got!)).toEqual(names);
        for (const f of ENTITIES[kind].fields) {
          expect(got![f.name]).toBe(want[f.name]);
          expect(columns.field(i, f.name as never)).toBe(want[f.name]);
        }
      }
    }), { numRuns: 150 });
  });

  it("an enum holds at most 256 distinct values", () => {
    const rows = new ColumnRows<{ id: number; v: string }>(entity("T", "columns", { id: id(), v: enumText() }).fields);
    for (let i = 0; i < 256; i++) rows.set(i, { id: i, v: `v${i}` });
    expect(rows.get(255)).toEqual({ id: 255, v: "v255" });
    expect(() => rows.set(256, { id: 256, v: "one too many" })).toThrow(RangeError);
    rows.set(256, { id: 256, v: "v7" });
    expect(rows.get(256)).toEqual({ id: 256, v: "v7" });
  });

  it("an int64 field holds every integer from 0 to 2^53 - 1 exactly, column-stored too", () => {
    const fields = entity("T", "columns", { id: id(), at: int64() }).fields;
    expect(fields[1]).toMatchObject({ storage: "int64", nullable: false });
    const rows = new ColumnRows<{ id: number; at: number }>(fields);
    fc.assert(fc.property(fc.maxSafeNat(), fc.integer({ min: 0, max: 3000 }), (at, rowId) => {
      rows.set(rowId, { id: rowId, at });
      expect(rows.get(rowId)).toStrictEqual({ id: rowId, at });
      expect(rows.field(rowId, "at")).toBe(at);
    }));
    rows.set(7, { id: 7, at: Number.MAX_SAFE_INTEGER });
    expect(rows.get(7)!.at).toBe(2 ** 53 - 1);
  });

  it.each([-1, 1.5, 2 ** 31])("refuses row id %s", (bad) => {
    const rows = new ColumnRows<{ id: number }>(entity("T", "columns", { id: id() }).fields);
    expect(() => rows.set(bad, { id: bad })).toThrow(RangeError);
  });
});

describe("Entity.make", () => {
  const T = entity("T", "objects", {
    id: id(),
    name: text({ unique: true }),
    label: text({ default: "none" }),
    note: text({ nullable: true }),
    parentId: ref({ nullable: true }),
    size: int({ default: 4 }),
    on: bool({ default: true }),
    kind: enumText(["a", "b"] as const),
    conf: shared(Type.Object({ x: Type.Number() })),
  });
  const conf = Object.freeze({ x: 1 });

  it.each([
    ["defaults filled in", { id: 1, name: "n", kind: "a", conf },
      { id: 1, name: "n", label: "none", note: null, parentId: null, size: 4, on: true, kind: "a", conf }],
    ["given values kept, null too, in declared order whatever the input order", { conf, on: false, note: "x", parentId: 3, size: 0, label: "l", kind: "b", name: "n", id: 2 },
      { id: 2, name: "n", label: "l", note: "x", parentId: 3, size: 0, on: false, kind: "b", conf }],
    ["undefined means absent", { id: 3, name: "n", kind: "a", conf, label: undefined, on: undefined },
      { id: 3, name: "n", label: "none", note: null, parentId: null, size: 4, on: true, kind: "a", conf }],
  ] as const)("%s", (_, input, want) => {
    const made = T.make(input as Parameters<typeof T.make>[0]);
    expect(made).toStrictEqual(want);
    expect(Object.keys(made)).toEqual(T.fields.map((f) => f.name));
    expect(made.conf).toBe(conf);
  });

  it("refuses a record without a required field", () => {
    expect(() => T.make({ id: 1, kind: "a", conf } as unknown as Parameters<typeof T.make>[0])).toThrow(/T\.name is required/);
  });

  it.each(KINDS)("%s: a made record has every declared field, in order", (kind) => {
    const fields = ENTITIES[kind].fields;
    const input = Object.fromEntries(fields.filter((f) => !f.hasDefault).map((f) => [f.name, f.storage === "shared" ? POOL[0] : f.storage === "bool" ? false : f.storage === "int32" ? 1 : "x"]));
    const made = ENTITIES[kind].make(input as never) as Record<string, unknown>;
    expect(Object.keys(made)).toEqual(fields.map((f) => f.name));
    for (const f of fields) if (f.hasDefault) expect(made[f.name]).toBe(f.default);
  });
});

describe("declarations", () => {
  it("refuses a field declared without a storage kind", () => {
    expect(() => entity("T", "objects", { id: id(), loose: Type.String() })).toThrow(/T\.loose has no storage/);
  });

  it("refuses an entity whose first field is not its id", () => {
    expect(() => entity("T", "objects", { name: text(), id: id() })).toThrow(/first field must be id/);
  });

  it("the storage annotation is invisible to JSON Schema consumers", () => {
    const json = JSON.parse(JSON.stringify(ENTITIES.domain.schema)) as { properties: Record<string, unknown> };
    expect(json.properties.unitId).toEqual({
      anyOf: [{ type: "integer", minimum: 1, maximum: 2147483647, description: "Service-assigned id" }, { type: "null" }],
      description: "Unit the domain is finalised on",
    });
    expect(json.properties.type).toEqual({ type: "string", enum: ["paging", "identity", "blocked", "dma"] });
  });
});
