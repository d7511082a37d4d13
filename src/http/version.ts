// Resource versions: a short strong digest of a resource's representation.
//
// A version covers exactly the fields a client reads (everything in the
// representation but `version` itself), so it changes whenever the
// representation does and only then: a group's version changes with its
// devices, a domain's with its attached-group count, a container's with its
// domains. Being a digest of state rather than a counter it needs no schema
// change, survives restarts, and returns to an earlier value if the state
// does (harmless for If-Match: the state is then what the client last saw).
import crypto from "node:crypto";

/**
 * JSON with object keys sorted at every level, so equal state digests equally whatever order it was built in.
 * Every answer that carries a version runs this, several times for a move
 * (group and domain): plain loops and string appends, no intermediate arrays
 * of entries.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  // The default sort orders by UTF-16 code units, as `<` does.
  const keys = Object.keys(record).sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    const v = record[key];
    if (v === undefined) continue;
    out += `${first ? "" : ","}${JSON.stringify(key)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * sha256 of a text as base64url. crypto.hash (Node 20.12+) digests in one
 * call, without building a Hash object per answer; older Node 20 releases
 * get the same digest through createHash.
 */
const oneShot: typeof crypto.hash | undefined = crypto.hash;
const sha256 = oneShot
  ? (text: string) => oneShot("sha256", text, "base64url")
  : (text: string) => crypto.createHash("sha256").update(text).digest("base64url");

/**
 * base64url of the first 12 bytes of sha256: 16 characters, valid inside a
 * quoted ETag (the first 16 characters of the whole digest's base64url are
 * exactly its first 12 bytes).
 */
export function versionOf(state: object): string {
  return sha256(canonicalJson(state)).slice(0, 16);
}

export function withVersion<T extends object>(state: T): T & { version: string } {
  return { ...state, version: versionOf(state) };
}

/** canonicalJson of a value inside a record: the common scalars without a JSON.stringify call. */
function canonicalValue(value: unknown): string {
  switch (typeof value) {
    case "number": return Number.isFinite(value) ? String(value) : "null";
    case "boolean": return value ? "true" : "false";
    case "string": return JSON.stringify(value);
    default: return canonicalJson(value);
  }
}

/**
 * withVersion for the records of one presenter, which all have the same
 * keys: the sorted keys and their JSON text are kept from one record to the
 * next instead of being listed, sorted and quoted for every answer. A record
 * with other keys recomputes them, so the version is always versionOf's.
 */
export function versionerOf(): <T extends object>(state: T) => T & { version: string } {
  let keys: string[] = [];
  let prefixes: string[] = [];
  const sameKeys = (record: Record<string, unknown>): boolean => {
    let count = 0;
    for (const key in record) if (Object.hasOwn(record, key)) count++;
    if (count !== keys.length) return false;
    for (const key of keys) if (!Object.hasOwn(record, key)) return false;
    return true;
  };
  return <T extends object>(state: T) => {
    const record = state as Record<string, unknown>;
    if (!sameKeys(record)) {
      keys = Object.keys(record).sort();
      prefixes = keys.map((key) => `${JSON.stringify(key)}:`);
    }
    let text = "{";
    for (let i = 0; i < keys.length; i++) {
      const value = record[keys[i]!];
      if (value === undefined) continue;
      text += `${text.length === 1 ? "" : ","}${prefixes[i]!}${canonicalValue(value)}`;
    }
    return { ...state, version: sha256(`${text}}`).slice(0, 16) };
  };
}

/** The strong ETag of a version. */
export function etagOf(version: string): string {
  return `"${version}"`;
}
