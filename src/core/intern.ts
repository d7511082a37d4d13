// Value objects that thousands of records share (a unit's domain
// configuration, the usual device flags) are stored once. Records are
// immutable, so sharing is safe; the table is bounded so that a client
// sending endless distinct values cannot grow it without limit.
const MAX_ENTRIES = 4096;
const table = new Map<string, object>();

export function interned<T extends object>(value: T): T {
  const key = JSON.stringify(value);
  const hit = table.get(key);
  if (hit) return hit as T;
  const frozen = Object.freeze(value);
  if (table.size < MAX_ENTRIES) table.set(key, frozen);
  return frozen;
}
