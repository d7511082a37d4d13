// Property tests at the edge: random and malformed params, query strings,
// bodies and headers sent to every route the app registered. Whatever is
// sent, the answer is never a server failure (500, 503: only the contract's
// deliberate 501 and 507), every 4xx and 5xx is a complete problem document,
// and a request refused before or by validation leaves the state as it was.
//
// The seed is printed; FUZZ_SEED=<n> replays a run.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ERRNO_VALUES, isErrnoName } from "../../src/core/errno.js";
import { routesOf, type RouteEntry } from "../../src/http/edge.js";
import { clientForFile } from "../helpers/http.js";

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED})`);

/** Requests per route (about 45 routes), and the time all of them may take together. */
const RUNS_PER_ROUTE = 8;
const BUDGET_MS = 12_000;
/**
 * The 5xx answers the contract defines (a method or feature the service does
 * not provide, an exhausted ID space): deliberate answers, not failures.
 * Anything else at 5xx (500 internal-error, 503 store-unavailable) is a bug.
 */
const CONTRACT_5XX: Readonly<Record<number, readonly string[]>> = {
  501: ["method-not-implemented", "unsupported"],
  507: ["domain-ids-exhausted", "asids-exhausted", "vmids-exhausted", "context-banks-exhausted", "domain-id-pool-exhausted", "injected-fault"],
};
/** Statuses that mean "refused before anything ran": the state must not move. */
const REFUSED = new Set([400, 404, 405, 413, 414, 415, 501]);

const c = clientForFile();

// ---- what to send -----------------------------------------------------------

type Snapshot = { lists: string; objects: string; written: number; lastSeq: number };
type Schema = {
  type?: string; properties?: Record<string, Schema>; items?: Schema; anyOf?: Schema[]; enum?: unknown[];
  minimum?: number; maximum?: number; required?: string[];
};

/** Strings a database or a parser might choke on: lone surrogates and NUL first. */
const STORAGE_POISON = ["\ud800", "\udfff", "a\ud83d", "\ude00b", "x\ud800\ud800", "\u0000", "x\u0000y"];
const nastyString = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...STORAGE_POISON) },
  { weight: 1, arbitrary: fc.constantFrom("\u{1F680}", "", " ", "%00", "\\", '"', "\u2028", "null") },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 5 }).map((x) => x.repeat(60)) },
);

/** Numbers around every boundary a schema or a storage type has, and things that are not integers. */
function nastyNumber(schema: Schema): fc.Arbitrary<unknown> {
  const { minimum = 0, maximum = 2 ** 31 } = schema;
  return fc.oneof(
    fc.constantFrom(minimum - 1, maximum + 1, -1, 1.5, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 1e300, -1e300, Number.MAX_VALUE),
    fc.double(),
    fc.constantFrom("1", "0x1", true, null, [], {}),
  );
}

/** Anything of the wrong kind for `schema`. */
function poison(schema: Schema): fc.Arbitrary<unknown> {
  switch (schema.type) {
    case "integer":
    case "number": return nastyNumber(schema);
    case "string": return nastyString;
    case "boolean": return fc.constantFrom("true", 0, 1, null);
    default: return fc.oneof(nastyString, fc.jsonValue({ maxDepth: 2 }));
  }
}

/** A value `schema` accepts: ids and other integers near their minimum (so that some exist), short names. */
function valid(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((x) => shaped(x, depth + 1)));
  switch (schema.type) {
    case "integer":
    case "number": {
      const { minimum = 0, maximum = 2 ** 31 } = schema;
      return fc.oneof(fc.integer({ min: minimum, max: Math.min(maximum, minimum + 6) }), fc.constantFrom(minimum, maximum));
    }
    case "boolean": return fc.boolean();
    case "string": return schema.enum ? fc.constantFrom(...schema.enum) : fc.stringMatching(/^[a-z][a-z0-9:.-]{0,15}$/);
    case "null": return fc.constant(null);
    case "array": return fc.array(shaped(schema.items, depth + 1), { minLength: 1, maxLength: 3 });
    case "object": {
      const required = new Set(schema.required ?? []);
      const fields = Object.entries(schema.properties ?? {}).map(([name, x]) =>
        required.has(name) ? shaped(x, depth + 1).map((v) => [name, v] as const) : fc.option(shaped(x, depth + 1).map((v) => [name, v] as const), { nil: undefined }));
      const extra = fc.option(fc.tuple(nastyString, fc.jsonValue({ maxDepth: 1 })), { nil: undefined, freq: 12 });
      return fc.tuple(fc.tuple(...fields), extra).map(([present, more]) => {
        const out: Record<string, unknown> = {};
        for (const entry of present) if (entry) out[entry[0]] = entry[1];
        if (more) out[more[0]] = more[1];
        return out;
      });
    }
    default: return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A value `schema` accepts, or now and then not (deep inside). */
function shaped(schema: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return fc.jsonValue({ maxDepth: 2 });
  return fc.oneof({ weight: 9, arbitrary: valid(schema, depth) }, { weight: 1, arbitrary: poison(schema) });
}

/** Paths to every value inside `value` (keys and indexes), the root excluded. */
function leaves(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== "object") return at.length > 0 ? [at] : [];
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return [...(at.length > 0 ? [at] : []), ...entries.flatMap(([k, v]) => leaves(v, [...at, k]))];
}

/**
 * A body valid for `schema` but for one value: what reaches furthest (a lone
 * surrogate in an otherwise perfect create reaches the database).
 */
function oneWrong(schema: Schema | undefined): fc.Arbitrary<unknown> {
  const wrong = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...STORAGE_POISON) },
    { weight: 1, arbitrary: nastyNumber({}) },
    { weight: 1, arbitrary: nastyString },
  );
  return fc.tuple(shaped(schema), fc.nat(), wrong).map(([body, pick, bad]) => {
    const paths = leaves(body);
    if (paths.length === 0) return body;
    const path = paths[pick % paths.length]!;
    let parent = body as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    parent[path[path.length - 1]!] = bad;
    return body;
  });
}

/** A body: schema-shaped, any JSON, or text that is not JSON at all. */
function body(route: RouteEntry): fc.Arbitrary<string | undefined> {
  const schema = route.schema?.body as Schema | undefined;
  return fc.oneof(
    { weight: 4, arbitrary: oneWrong(schema).map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: shaped(schema).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom('{"a":', "[", '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', "1e999", '"\\ud800"', "{}", "null", "[]") },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

/** Percent-encode `text` as UTF-8; a lone surrogate as the bytes its code unit would have (never valid UTF-8). */
function encode(text: string): string {
  let out = "";
  for (const unit of text) {
    const code = unit.codePointAt(0)!;
    if (/^[A-Za-z0-9._~-]$/.test(unit)) out += unit;
    else if (code >= 0xd800 && code <= 0xdfff) out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map(hex).join("");
    else out += [...Buffer.from(unit, "utf8")].map(hex).join("");
  }
  return out;
}
const hex = (byte: number) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;

/** A path or query value: a real id, another spelling of a number, or anything. */
const urlValue = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 6 }).map(String) },
  { weight: 3, arbitrary: fc.constantFrom("0", "-1", "0x1", "1e0", "+1", "01", " 1", "1 ", "1.0", "2147483648", "9007199254740993", "9223372036854775807", "1e300", "Infinity", "NaN", "", "\u0661", "1\u0000") },
  { weight: 2, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 400 }).map((n) => "9".repeat(n)) },
).map(encode);

/** Percent sequences that are not valid, inserted raw. */
const rawUrlGarbage = fc.constantFrom("%", "%ZZ", "%E0%A4%A", "%ED%A0%80", "%C0%AF", "%FF", "%2F", "..", "%3F");

function path(route: RouteEntry): fc.Arbitrary<string> {
  const segments = route.url.split("/").map((s) => (s.startsWith(":") ? fc.oneof({ weight: 5, arbitrary: urlValue }, { weight: 1, arbitrary: rawUrlGarbage }) : fc.constant(s)));
  return fc.tuple(...segments).map((parts) => parts.join("/"));
}

function query(route: RouteEntry): fc.Arbitrary<string> {
  const known = Object.keys((route.schema?.querystring as Schema | undefined)?.properties ?? {});
  const key = known.length > 0
    ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: nastyString.map(encode) }, { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "after[]", "a.b") })
    : fc.oneof(nastyString.map(encode), fc.constantFrom("__proto__", "limit"));
  const pair = fc.tuple(key, fc.oneof({ weight: 5, arbitrary: urlValue }, { weight: 1, arbitrary: rawUrlGarbage })).map(([k, v]) => `${k}=${v}`);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant("") },
    { weight: 4, arbitrary: fc.array(pair, { minLength: 1, maxLength: 4 }).map((pairs) => `?${pairs.join("&")}`) },
    { weight: 1, arbitrary: fc.constantFrom("?", "?&", "?=", "?a", "?after", "?limit=1&limit=2", "?%", "?a=%ZZ") },
  );
}

const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);
const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant("application/json") },
  { weight: 3, arbitrary: fc.constantFrom("application/json; charset=utf-8", "APPLICATION/JSON", "application/json;charset=latin1", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/problem+json", "", "*/*", ";") },
  { weight: 1, arbitrary: headerValue },
);
const headers = fc.tuple(
  contentType,
  fc.option(fc.tuple(fc.constantFrom("x-request-id", "accept", "accept-version", "x-forwarded-for", "authorization", "cookie", "x-owner"), headerValue), { nil: undefined }),
).map(([type, extra]) => ({ "content-type": type, ...(extra ? { [extra[0]]: extra[1] } : {}) }));

const METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"] as const;

function request(route: RouteEntry) {
  return fc.record({
    method: fc.oneof({ weight: 8, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    url: fc.tuple(path(route), query(route)).map(([p, q]) => p + q),
    body: body(route),
    headers,
  });
}

// ---- what must hold ---------------------------------------------------------

let lastSeq = 0;
/**
 * Everything a refused request must leave as it was: every list as served
 * (compared as text: cheap enough to take after every refusal), every
 * count, the event log's end.
 */
async function snapshot(): Promise<Snapshot> {
  const reads = ["units", "groups", "devices", "domains", "containers", "faults"].map((kind) => c.get(`/v1/${kind}?limit=1000`));
  const [stats, events, ...lists] = await Promise.all([
    c.read<{ items: number; objects: Record<string, number> }>("/v1/stats"),
    c.read<{ last: number }>(`/v1/events?after=${lastSeq}&limit=1000`),
    ...reads,
  ]);
  lastSeq = events.last;
  // written: operations the store wrote a change (or an event) for.
  return { lists: lists.map((l) => l.text).join("\n"), objects: JSON.stringify(stats.objects), written: stats.items, lastSeq };
}

function expectProblemDocument(status: number, contentType: unknown, text: string, method: string): void {
  expect(String(contentType)).toMatch(/^application\/problem\+json/);
  if (method === "HEAD") return;
  const doc = JSON.parse(text) as Record<string, unknown>;
  expect(doc).toMatchObject({
    type: expect.stringMatching(/^urn:iommu-arbiter:problem:[a-z-]+$/),
    title: expect.any(String), status, detail: expect.any(String),
    errno: expect.any(String), code: expect.any(Number), soft: expect.any(Boolean), reason: expect.any(String),
  });
  expect(isErrnoName(doc.errno as string)).toBe(true);
  expect(doc.code).toBe(-ERRNO_VALUES[doc.errno as keyof typeof ERRNO_VALUES]);
  expect(doc.type).toBe(`urn:iommu-arbiter:problem:${doc.reason as string}`);
}

describe("fuzzing every route", () => {
  beforeAll(async () => {
    // A few of everything, so that some generated ids exist.
    for (let i = 0; i < 2; i++) {
      const unit = await c.unit({ driver: i === 0 ? "intel-vtd" : "mock" });
      await c.groupWith(unit.id, [{}, {}]);
      await c.domain({ unitId: unit.id });
      await c.container();
      await c.fault({ unitId: unit.id, errno: "EIO", count: 1000 });
    }
  });

  it(`no server failure; every 4xx and 5xx a problem; refusals change nothing (seed ${SEED})`, async () => {
    const routes = routesOf(c.app);
    expect(routes.length).toBeGreaterThan(30);
    const statuses = new Map<number, number>();
    let known: Snapshot | null = null;
    const started = Date.now();
    let sent = 0;
    for (const [index, route] of routes.entries()) {
      // A loaded machine runs fewer requests per route (at least one), not for
      // longer: each route gets its share of what is left of the budget, at
      // the pace measured so far. (fast-check's interruptAfterTimeLimit would
      // abandon a request in flight, whose effects would then land during the
      // next route's checks.)
      const elapsed = Date.now() - started;
      const pace = sent > 0 ? elapsed / sent : 0;
      const share = (BUDGET_MS - elapsed) / (routes.length - index);
      const runs = pace > 0 ? Math.max(1, Math.min(RUNS_PER_ROUTE, Math.floor(share / pace))) : RUNS_PER_ROUTE;
      sent += runs;
      await fc.assert(fc.asyncProperty(request(route), async (req) => {
        const before = known ?? await snapshot();
        const res = await c.app.inject({
          method: req.method, url: req.url, headers: req.headers,
          ...(req.body !== undefined ? { payload: req.body } : {}),
        });
        const where = `${route.method} ${route.url}: ${req.method} ${req.url} ${JSON.stringify(req.headers)} ${req.body ?? ""} → ${res.statusCode} ${res.body}`.slice(0, 2000);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500) {
          expect(Object.keys(CONTRACT_5XX), where).toContain(String(res.statusCode));
          // HEAD answers have no body to read the reason from.
          if (req.method !== "HEAD") expect(CONTRACT_5XX[res.statusCode], where).toContain((JSON.parse(res.body) as { reason: string }).reason);
        }
        if (res.statusCode >= 400) expectProblemDocument(res.statusCode, res.headers["content-type"], res.body, req.method);
        if (REFUSED.has(res.statusCode)) {
          const after = await snapshot();
          // A move naming a missing object reached the core, which logs every
          // attempted move (the event log is an audit trail): objects are
          // unchanged, the log has one more attempt (and the store one more write).
          const logged = res.statusCode === 404 && (JSON.parse(res.body || "{}") as { reason?: string }).reason !== "no-such-route";
          if (logged) expect({ lists: after.lists, objects: after.objects }, where).toEqual({ lists: before.lists, objects: before.objects });
          else expect(after, where).toEqual(before);
          known = after;
        } else {
          known = null;
        }
      }), { seed: SEED + index, numRuns: runs, endOnFailure: true });
    }
    // The generators reach past validation as well as into it.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
    console.log(`fuzz statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  });
});
