// The vocabulary entities are declared in (see entities.ts). A declaration is
// a TypeBox object schema whose fields also say how they are stored; from it
// come the record type, the column layout of the in-memory tables
// (columns.ts), the database row mapping (src/store/rows.ts, load.ts) and the
// HTTP representation (src/http/schemas/resources.ts).
//
// The storage annotation sits under a symbol key, so JSON Schema consumers
// (Ajv, fast-json-stringify, JSON.stringify) never see it.
import {
  Type, type Static, type TBoolean, type TInteger, type TNull, type TObject, type TProperties, type TSchema,
  type TString, type TUnion, type TUnsafe,
} from "@sinclair/typebox";

/** Largest id: SQLite stores it exactly, and so does a JS number. */
export const MAX_ID = 2147483647;
export const Id = Type.Integer({ minimum: 1, maximum: MAX_ID, description: "Service-assigned id" });

/**
 * The largest value an int64 field holds: 2^53 - 1. The kernel's IOVAs and
 * lengths are 64-bit (unsigned long), but a JSON number, a JS number and the
 * database's read path are exact only up to 2^53 - 1; larger values are
 * refused at the schema (a 400 naming the field), never rounded.
 */
export const MAX_UINT64_EXACT = Number.MAX_SAFE_INTEGER;

/**
 * How a field is held in memory (column-stored kinds) and in the database.
 * - int32: an id, a reference to another row or a small integer: an Int32 cell (null: -1).
 * - int64: an unsigned 64-bit quantity (an IOVA, a length), held exactly up
 *   to MAX_UINT64_EXACT: a Float64 cell; BIGINT in the database.
 * - bool: a byte.
 * - enum: text from a small set (at most 256 distinct values): a byte holding a code.
 * - text: a string slot; a null past the last non-null costs nothing, so a
 *   mostly-null column (a group's owner) is nearly free.
 * - shared: a value object many rows share (interned, see intern.ts); JSON text in the database.
 */
export type StorageKind = "int32" | "int64" | "bool" | "enum" | "text" | "shared";

export interface FieldSpec {
  readonly name: string;
  readonly storage: StorageKind;
  readonly nullable: boolean;
  /** A row built without this field gets `default` (see Entity.make): nullable fields default to null. */
  readonly hasDefault: boolean;
  readonly default: unknown;
  /** No two rows hold the same value: the model keeps a value -> id map. */
  readonly unique: boolean;
  /** An enum's known values, coded first, in this order. */
  readonly values: readonly string[];
}

const STORAGE = Symbol("storage");
type Annotation = Omit<FieldSpec, "name">;

/** Phantom marker on the type of a field that has a default: Entity.make may omit it. */
declare const HAS_DEFAULT: unique symbol;
export type Defaulted<T extends TSchema> = T & { readonly [HAS_DEFAULT]: true };

function annotate<T extends TSchema>(schema: T, storage: StorageKind, o: {
  nullable?: boolean; default?: unknown; hasDefault?: boolean; unique?: boolean; values?: readonly string[];
} = {}): T {
  const nullable = o.nullable ?? false;
  const hasDefault = o.hasDefault ?? nullable;
  const annotation: Annotation = {
    storage, nullable, hasDefault, default: hasDefault ? (o.default ?? null) : undefined,
    unique: o.unique ?? false, values: o.values ?? [],
  };
  return { ...schema, [STORAGE]: annotation };
}

const orNull = <T extends TSchema>(schema: T, description?: string) =>
  Type.Union([schema, Type.Null()], description === undefined ? {} : { description });

interface Described { readonly description?: string }

// ---- field kinds --------------------------------------------------------------

/** The row's own id. */
export function id(): TInteger {
  return annotate(Id, "int32");
}

/** The id of another row. */
export function ref(o: Described & { nullable: true }): Defaulted<TUnion<[TInteger, TNull]>>;
export function ref(o?: Described): TInteger;
export function ref(o: Described & { nullable?: boolean } = {}): TSchema {
  return o.nullable ? annotate(orNull(Id, o.description), "int32", { nullable: true })
    : annotate(o.description === undefined ? Id : Type.Integer({ ...Id, description: o.description }), "int32");
}

export function int(o: Described & { default: number }): Defaulted<TInteger>;
export function int(o?: Described): TInteger;
export function int(o: Described & { default?: number } = {}): TSchema {
  const schema = o.description === undefined ? Type.Integer() : Type.Integer({ description: o.description });
  return annotate(schema, "int32", { hasDefault: o.default !== undefined, default: o.default });
}

/**
 * A 64-bit unsigned quantity (an address, a length), 0 to MAX_UINT64_EXACT
 * (`minimum` raises the floor).
 */
