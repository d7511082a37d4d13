// The edge: whatever the database would refuse, or the parser or router
// cannot take, is refused here, alone, as a 4xx problem naming the field.
import { rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config.js";
import { MAX_URL_LENGTH, routesOf } from "../../src/http/edge.js";
import { readTopologyFile } from "../../src/server.js";
import { openApp, tempDbFile } from "../helpers/app.js";
import {
  clientForFile, expectInvalid, expectProblem, uniqueName,
  type ContainerView, type DomainView, type GroupView, type MovedView, type PageView, type Res, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();

/** POST a JSON text as is: lone surrogates and NUL travel as JSON escapes. */
async function postText(url: string, json: string): Promise<Res<unknown>> {
  const res = await c.app.inject({ method: "POST", url, payload: json, headers: { "content-type": "application/json" } });
  return { status: res.statusCode, headers: res.headers, text: res.body, body: res.body ? JSON.parse(res.body) : null };
}

/** Counts of every kind of object, and the last event: what a refused request must not change. */
async function stateNow(): Promise<{ objects: Record<string, number>; lastSeq: number }> {
  const stats = await c.read<{ objects: Record<string, number> }>("/v1/stats");
  return { objects: stats.objects, lastSeq: await c.lastSeq() };
}

let unit: UnitView;
let group: GroupView;
let domain: DomainView;
let container: ContainerView;
beforeAll(async () => {
  unit = await c.unit({ driver: "intel-vtd" });
  group = (await c.groupWith(unit.id)).group;
  domain = await c.domain({ unitId: unit.id });
  container = await c.container();
});

describe("strings the database cannot store", () => {
  const LONE = "\\ud800"; // a JSON escape: JSON.parse makes it a lone surrogate
  const NUL = "\\u0000";
  const cases = (bad: string) => [
    { where: "a unit name", url: "/v1/units", json: () => `{"name":"u${bad}","driver":"intel-vtd"}`, field: "body.name" },
    { where: "a group name", url: "/v1/groups", json: () => `{"name":"${bad}g","unitId":${unit.id}}`, field: "body.name" },
    { where: "a device name", url: "/v1/devices", json: () => `{"name":"d${bad}","groupId":${group.id}}`, field: "body.name" },
    { where: "a domain name", url: "/v1/domains", json: () => `{"name":"${bad}","type":"paging","unitId":${unit.id}}`, field: "body.name" },
    { where: "a container name", url: "/v1/containers", json: () => `{"name":"c${bad}c"}`, field: "body.name" },
    { where: "an owner on attach", url: "/v1/groups/:g/attach", json: () => `{"domainId":${domain.id},"owner":"o${bad}"}`, field: "body.owner" },
    { where: "an owner on claim", url: "/v1/groups/:g/claim", json: () => `{"owner":"${bad}"}`, field: "body.owner" },
    { where: "an owner on container attach", url: "/v1/containers/:c/attach", json: () => `{"groupId":${group.id},"owner":"${bad}"}`, field: "body.owner" },
    { where: "an enum value", url: "/v1/units", json: () => `{"name":"u-enum","driver":"intel${bad}"}`, field: "body.driver" },
    { where: "a nested field name", url: "/v1/units", json: () => `{"name":"u-key","driver":"intel-vtd","capabilities":{"a${bad}":1}}`, field: "body.capabilities.a" },
  ];
  const url = (u: string) => u.replace(":g", String(group.id)).replace(":c", String(container.id));

  it.each([
    ...cases(LONE).map((x) => ({ ...x, what: "lone surrogate" })),
    ...cases(NUL).map((x) => ({ ...x, what: "NUL" })),
    { what: "low surrogate alone", where: "a unit name", url: "/v1/units", json: () => '{"name":"\\udc00x","driver":"mock"}', field: "body.name" },
    { what: "reversed pair", where: "a unit name", url: "/v1/units", json: () => '{"name":"\\ude00\\ud83d","driver":"mock"}', field: "body.name" },
  ])("$what in $where → 400 naming $field, nothing changed", async ({ url: u, json, field }) => {
    const before = await stateNow();
    const res = await postText(url(u), json());
    const body = expectInvalid(res);
    // A poisoned field name is reported with the bad character made visible (U+FFFD), NUL as is.
    expect(body.errors!.map((e) => e.field.replace(/[\u0000\ufffd]/g, "")), res.text).toContain(field);
    expect(await stateNow()).toEqual(before);
  });

  it("a well-formed surrogate pair (an emoji) is stored and read back", async () => {
    const res = await postText("/v1/units", '{"name":"gpu-\\ud83d\\ude80","driver":"mock"}');
    expect(res.status, res.text).toBe(201);
    expect((await c.read<UnitView>(`/v1/units/${(res.body as UnitView).id}`)).name).toBe("gpu-\u{1F680}");
  });

  it.each([
    ["/v1/units/%00", "params.id"],
    ["/v1/units?after=%00", "querystring.after"],
    ["/v1/groups?unitId=1%00", "querystring.unitId"],
  ])("NUL in %s → 400 naming %s", async (u, field) => {
    expectInvalid(await c.get(u), field);
  });

  it("a topology file with a lone surrogate in a name is refused before it is applied", () => {
    const { dir, file } = tempDbFile();
    try {
      const topology = path.join(dir, "topology.json");
      writeFileSync(topology, '{"units":[{"name":"dmar\\ud800","driver":"intel-vtd"}]}');
      expect(() => readTopologyFile(topology)).toThrow(ConfigError);
      writeFileSync(topology, '{"units":[{"name":"dmar\\ud83d\\ude80","driver":"intel-vtd"}]}');
      expect(readTopologyFile(topology).units[0]!.name).toBe("dmar\u{1F680}");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("integers the database or a JS number cannot hold", () => {
  it.each([
    ["/v1/events?after=9223372036854775807", "querystring.after"],
    ["/v1/events?after=9007199254740992", "querystring.after"],
    ["/v1/events?after=1" + "0".repeat(400), "querystring.after"],
    ["/v1/events?groupId=2147483648", "querystring.groupId"],
    ["/v1/units?after=2147483648", "querystring.after"],
    ["/v1/domains?containerId=2147483648", "querystring.containerId"],
    ["/v1/groups?domainId=99999999999", "querystring.domainId"],
    ["/v1/groups/1/compatibility?after=2147483648", "querystring.after"],
    ["/v1/units/2147483648", "params.id"],
    ["/v1/units/99999999999999999999", "params.id"],
  ])("GET %s → 400 naming %s", async (u, field) => {
    expectInvalid(await c.get(u), field);
  });

  it("the largest event cursor a JS number holds exactly is accepted", async () => {
    const page = await c.read<{ items: unknown[]; next: number | null; last: number }>(`/v1/events?after=${Number.MAX_SAFE_INTEGER}`);
    expect(page).toEqual({ items: [], next: null, last: Number.MAX_SAFE_INTEGER });
  });

  it.each([
    { what: "an id beyond int32", url: "/v1/groups", json: () => '{"name":"g-big","unitId":2147483648}', field: "body.unitId" },
    { what: "an id of 1e300", url: "/v1/groups", json: () => '{"name":"g-1e300","unitId":1e300}', field: "body.unitId" },
    { what: "an id that overflows a double", url: "/v1/devices", json: () => `{"name":"d-inf","groupId":1e400}`, field: "body.groupId" },
    { what: "a domain id of 2^63", url: "/v1/groups/:g/attach", json: () => '{"domainId":9223372036854775808}', field: "body.domainId" },
    { what: "a fault count over a million", url: "/v1/faults", json: () => `{"errno":"EIO","unitId":1,"count":1000001}`, field: "body.count" },
    { what: "a page size of 2^41", url: "/v1/units", json: () => '{"name":"u-ps","driver":"mock","capabilities":{"pageSizes":[2199023255552]}}', field: "body.capabilities.pageSizes.0" },
    { what: "domain ids beyond 2^24", url: "/v1/units", json: () => '{"name":"u-ids","driver":"mock","capabilities":{"domainIds":16777217}}', field: "body.capabilities.domainIds" },
    { what: "a fractional id", url: "/v1/groups", json: () => '{"name":"g-frac","unitId":1.5}', field: "body.unitId" },
  ])("$what in a body → 400 naming $field", async ({ url: u, json, field }) => {
    const before = await stateNow();
    expectInvalid(await postText(u.replace(":g", String(group.id)), json()), field);
    expect(await stateNow()).toEqual(before);
  });

  it("every integer a route accepts (body, params, query) has a minimum and a maximum a JS number holds exactly", () => {
    const unbounded: string[] = [];
    const visit = (schema: unknown, where: string): void => {
      if (schema === null || typeof schema !== "object") return;
      const s = schema as Record<string, unknown>;
      if (s.type === "integer" || s.type === "number") {
        const { minimum, maximum } = s as { minimum?: number; maximum?: number };
        if (!Number.isSafeInteger(minimum) || !Number.isSafeInteger(maximum)) unbounded.push(where);
      }
      for (const [key, value] of Object.entries(s)) visit(value, `${where}.${key}`);
    };
    const routes = routesOf(c.app);
    expect(routes.length).toBeGreaterThan(30);
    for (const route of routes) {
      for (const part of ["body", "params", "querystring"]) visit(route.schema?.[part], `${route.method} ${route.url} ${part}`);
    }
    expect(unbounded).toEqual([]);
  });
});

describe("path ids and numeric query values are plain decimal", () => {
  const spellings = ["0x1", "1e0", "+1", "01", "%201", "1%20", "1.0", "0b1", "-0", "%D9%A1", "1_0", "Infinity", ""];

  it.each(spellings.filter((s) => s !== ""))("GET /v1/units/%s → 400 naming params.id", async (id) => {
    expectInvalid(await c.get(`/v1/units/${id}`), "params.id");
  });

  it.each(spellings.map((s) => s.replace("+", "%2B")))("GET /v1/units?limit=%s → 400 naming querystring.limit", async (limit) => {
    expectInvalid(await c.get(`/v1/units?limit=${limit}`), "querystring.limit");
  });

  it.each(["0x1", "01", "1e0"])("POST /v1/groups/%s/attach → 400 naming params.id, nothing changed", async (id) => {
    const before = await stateNow();
    expectInvalid(await c.post(`/v1/groups/${id}/attach`, { domainId: domain.id }), "params.id");
    expect(await stateNow()).toEqual(before);
  });

  it("plain decimal reaches the handlers as numbers", async () => {
    expect((await c.read<UnitView>(`/v1/units/${unit.id}`)).id).toBe(unit.id);
    const page = await c.read<PageView<UnitView>>(`/v1/units?after=0&limit=1`);
    expect(page.items).toHaveLength(1);
    expect(page.next).toBe(page.items[0]!.id);
    const moved = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/attach`, { domainId: domain.id });
    expect(moved.group).toMatchObject({ id: group.id, domainId: domain.id });
    await c.ok("POST", `/v1/groups/${group.id}/detach`, { domainId: domain.id });
  });
});

describe("answers that are problem+json though no route ran", () => {
  it("a URL longer than the limit → 414 uri-too-long", async () => {
    const res = await c.get(`/v1/units?after=1&${"x".repeat(MAX_URL_LENGTH)}=1`);
    expectProblem(res, 414, "ENAMETOOLONG", "uri-too-long");
  });

  it("a path segment longer than the router takes → 414 uri-too-long", async () => {
    expectProblem(await c.get(`/v1/units/${"1".repeat(500)}`), 414, "ENAMETOOLONG", "uri-too-long");
  });

  it("a path that is not valid percent-encoding → 400 malformed-request naming the url", async () => {
    const body = expectProblem(await c.get("/v1/units/%ZZ"), 400, "EINVAL", "malformed-request");
    expect(body.errors).toEqual([{ field: "url", message: expect.any(String) }]);
  });

  it.each([
    ["PUT", "/v1/units/1"],
    ["OPTIONS", "/v1/units"],
    ["PROPFIND", "/v1/units"],
    ["PUT", "/nowhere"],
  ])("%s %s: a method no route implements → 501 method-not-implemented (RFC 9110 §15.6.2)", async (method, url) => {
    const res = await c.app.inject({ method: method as "PUT", url });
    expectProblem({ status: res.statusCode, headers: res.headers, text: res.body, body: res.json() }, 501, "ENOSYS", "method-not-implemented");
  });

  it.each([
    ["DELETE", "/v1/units", "GET, HEAD, POST"],
    ["POST", "/v1/units/1", "DELETE, GET, HEAD, PATCH"],
    ["GET", "/v1/groups/1/attach", "POST"],
  ] as const)("%s %s: a method the path does not have → 405 with Allow: %s (RFC 9110 §15.5.6)", async (method, url, allow) => {
    const res = await c.send(method, url, method === "POST" ? {} : undefined);
    expectProblem(res, 405, "EOPNOTSUPP", "method-not-allowed");
    expect(res.headers.allow).toBe(allow);
  });

  it.each([
    ["text/plain", "hello"],
    ["application/x-www-form-urlencoded", "name=u&driver=mock"],
    ["multipart/form-data; boundary=x", "--x--"],
    ["application/xml", "<unit/>"],
  ])("a %s body → 415 unsupported-media-type naming the body", async (type, payload) => {
    const res = await c.raw("POST", "/v1/units", payload, type);
    const body = expectProblem(res, 415, "EINVAL", "unsupported-media-type");
    expect(body.errors!.map((e) => e.field)).toEqual(["body"]);
  });

  it("a body with no content type → 415", async () => {
    const res = await c.app.inject({ method: "POST", url: "/v1/units", payload: Buffer.from('{"name":"x","driver":"mock"}') });
    expect(res.statusCode).toBe(415);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  });

  it("a body over the limit → 413 body-too-large", async () => {
    const res = await c.raw("POST", "/v1/units", JSON.stringify({ name: "x".repeat(1_100_000), driver: "mock" }));
    expectProblem(res, 413, "E2BIG", "body-too-large");
  });

  it.each([
    ["truncated", '{"name": "u", "driver": '],
    ["a trailing comma", '{"name": "u", "driver": "mock",}'],
    ["a prototype key", '{"__proto__": {"admin": true}, "name": "u", "driver": "mock"}'],
    ["empty", ""],
  ])("malformed JSON (%s) → 400 naming the body", async (_what, payload) => {
    expectInvalid(await c.raw("POST", "/v1/units", payload), "body");
  });
});

describe("over a real socket: what inject cannot send", () => {
  let app: FastifyInstance;
  let dir: string;
  let port: number;
  beforeAll(async () => {
    const t = tempDbFile();
    dir = t.dir;
    app = (await openApp(t.file)).app;
    await app.listen({ port: 0, host: "127.0.0.1" });
    port = (app.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Write raw bytes, read until the server closes; split the answer. */
  function exchange(request: string): Promise<{ status: number; headers: string; body: string }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
      const chunks: Buffer[] = [];
      socket.on("data", (d: Buffer) => chunks.push(d));
      socket.on("error", reject);
      socket.on("close", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const split = text.indexOf("\r\n\r\n");
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers: text.slice(0, split), body: text.slice(split + 4) });
      });
    });
  }

  it.each([
    { what: "an unknown method", request: "FROB /v1/units HTTP/1.1\r\nHost: x\r\n\r\n", status: 501, reason: "method-not-implemented" },
    { what: "a garbage request line", request: "hello there\r\n\r\n", status: 400, reason: "malformed-request" },
    { what: "a target that is not a path", request: "GET v1/units HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, reason: "malformed-request" },
    { what: "both Content-Length and chunked", request: "POST /v1/units HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400, reason: "malformed-request" },
    { what: "an invalid header name", request: "GET /v1/units HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", status: 400, reason: "malformed-request" },
    // Node's 16 KiB header limit covers the request line: at 40 KiB the URL is over it whatever the chunking.
    { what: "a URL over the parser's limit", request: `GET /v1/units?${"a".repeat(40_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 414, reason: "uri-too-long" },
    { what: "a header over the parser's limit", request: `GET /v1/units HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`, status: 431, reason: "headers-too-large" },
    { what: "a path that is not valid percent-encoding", request: "GET /v1/units/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 400, reason: "malformed-request" },
    { what: "a method no route implements", request: "PUT /v1/units/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 501, reason: "method-not-implemented" },
  ])("$what → $status $reason as problem+json", async ({ request, status, reason }) => {
    const res = await exchange(request);
    expect(res.status, res.headers + res.body).toBe(status);
    expect(res.headers).toMatch(/^content-type: application\/problem\+json/im);
    expect(JSON.parse(res.body)).toMatchObject({ status, reason, type: `urn:iommu-arbiter:problem:${reason}`, soft: false });
  });

  it("the server still answers honest requests after all that", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/units`);
    expect(res.status).toBe(200);
  });
});

describe("a poisoned request amid honest ones", () => {
  it("fails alone: every honest create and attach in the same batches succeeds, every poisoned one is a 400", async () => {
    const u = await c.unit({ driver: "intel-vtd" });
    const pairs: { group: GroupView; domain: DomainView }[] = [];
    for (let i = 0; i < 20; i++) pairs.push({ group: (await c.groupWith(u.id)).group, domain: await c.domain({ unitId: u.id }) });
    const before = await stateNow();

    const honestNames = Array.from({ length: 20 }, () => uniqueName("honest"));
    const honest = [
      ...honestNames.map((name) => c.post("/v1/containers", { name })),
      ...pairs.map((p) => c.post(`/v1/groups/${p.group.id}/attach`, { domainId: p.domain.id })),
    ];
    const poisoned = [
      postText("/v1/containers", '{"name":"c\\ud800"}'),
      postText("/v1/containers", '{"name":"c\\u0000"}'),
      postText("/v1/units", '{"name":"\\udfff","driver":"mock"}'),
      postText("/v1/groups", `{"name":"g\\ud83d","unitId":${u.id}}`),
      postText(`/v1/groups/${pairs[0]!.group.id}/claim`, '{"owner":"\\ud800"}'),
      postText(`/v1/groups/${pairs[1]!.group.id}/attach`, `{"domainId":${pairs[1]!.domain.id},"owner":"x\\u0000"}`),
      postText(`/v1/groups/${pairs[2]!.group.id}/attach`, '{"domainId":9007199254740993}'),
      postText("/v1/faults", `{"unitId":${u.id},"errno":"EIO","count":1e300}`),
      c.get("/v1/events?after=9223372036854775807"),
      c.get("/v1/units/0x1"),
    ];
    // Interleave so poisoned requests land in the same group-commit batches as honest ones.
    const all: Promise<Res<unknown>>[] = [];
    for (let i = 0; i < Math.max(honest.length, poisoned.length * 4); i++) {
      if (i < honest.length) all.push(honest[i]!);
      if (i % 4 === 0 && poisoned[i / 4]) all.push(poisoned[i / 4]!);
    }
    const results = await Promise.all(all);
    const honestResults = await Promise.all(honest);
    const poisonedResults = await Promise.all(poisoned);
    expect(results.filter((r) => r.status >= 500).map((r) => r.text)).toEqual([]);
    expect(honestResults.filter((r) => r.status >= 300).map((r) => r.text)).toEqual([]);
    for (const r of poisonedResults) expectInvalid(r);

    const after = await stateNow();
    expect(after.objects).toEqual({ ...before.objects, container: before.objects.container! + 20 });
    const containers = new Map((await c.read<PageView<ContainerView>>("/v1/containers?limit=1000")).items.map((x) => [x.name, x.id]));
    for (const name of honestNames) expect(containers.has(name)).toBe(true);
    for (const p of pairs) expect((await c.groupNow(p.group.id)).domainId).toBe(p.domain.id);
    // The log has the 20 honest attaches and the 20 honest creates, and nothing of the poisoned.
    const events = await c.events(before.lastSeq);
    expect(events.filter((e) => e.kind === null).map((e) => [e.op, e.groupId, e.errno]).sort())
      .toEqual(pairs.map((p) => ["attach-group", p.group.id, null]).sort());
    const byId = (a: number, b: number) => a - b;
    expect(events.filter((e) => e.kind !== null).map((e) => [e.op, e.kind])).toEqual(honestNames.map(() => ["create", "container"]));
    expect(events.filter((e) => e.kind !== null).map((e) => e.objectId!).sort(byId)).toEqual(honestNames.map((n) => containers.get(n)!).sort(byId));
  });
});
