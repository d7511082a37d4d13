// Row storage for the model's tables, by id (dense positive integers, never
// reused). The few-row kinds keep one immutable object per row; the kinds
// that grow with the machine (groups, devices, domains: declared with
// "columns" storage) are stored column-wise, laid out from their declared
// fields, and a record is rebuilt on every read.
//
// Why columns: Node runs V8 without pointer compression, so a record object
// costs 24 bytes of header plus 8 per field and its array slot 8 more; as
// columns a reference is a 4-byte Int32 cell outside the V8 heap, a boolean or
// an enum one byte, and a mostly-null string nothing past its last value.
// The price is a read that builds an object.
//
// Reads return a fresh object each call, with the fields in declared order
// and the same interned shared-object references that were stored: records
// are values, nothing compares whole records by identity across two reads.
import type { FieldSpec } from "./declare.js";

/** A table: the row stored under each id. */
export interface Rows<T> {
  /** One past the highest id holding a row; all() walks [0, end) and reads it live. */
  readonly end: number;
  has(id: number): boolean;
  get(id: number): T | undefined;
  /** One field of a row without building the record (undefined: no such row). */
  field<F extends keyof T>(id: number, name: F): T[F] | undefined;
  /** Stores `row` under `id` (its own id). */
  set(id: number, row: T): void;
  delete(id: number): void;
}

/**
 * Empties slot i of an id-indexed array, and drops trailing empty slots so that
 * an array whose highest ids went away (faults cleared) gives its memory back.
 */
export function clearSlot(arr: unknown[], i: number): void {
  arr[i] = undefined;
  if (arr.length === 0 || i !== arr.length - 1) return;
  let n = i;
  while (n > 0 && arr[n - 1] === undefined) n--;
  arr.length = n;
}

/** One object per row, in an array indexed by id (units, containers, faults: few). */
export class ObjectRows<T> implements Rows<T> {
  private readonly rows: (T | undefined)[] = [];
  get end(): number {
    return this.rows.length;
  }
  has(id: number): boolean {
    return this.rows[id] !== undefined;
  }
  get(id: number): T | undefined {
    return this.rows[id];
  }
  field<F extends keyof T>(id: number, name: F): T[F] | undefined {
    return this.rows[id]?.[name];
  }
  set(id: number, row: T): void {
    this.rows[id] = row;
  }
  delete(id: number): void {
    clearSlot(this.rows, id);
  }
}

/** The null of an int32 cell (ids are positive; 0 is left valid all the same). */
const NONE = -1;

/** One field of every row, indexed by id. */
interface Column {
  get(id: number): unknown;
  set(id: number, value: unknown): void;
  /** Drops what the row referenced (strings, shared objects). */
  clear(id: number): void;
  /** Makes room for ids below `capacity`, keeping the values. */
  grow(capacity: number): void;
}

/** A typed column of `capacity` cells holding the same values (the rest zero). */
function grown<A extends Int32Array<ArrayBuffer> | Float64Array<ArrayBuffer> | Uint8Array<ArrayBuffer>>(cells: A, capacity: number): A {
  const next = new (cells.constructor as new (n: number) => A)(capacity);
  next.set(cells);
  return next;
}

class Int32Column implements Column {
  private cells = new Int32Array(0);
  constructor(private readonly nullable: boolean) {}
  get(id: number): number | null {
    const cell = this.cells[id]!;
    return this.nullable && cell === NONE ? null : cell;
  }
  set(id: number, value: unknown): void {
    this.cells[id] = value === null ? NONE : (value as number);
  }
  clear(): void {}
  grow(capacity: number): void {
    this.cells = grown(this.cells, capacity);
  }
}

/** A 64-bit quantity held exactly up to 2^53 - 1: a Float64 cell (not nullable). */
class Float64Column implements Column {
  private cells = new Float64Array(0);
  get(id: number): number {
    return this.cells[id]!;
  }
  set(id: number, value: unknown): void {
    this.cells[id] = value as number;
  }
  clear(): void {}
  grow(capacity: number): void {
    this.cells = grown(this.cells, capacity);
  }
}

class BoolColumn implements Column {
  private cells = new Uint8Array(0);
  get(id: number): boolean {
    return this.cells[id] === 1;
  }
  set(id: number, value: unknown): void {
    this.cells[id] = value ? 1 : 0;
  }
  clear(): void {}
  grow(capacity: number): void {
    this.cells = grown(this.cells, capacity);
  }
}

/**
 * Text from a small set, as a byte: codes index the declared values first. A
 * value outside them (storage holds any text) is given the next code, so it
 * reads back unchanged.
 */
