// The OpenAPI document (/openapi.json) against the app that serves it: it is
// a valid OpenAPI 3.1 document, it lists every route the app registered with
// every status the route's schema declares, its problem schema carries the
// error catalogues, real answers validate against it, the roles it states
// are the ones the auth hook enforces, and the reference at /docs is served
// from this process alone.
//
// Generic on purpose: a route added later (by any plugin) fails the
// "every route" test until it is documented or is /docs machinery.
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { FastifyInstance } from "fastify";
import { beforeAll, describe, expect, it } from "vitest";
import { ERRNO_VALUES } from "../../src/core/errno.js";
import { REASONS } from "../../src/core/reasons.js";
import { routesOf, type RouteEntry } from "../../src/http/edge.js";
import { DOCS_PATH, isDocsMachinery, OPENAPI_PATH, PROBLEM_JSON } from "../../src/http/openapi.js";
import { authAppForFile } from "../helpers/auth.js";
import { clientForFile, type GroupView, type DomainView, type Res, type UnitView } from "../helpers/http.js";

const c = clientForFile();

type Json = Record<string, unknown>;
interface Operation extends Json {
  operationId?: string;
  tags?: string[];
  "x-role"?: string;
  security?: unknown[];
  responses: Record<string, Json>;
}
interface Document extends Json {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; responses: Record<string, Json> };
}

let doc: Document;
beforeAll(async () => {
  const res = await c.get<Document>(OPENAPI_PATH);
  expect(res.status).toBe(200);
  expect(String(res.headers["content-type"])).toMatch(/^application\/json/);
  doc = res.body;
});

/** Any answer, JSON or not (the Client helper parses every body as JSON). */
async function fetch(app: FastifyInstance, method: string, url: string, options: { body?: unknown; authorization?: string } = {}): Promise<Res<Json | null>> {
  const res = await app.inject({
    method: method as "GET", url,
    headers: options.authorization ? { authorization: options.authorization } : {},
    ...(options.body !== undefined ? { payload: options.body as object } : {}),
  });
  const json = /json/.test(String(res.headers["content-type"])) && res.body.length > 0;
  return { status: res.statusCode, headers: res.headers, text: res.body, body: json ? JSON.parse(res.body) as Json : null };
}

/** The document's path of a route: :id → {id}; the router's trailing-slash twin is the same path. */
const pathOf = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, "{$1}").replace(/(.)\/$/, "$1");