export function int64(o: Described & { minimum?: number } = {}): TInteger {
  const schema = Type.Integer({
    minimum: o.minimum ?? 0, maximum: MAX_UINT64_EXACT, ...(o.description === undefined ? {} : { description: o.description }),
  });
  return annotate(schema, "int64");
}

export function bool(o: Described & { default: boolean }): Defaulted<TBoolean>;
export function bool(o?: Described): TBoolean;
export function bool(o: Described & { default?: boolean } = {}): TSchema {
  const schema = o.description === undefined ? Type.Boolean() : Type.Boolean({ description: o.description });
  return annotate(schema, "bool", { hasDefault: o.default !== undefined, default: o.default });
}

export function text(o: Described & { nullable: true }): Defaulted<TUnion<[TString, TNull]>>;
export function text(o: Described & { default: string }): Defaulted<TString>;
export function text(o?: Described & { unique?: boolean }): TString;
export function text(o: Described & { nullable?: boolean; unique?: boolean; default?: string } = {}): TSchema {
  if (o.nullable) return annotate(orNull(Type.String(), o.description), "text", { nullable: true });
  const schema = o.description === undefined ? Type.String() : Type.String({ description: o.description });
  return annotate(schema, "text", { unique: o.unique ?? false, hasDefault: o.default !== undefined, default: o.default });
}

/**
 * Text from a small set, stored as a byte. With `values` the type is their
 * union; without, any string (the set is open: drivers register theirs).
 * Storage holds any text, so a value outside `values` still reads back as it was.
 */
export function enumText<const V extends readonly string[]>(values: V, o: Described & { default: V[number] }): Defaulted<TUnsafe<V[number]>>;
export function enumText<const V extends readonly string[]>(values: V): TUnsafe<V[number]>;
export function enumText(): TString;
export function enumText(values?: readonly string[], o: Described & { default?: string } = {}): TSchema {
  if (values === undefined) return annotate(Type.String(), "enum");
  const schema = Type.Unsafe<string>({ type: "string", enum: [...values], ...(o.description === undefined ? {} : { description: o.description }) });
  return annotate(schema, "enum", { values, hasDefault: o.default !== undefined, default: o.default });
}

/** A value object many rows share: interned in memory, JSON in the database. */
export function shared<T extends TObject>(schema: T): T {
  return annotate(schema, "shared");
}

// ---- entities -------------------------------------------------------------------

/** Deeply readonly: records and the value objects they share are never changed in place. */
export type Immutable<T> = T extends readonly (infer U)[] ? readonly Immutable<U>[]
  : T extends object ? { readonly [K in keyof T]: Immutable<T[K]> } : T;

type DefaultedKeys<P extends TProperties> = { [K in keyof P]: P[K] extends { readonly [HAS_DEFAULT]: true } ? K : never }[keyof P];

/** What Entity.make needs: every field, except that fields with a default may be left out. */
export type MakeInput<P extends TProperties> =
  & { readonly [K in Exclude<keyof P, DefaultedKeys<P>>]: Immutable<Static<P[K]>> }
  & { readonly [K in DefaultedKeys<P>]?: Immutable<Static<P[K]>> };

export interface Entity<P extends TProperties> {
  /** The database table. */
  readonly table: string;
  /**
   * "columns": the kind grows with the machine (groups, devices, domains) and
   * is stored column-wise (columns.ts); "objects": few rows, one object each.
   */
  readonly storage: "columns" | "objects";
  readonly schema: TObject<P>;
  /** The fields in declared order, `id` first: the order of a record's keys. */
  readonly fields: readonly FieldSpec[];
  /** A record with its fields in declared order, defaults filled in. */
  make(input: MakeInput<P>): Immutable<Static<TObject<P>>>;
}

/** The record type an entity declares. */
export type RecordOf<E> = E extends Entity<infer P> ? Immutable<Static<TObject<P>>> : never;

export function entity<P extends TProperties & { id: TInteger }>(
  table: string, storage: "columns" | "objects", properties: P,
): Entity<P> {
  const fields: FieldSpec[] = Object.entries(properties).map(([name, schema]) => {
    const annotation = (schema as { [STORAGE]?: Annotation })[STORAGE];
    if (annotation === undefined) throw new TypeError(`${table}.${name} has no storage: declare it with a field kind of declare.ts`);
    return { name, ...annotation };
  });
  if (fields[0]?.name !== "id") throw new TypeError(`${table}: the first field must be id`);
  const make = (input: Record<string, unknown>) => {
    const row: Record<string, unknown> = {};
    for (const f of fields) {
      const value = input[f.name];
      if (value !== undefined) row[f.name] = value;
      else if (f.hasDefault) row[f.name] = f.default;
      else throw new TypeError(`${table}.${f.name} is required`);
    }
    return row;
  };
  return { table, storage, schema: Type.Object(properties), fields, make: make as Entity<P>["make"] };
}
