// Resource versions (src/http/version.ts): the canonical text a version is a
// digest of, and the digest's format. Versions are compared with the ETags
// clients kept and idempotency fingerprints with the ones stored in the
// database, so both must stay the same across releases, not just be stable
// within one process.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, etagOf, versionerOf, versionOf, withVersion } from "../../src/http/version.js";

/** The definition, written the slow and obvious way. */
function reference(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(",")}}`;
}

describe("canonicalJson", () => {
  it.each([
    [null, "null"],
    [undefined, "null"],
    [7, "7"],
    ["a\"b", '"a\\"b"'],
    [[], "[]"],
    [[1, undefined, "x"], '[1,null,"x"]'],
    [{}, "{}"],
    [{ b: 1, a: 2 }, '{"a":2,"b":1}'],
    [{ z: undefined, a: null }, '{"a":null}'],
    [{ B: 1, a: 2, "é": 3, "\u{1F600}": 4 }, '{"B":1,"a":2,"é":3,"\u{1F600}":4}'],
    [{ outer: { y: [{ d: 1, c: 2 }], x: true } }, '{"outer":{"x":true,"y":[{"c":2,"d":1}]}}'],
  ])("%j -> %s", (value, text) => {
    expect(canonicalJson(value)).toBe(text);
  });

  it("equals the definition for any JSON value, whatever the key order", () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      expect(canonicalJson(value)).toBe(reference(value));
    }));
  });
});

describe("versionOf", () => {
  const group = { id: 12, name: "g12", unitId: 1, domainId: 5, defaultDomainId: 5, blockingDomainId: null, owner: null, deviceIds: [40] };

  it("is base64url of the first 12 bytes of sha256 of the canonical text: 16 characters", () => {
    const expected = createHash("sha256").update(reference(group)).digest().subarray(0, 12).toString("base64url");
    expect(versionOf(group)).toBe(expected);
    expect(versionOf(group)).toMatch(/^[A-Za-z0-9_-]{16}$/);
  });

  it("does not depend on key order, and changes with any field", () => {
    const shuffled = Object.fromEntries(Object.entries(group).reverse());
    expect(versionOf(shuffled)).toBe(versionOf(group));
    expect(versionOf({ ...group, domainId: 6 })).not.toBe(versionOf(group));
    expect(versionOf({ ...group, deviceIds: [40, 41] })).not.toBe(versionOf(group));
  });

  it("withVersion adds the version of the state without it, and etagOf quotes it", () => {
    const v = withVersion(group);
    expect(v).toEqual({ ...group, version: versionOf(group) });
    expect(etagOf(v.version)).toBe(`"${v.version}"`);
  });
});

describe("versionerOf", () => {
  it.each([
    ["the same shape again", [{ id: 1, name: "a" }, { id: 2, name: "b" }]],
    ["a key more", [{ id: 1 }, { id: 1, name: "a" }]],
    ["a key less", [{ id: 1, name: "a" }, { id: 1 }]],
    ["as many keys, another name", [{ id: 1, name: "a" }, { id: 1, owner: "a" }]],
    ["the same keys in another order", [{ id: 1, name: "a" }, { name: "a", id: 1 }]],
    ["undefined and nested values", [{ id: 1, gone: undefined, config: { b: [1, { d: 2, c: 3 }], a: null } }, { id: 2, gone: 5, config: {} }]],
    ["non-finite numbers and booleans", [{ n: Number.NaN, m: -0, t: true, f: false }]],
  ] as const)("gives versionOf's version: %s", (_what, records) => {
    const version = versionerOf();
    for (const r of records) expect(version(r)).toEqual({ ...r, version: versionOf(r) });
  });

  it("gives versionOf's version for any sequence of records, whatever their shapes", () => {
    const record = fc.dictionary(fc.constantFrom("id", "name", "owner", "unitId", "config", "b", "a"), fc.jsonValue(), { maxKeys: 6 });
    fc.assert(fc.property(fc.array(record, { maxLength: 8 }), (records) => {
      const version = versionerOf();
      for (const r of records) expect(version(r).version).toBe(versionOf(r));
    }));
  });
});