class EnumColumn implements Column {
  private cells = new Uint8Array(0);
  private readonly values: string[];
  private readonly codes = new Map<string, number>();
  constructor(known: readonly string[]) {
    this.values = [...known];
    this.values.forEach((v, i) => this.codes.set(v, i));
  }
  get(id: number): string {
    return this.values[this.cells[id]!]!;
  }
  set(id: number, value: unknown): void {
    this.cells[id] = this.code(value as string);
  }
  clear(): void {}
  grow(capacity: number): void {
    this.cells = grown(this.cells, capacity);
  }
  private code(value: string): number {
    let code = this.codes.get(value);
    if (code === undefined) {
      code = this.values.length;
      if (code > 255) throw new RangeError(`more than 256 distinct values, cannot store ${JSON.stringify(value)}`);
      this.values.push(value);
      this.codes.set(value, code);
    }
    return code;
  }
}

/**
 * A slot per row for strings and shared objects. A null past the array's end
 * does not lengthen it, so a mostly-null column (a group's owner, most
 * domains' names) costs slots only up to its last non-null value.
 */
class SlotColumn implements Column {
  private readonly slots: unknown[] = [];
  get(id: number): unknown {
    return this.slots[id] ?? null;
  }
  set(id: number, value: unknown): void {
    if (value !== null) this.slots[id] = value;
    else if (id < this.slots.length) this.slots[id] = undefined;
  }
  clear(id: number): void {
    if (id < this.slots.length) this.slots[id] = undefined;
  }
  grow(): void {}
}

function column(f: FieldSpec): Column {
  switch (f.storage) {
    case "int32": return new Int32Column(f.nullable);
    case "int64": return new Float64Column();
    case "bool": return new BoolColumn();
    case "enum": return new EnumColumn(f.values);
    case "text":
    case "shared": return new SlotColumn();
  }
}

type Reader = (id: number) => unknown;
type Writer = (id: number, row: unknown) => void;

/**
 * The record reader and writer of one field list, compiled once per table
 * the way fast-json-stringify compiles a serializer from a schema: an object
 * literal with fixed keys, and one call site per column, is what V8 runs
 * fastest; a loop of keyed stores over the field names builds the same
 * record several times slower. Names enter the code only as JSON string
 * literals, and columns by index.
 */
function compile(names: readonly string[], columns: readonly Column[]): { read: Reader; write: Writer } {
  const key = (name: string) => JSON.stringify(name);
  const read = `return (id) => ({ id, ${names.map((n, i) => `${key(n)}: c[${i}].get(id)`).join(", ")} });`;
  const write = `return (id, row) => { ${names.map((n, i) => `c[${i}].set(id, row[${key(n)}]);`).join(" ")} };`;
  return { read: new Function("c", read)(columns) as Reader, write: new Function("c", write)(columns) as Writer };
}

/**
 * Rows stored column-wise, one column per declared field but the id, grown
 * by doubling as ids grow, with a presence byte per id.
 */
export class ColumnRows<T extends { id: number }> implements Rows<T> {
  end = 0;
  private capacity = 0;
  private live = new Uint8Array(0);
  private readonly columns: readonly Column[];
  private readonly byName = new Map<string, Column>();
  private readonly read: Reader;
  private readonly write: Writer;

  /** `fields`: the entity's, in declared order, id first. */
  constructor(fields: readonly FieldSpec[]) {
    const stored = fields.slice(1);
    this.columns = stored.map(column);
    stored.forEach((f, i) => this.byName.set(f.name, this.columns[i]!));
    ({ read: this.read, write: this.write } = compile(stored.map((f) => f.name), this.columns));
  }

  has(id: number): boolean {
    return this.live[id] === 1;
  }
  get(id: number): T | undefined {
    return this.live[id] === 1 ? (this.read(id) as T) : undefined;
  }
  field<F extends keyof T>(id: number, name: F): T[F] | undefined {
    if (this.live[id] !== 1) return undefined;
    return (name === "id" ? id : this.byName.get(name as string)!.get(id)) as T[F];
  }
  set(id: number, row: T): void {
    if ((id >>> 0) !== id || id >= this.capacity) this.grow(id);
    this.write(id, row);
    this.live[id] = 1;
    if (id >= this.end) this.end = id + 1;
  }
  delete(id: number): void {
    if (this.live[id] !== 1) return;
    this.live[id] = 0;
    for (const c of this.columns) c.clear(id);
    while (this.end > 0 && this.live[this.end - 1] !== 1) this.end--;
  }

  private grow(id: number): void {
    if ((id >>> 0) !== id || id >= 2 ** 31) throw new RangeError(`row id ${id} out of range`);
    let capacity = Math.max(this.capacity, 1024);
    while (capacity <= id) capacity *= 2;
    this.live = grown(this.live, capacity);
    for (const c of this.columns) c.grow(capacity);
    this.capacity = capacity;
  }
}
