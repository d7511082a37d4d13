// Resource versions: a short strong digest of a resource's representation.
//
// A version covers exactly the fields a client reads (everything in the
// representation but `version` itself), so it changes whenever the
// representation does and only then: a group's version changes with its
// devices, a domain's with its attached-group count, a container's with its
// domains. Being a digest of state rather than a counter it needs no schema
// change, survives restarts, and returns to an earlier value if the state
// does (harmless for If-Match: the state is then what the client last saw).
import { createHash } from "node:crypto";

/** JSON with object keys sorted at every level, so equal state digests equally whatever order it was built in. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** base64url of the first 12 bytes of sha256: 16 characters, valid inside a quoted ETag. */
export function versionOf(state: object): string {
  return createHash("sha256").update(canonicalJson(state)).digest().subarray(0, 12).toString("base64url");
}

export function withVersion<T extends object>(state: T): T & { version: string } {
  return { ...state, version: versionOf(state) };
}

/** The strong ETag of a version. */
export function etagOf(version: string): string {
  return `"${version}"`;
}