/** A `$ref` inside the document, followed. */
function deref<T = Json>(node: Json): T {
  let out = node;
  while (typeof out.$ref === "string") {
    const pointer = out.$ref.replace(/^#\//, "").split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
    out = pointer.reduce<Json>((at, token) => at[token] as Json, doc);
  }
  return out as T;
}

/** The routes a client can call: HEAD twins of GET routes are implied by the GET (RFC 9110 §9.3.2). */
function callableRoutes(app: FastifyInstance): RouteEntry[] {
  const routes = routesOf(app);
  const gets = new Set(routes.filter((r) => r.method === "GET").map((r) => pathOf(r.url)));
  return routes.filter((r) => !(r.method === "HEAD" && gets.has(pathOf(r.url))));
}

describe("the OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("the validator can fail: a response without a description is refused", async () => {
    const broken = structuredClone(doc);
    delete broken.paths["/v1/units"]!.post!.responses["201"]!.description;
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it("documents every registered route but the /docs machinery, and nothing else", () => {
    const routes = callableRoutes(c.app);
    expect(routes.length).toBeGreaterThan(40);
    const missing: string[] = [];
    const expected = new Set<string>();
    for (const route of routes) {
      if (isDocsMachinery(route.url)) continue;
      const key = `${route.method.toLowerCase()} ${pathOf(route.url)}`;
      expected.add(key);
      if (doc.paths[pathOf(route.url)]?.[route.method.toLowerCase()] === undefined) missing.push(key);
    }
    expect(missing).toEqual([]);
    const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
    expect(documented.filter((op) => !expected.has(op))).toEqual([]);
    // Hidden: only the reference's assets and copies of this document.
    expect(documented.some((op) => op.includes(`${DOCS_PATH}/`))).toBe(false);
  });

  it("every response status of every route, each with the content types its schema names; errors as problem+json", () => {
    const wrong: string[] = [];
    for (const route of callableRoutes(c.app)) {
      if (isDocsMachinery(route.url)) continue;
      const operation = doc.paths[pathOf(route.url)]?.[route.method.toLowerCase()];
      // A route missing altogether is the previous test's failure.
      if (operation === undefined) continue;
      const declared = (route.schema?.response ?? {}) as Record<string, Json>;
      for (const [status, schema] of Object.entries(declared)) {
        const where = `${route.method} ${route.url} ${status}`;
        const documented = operation.responses[status];
        if (documented === undefined) {
          wrong.push(`${where}: not documented`);
          continue;
        }
        const response = deref(documented);
        if (typeof response.description !== "string" || response.description === "") wrong.push(`${where}: no description`);
        const types = Object.keys((response.content ?? {}) as Json);
        const named = schema.content !== undefined ? Object.keys(schema.content as Json) : null;
        if (named !== null) {
          if (named.some((t) => !types.includes(t))) wrong.push(`${where}: documents ${types.join()} for ${named.join()}`);
        } else if (schema.type === "null") {
          if (types.length > 0) wrong.push(`${where}: a body for an empty answer`);
        } else if (Number(status) >= 400) {
          if (types.join() !== PROBLEM_JSON) wrong.push(`${where}: ${types.join()}, not ${PROBLEM_JSON}`);
        } else if (types.join() !== "application/json") {
          wrong.push(`${where}: ${types.join()}, not application/json`);
        }
      }
      // Refusals no schema lists (405, 413, 429, ...) are problem documents too.
      if (deref<{ content?: Json }>(operation.responses.default ?? {}).content?.[PROBLEM_JSON] === undefined) wrong.push(`${route.method} ${route.url}: no default problem`);
    }
    expect(wrong).toEqual([]);
  });

  it("every operation has a tag the document declares, a unique operation id and a role", () => {
    const declared = new Set(((doc.tags ?? []) as { name: string }[]).map((t) => t.name));
    const ids = new Map<string, string>();
    const wrong: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const where = `${method} ${path}`;
        if (!op.tags?.length || op.tags.some((t) => !declared.has(t))) wrong.push(`${where}: tags ${String(op.tags)}`);
        if (!op.operationId) wrong.push(`${where}: no operationId`);
        else if (ids.has(op.operationId)) wrong.push(`${where}: operationId ${op.operationId} also names ${ids.get(op.operationId)}`);
        else ids.set(op.operationId, where);
        if (!["public", "reader", "client", "admin"].includes(op["x-role"] ?? "")) wrong.push(`${where}: x-role ${op["x-role"]}`);
        if (!String(op.description).includes(`Role: ${op["x-role"]}`)) wrong.push(`${where}: the description does not name the role`);
        // Public operations need no token; the others inherit the document's bearer requirement.
        if ((op["x-role"] === "public") !== (Array.isArray(op.security) && op.security.length === 0)) wrong.push(`${where}: security ${JSON.stringify(op.security)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.components).toMatchObject({ securitySchemes: { bearer: { type: "http", scheme: "bearer" } } });
  });

  it("the problem schema is a shared component whose errno and reason enums are the catalogues", () => {
    const problem = doc.components.schemas.Problem!;
    const properties = problem.properties as Record<string, Json>;
    expect(problem.required).toEqual(expect.arrayContaining(["type", "title", "status", "errno", "code", "soft", "reason", "detail"]));
    expect(deref(properties.errno!).enum).toEqual(Object.keys(ERRNO_VALUES));
    expect(deref(properties.reason!).enum).toEqual(Object.keys(REASONS));
    // Referenced, not inlined: one definition for every error answer.
    const text = JSON.stringify(doc);
    expect(text.split('"$ref":"#/components/schemas/Problem"').length - 1).toBeLessThan(20);
    expect(text.split('"enum":["EPERM"').length - 1).toBeLessThanOrEqual(2);
  });
});

describe("real answers validate against the document", () => {
  // The document itself is the schema registry: every $ref in it resolves
  // against its root, as a client generator resolves it.
  let ajv: Ajv2020;
  beforeAll(() => {
    ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addFormat("date-time", (s: string) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s));
    ajv.addSchema(structuredClone(doc), "openapi.json");
  });

  const escape = (token: string) => token.replace(/~/g, "~0").replace(/\//g, "~1");

  /** Validate an answer against its operation's response for its status and content type. */
  function check(method: string, url: string, res: Res<unknown>): string[] {
    const operation = doc.paths[url]?.[method.toLowerCase()];
    if (!operation) throw new Error(`${method} ${url} is not documented`);
    const documented = operation.responses[String(res.status)];
    if (!documented) throw new Error(`${method} ${url} does not document ${res.status}: ${res.text}`);
    const base = typeof documented.$ref === "string"
      ? documented.$ref.slice(1)
      : `/paths/${escape(url)}/${method.toLowerCase()}/responses/${res.status}`;
    const contentType = String(res.headers["content-type"]).split(";")[0]!;
    expect(Object.keys(deref<{ content: Json }>(documented).content), `${method} ${url} ${res.status}`).toContain(contentType);
    const validate = ajv.compile({ $ref: `openapi.json#${base}/content/${escape(contentType)}/schema` });
    return validate(res.body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`);
  }

  let unit: UnitView;
  let group: GroupView;
  let first: DomainView;
  let second: DomainView;
  beforeAll(async () => {
    const created = await c.send<UnitView>("POST", "/v1/units", { name: "openapi-unit", driver: "intel-vtd" });
    expect(created.status).toBe(201);
    expect(check("POST", "/v1/units", created)).toEqual([]);
    unit = created.body;
    group = (await c.groupWith(unit.id, [{}])).group;
    first = await c.domain({ unitId: unit.id });
    second = await c.domain({ unitId: unit.id });
  });

  it("201 create: POST /v1/groups", async () => {
    const res = await c.post("/v1/groups", { name: "openapi-group", unitId: unit.id });
    expect(res.status).toBe(201);
    expect(check("POST", "/v1/groups", res)).toEqual([]);
  });

  it("200 attach, then 409 problem (EBUSY group-attached) from a refused attach", async () => {
    const attached = await c.post(`/v1/groups/${group.id}/attach`, { domainId: first.id });
    expect(attached.status).toBe(200);
    expect(check("POST", "/v1/groups/{id}/attach", attached)).toEqual([]);
    const refused = await c.post<{ reason: string }>(`/v1/groups/${group.id}/attach`, { domainId: second.id });
    expect(refused.status).toBe(409);
    expect(refused.body.reason).toBe("group-attached");
    expect(check("POST", "/v1/groups/{id}/attach", refused)).toEqual([]);
  });

  it("400 problem naming the fields, 404 problem, a page and the event log", async () => {
    const invalid = await c.post("/v1/units", { name: "" });
    expect(invalid.status).toBe(400);
    expect(check("POST", "/v1/units", invalid)).toEqual([]);
    const missing = await c.get("/v1/domains/999999");
    expect(missing.status).toBe(404);
    expect(check("GET", "/v1/domains/{id}", missing)).toEqual([]);
    const page = await c.get("/v1/groups");
    expect(check("GET", "/v1/groups", page)).toEqual([]);
    const events = await c.get<{ items: unknown[] }>("/v1/events");
    expect(events.body.items.length).toBeGreaterThan(0);
    expect(check("GET", "/v1/events", events)).toEqual([]);
    expect(check("GET", "/healthz", await c.get("/healthz"))).toEqual([]);
  });

  it("the check can fail: a problem with a reason outside the catalogue is refused", async () => {
    const refused = await c.post<Json>(`/v1/groups/${group.id}/attach`, { domainId: second.id });
    expect(check("POST", "/v1/groups/{id}/attach", { ...refused, body: { ...refused.body, reason: "not-a-reason" } })).not.toEqual([]);
    expect(check("POST", "/v1/groups/{id}/attach", { ...refused, body: { ...refused.body, errno: "ENOTANERRNO" } })).not.toEqual([]);
  });
});

describe("/docs, the interactive reference", () => {
  it("is HTML referencing only this server's assets, each served", async () => {
    for (const url of [DOCS_PATH, `${DOCS_PATH}/`]) {
      const res = await fetch(c.app, "GET", url);
      expect(res.status).toBe(200);
      expect(String(res.headers["content-type"])).toMatch(/^text\/html/);
      expect(res.text).not.toMatch(/https?:|\/\/[a-z]/i);
      const refs = [...res.text.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
      expect(refs.length).toBeGreaterThan(3);
      for (const ref of refs) {
        expect(ref, ref).toMatch(/^(?:\/|\.\/)(?!\/)/);
        const asset = await fetch(c.app, "GET", new URL(ref, `http://localhost${url}`).pathname);
        expect(asset.status, ref).toBe(200);
      }
    }
  });

  it("loads this document (its ./json copy) with no validator badge", async () => {
    const initializer = await fetch(c.app, "GET", `${DOCS_PATH}/static/swagger-initializer.js`);
    expect(initializer.status).toBe(200);
    expect(initializer.text).toContain("resolveUrl('./json')");
    expect(initializer.text).toContain("validatorUrl: null");
    expect((await fetch(c.app, "GET", `${DOCS_PATH}/json`)).body).toEqual(doc);
  });

  it("has a Content-Security-Policy of this server only, and helmet's headers", async () => {
    const res = await fetch(c.app, "GET", DOCS_PATH);
    const csp = String(res.headers["content-security-policy"]);
    const sources = csp.split(";").flatMap((d) => d.trim().split(/\s+/).slice(1));
    expect(sources.length).toBeGreaterThan(5);
    // Only this server: no host, no scheme but data: (the inlined logo), no 'unsafe-*'.
    for (const source of sources) expect(source).toMatch(/^(?:'self'|'none'|data:|'sha256-[A-Za-z0-9+/]+=*')$/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers).toMatchObject({ "x-frame-options": "DENY", "x-content-type-options": "nosniff" });
    // The document is JSON for a client, not a page: no CSP on it.
    expect((await fetch(c.app, "GET", OPENAPI_PATH)).headers["content-security-policy"]).toBeUndefined();
  });

  it("are rate-limited like any read (only probes are exempt)", async () => {
    expect((await fetch(c.app, "GET", OPENAPI_PATH)).headers["x-ratelimit-limit"]).toBeDefined();
    expect((await fetch(c.app, "GET", DOCS_PATH)).headers["x-ratelimit-limit"]).toBeDefined();
    expect((await fetch(c.app, "GET", "/healthz")).headers["x-ratelimit-limit"]).toBeUndefined();
  });
});

describe("with bearer tokens, each operation asks for the role the document states", () => {
  const auth = authAppForFile();

  it("anonymous: only public operations answer without 401; a reader and a client are refused exactly above their role", async () => {
    const res = await auth.anonymous.get<Document>(OPENAPI_PATH);
    expect(res.status).toBe(200);
    const wrong: string[] = [];
    const rank = ["public", "reader", "client", "admin"];
    for (const [path, item] of Object.entries(res.body.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const url = path.replace(/\{[^}]+\}/g, "1");
        const verb = method.toUpperCase() as "GET" | "POST" | "PATCH" | "DELETE";
        const body = verb === "POST" || verb === "PATCH" ? {} : undefined;
        const need = rank.indexOf(op["x-role"]!);
        const anonymous = await fetch(auth.app(), verb, url, { body });
        if ((anonymous.status === 401) !== (need > 0)) wrong.push(`${method} ${path} anonymous → ${anonymous.status}`);
        for (const [who, role] of [["reader", "reader"], ["a", "client"]] as const) {
          const answer = await fetch(auth.app(), verb, url, { body, authorization: `Bearer ${auth.tokens[who]}` });
          const refused = answer.status === 403 && answer.body?.reason === "forbidden-role";
          if (refused !== need > rank.indexOf(role)) wrong.push(`${method} ${path} as ${role} → ${answer.status} ${answer.body?.reason ?? ""}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it("the reference's assets are public too", async () => {
    const page = await fetch(auth.app(), "GET", DOCS_PATH);
    expect(page.status).toBe(200);
    for (const ref of [...page.text.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!)) {
      expect((await fetch(auth.app(), "GET", ref)).status, ref).toBe(200);
    }
    expect((await auth.anonymous.get(`${DOCS_PATH}/json`)).status).toBe(200);
  });
});
