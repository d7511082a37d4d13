// The API description: an OpenAPI 3.1 document generated from the route
// schemas (@fastify/swagger, dynamic mode), served at /openapi.json, and the
// interactive reference at /docs (@fastify/swagger-ui, its assets served by
// this process: nothing is fetched from elsewhere).
//
// Both are public: the API's shape is not a secret (it is in the README and
// the source); the data is, and every route that reads or changes it still
// needs its token. They are not exempt from rate limits or load shedding:
// only probes are (src/http/limits.ts), because a probe must see the
// process, not its load; a document can wait its turn like any read.
//
// The route schemas are not changed for the document: a transform adds what
// a client generator needs (tags, operation ids, the role, the problem+json
// content type of errors) and replaces the schemas exported from
// src/http/schemas by references to `components.schemas`, matched by
// identity. So the validator and the serializers (app.ts: one compiled per
// schema object) see exactly the objects they saw before.
import { readFileSync } from "node:fs";
import path from "node:path";
import { STATUS_CODES } from "node:http";
import type { FastifyInstance, RouteOptions } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { PROJECT_ROOT } from "../config.js";
import { roleOf, type RouteRole } from "./auth.js";
import * as common from "./schemas/common.js";
import * as resources from "./schemas/resources.js";
import { ROLES } from "./tokens.js";

/** CSP hash of the inline <style> Swagger UI renders (see installOpenApi). */
const SWAGGER_UI_STYLE = "sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w=";

/** Where the document and the reference are served. */
export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs";

export const PROBLEM_JSON = "application/problem+json";
const SCHEMAS = "#/components/schemas/";

type Schema = Record<string, unknown>;
type OpenApiDocument = Record<string, unknown> & {
  components: { schemas: Record<string, unknown> };
  paths: Record<string, Record<string, unknown>>;
};

/**
 * The named schemas of src/http/schemas: every exported object schema and
 * string enum, by object identity. A schema a route uses is described once,
 * under its export name, and referenced wherever it appears.
 */
function namedSchemas(): Map<object, string> {
  const names = new Map<object, string>();
  for (const [name, value] of [...Object.entries(common), ...Object.entries(resources)]) {
    if (value === null || typeof value !== "object") continue;
    const s = value as Schema;
    if (s.type !== "object" && !(s.type === "string" && Array.isArray(s.enum))) continue;
    if (!names.has(value)) names.set(value, name);
  }
  return names;
}

/** A schema with each named sub-schema (and the schema itself unless it is `root`) replaced by a reference. */
function referencing(schema: unknown, names: ReadonlyMap<object, string>, used: Set<string>, root = false): unknown {
  if (schema === null || typeof schema !== "object") return schema;
  const name = names.get(schema);
  if (name !== undefined && !root) {
    used.add(name);
    return { $ref: `${SCHEMAS}${name}` };
  }
  if (Array.isArray(schema)) return schema.map((s) => referencing(s, names, used));
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) out[key] = referencing(value, names, used);
  return out;
}

/** Tags: one per resource (the first path segment after /v1), and one for the service itself. */
const TAG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  units: "IOMMU units (hardware instances) and their capabilities",
  groups: "IOMMU groups: attach, replace, detach, DMA ownership, compatibility",
  devices: "Devices: host drivers, PASIDs, iommufd binding, reserved regions",
  domains: "IOMMU domains",
  containers: "VFIO type1 containers and iommufd IOASes: automatic domain search, IOVA mappings",
  faults: "Injected driver failures",
  events: "The event log: every state change and attempt",
  host: "The host's settings (kernel profile)",
  service: "The service itself: health, readiness, statistics, this description",
};

function tagOf(url: string): string {
  const segments = url.split("/").filter(Boolean);
  if (segments[0] !== "v1") return "service";
  // /v1/stats is about the service, not a resource.
  return segments[1] === undefined || segments[1] === "stats" ? "service" : segments[1];
}

/** camelCase method + path: GET /v1/groups/:id/compatibility → getGroupsByIdCompatibility; unique per route. */
function operationIdOf(method: string, url: string): string {
  const words = url.split("/").filter((s) => s !== "" && s !== "v1").map((segment) => {
    const param = segment.startsWith(":");
    const word = (param ? segment.slice(1) : segment).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase());
    return (param ? "By" : "") + word.charAt(0).toUpperCase() + word.slice(1);
  });
  return method.toLowerCase() + (words.length > 0 ? words.join("") : "Root");
}

function roleText(role: RouteRole): string {
  if (role === "public") return "Role: public (no token needed).";
  const higher = ROLES.slice(ROLES.indexOf(role) + 1);
  return `Role: ${role}${higher.length > 0 ? ` (or ${higher.join(", ")})` : ""}: with bearer tokens configured, send \`Authorization: Bearer <token>\` of this role.`;
}

/** One response of the document: success as JSON (unless the route says otherwise), errors as problem documents. */
function responseOf(status: string, schema: Schema, names: ReadonlyMap<object, string>, used: Set<string>): Schema {
  const code = Number(status);
  const description = code >= 400
    ? `${STATUS_CODES[code] ?? status}: a problem document`
    : (schema.description as string | undefined) ?? STATUS_CODES[code] ?? status;
  // A route that names its content types (e.g. JSON and text/event-stream) keeps them.
  if (schema.content !== null && typeof schema.content === "object") {
    return { description, content: referencing(schema.content, names, used) };
  }
  if (schema.type === "null") return { description, type: "null" };
  const type = code >= 400 ? PROBLEM_JSON : "application/json";
  return { description, content: { [type]: { schema: referencing(schema, names, used) } } };
}

const problemRef = { $ref: `${SCHEMAS}Problem` };
const ANY_OTHER_ERROR = {
  description: "Any other refusal, e.g. by the service's edge or limits (405, 408, 413, 414, 415, 429, 431): a problem document",
  content: { [PROBLEM_JSON]: { schema: problemRef } },
};

/**
 * Routes of the interactive reference that are its machinery (assets, the
 * copy of the document the page loads, its YAML twin), not the API: left
 * out of the document.
 */
export const isDocsMachinery = (url: string) => url.startsWith(`${DOCS_PATH}/`) && url !== `${DOCS_PATH}/`;

function transform(names: ReadonlyMap<object, string>, used: Set<string>) {
  return ({ schema, url, route }: { schema: Schema | undefined; url: string; route: RouteOptions }): { schema: Schema; url: string } => {
    // The page itself is documented (as /docs, where the router takes it
    // with or without the slash); the rest of the reference is hidden. A
    // route's own `hide` is not honoured: every other route is API.
    if (url === `${DOCS_PATH}/`) url = DOCS_PATH;
    else if (isDocsMachinery(url)) return { schema: { ...schema, hide: true }, url };
    const method = Array.isArray(route.method) ? route.method[0]! : route.method;
    const role = roleOf(method, route.config?.role);
    const { response, body, hide: _hide, description, ...rest } = schema ?? {};
    used.add("Problem");
    const responses: Schema = {};
    for (const [status, s] of Object.entries((response ?? {}) as Record<string, Schema>)) responses[status] = responseOf(status, s, names, used);
    if (url === DOCS_PATH) {
      responses["200"] = { description: "The interactive reference (Swagger UI), an HTML page", content: { "text/html": { schema: { type: "string" } } } };
    }
    responses.default = ANY_OTHER_ERROR;
    return {
      url,
      schema: {
        ...rest,
        tags: [tagOf(url)],
        operationId: operationIdOf(method, url),
        description: [description, roleText(role)].filter(Boolean).join("\n\n"),
        "x-role": role,
        ...(role === "public" ? { security: [] } : {}),
        ...(body !== undefined ? { body: referencing(body, names, used) } : {}),
        response: responses,
      },
    };
  };
}

/** 404 → NotFound: the name of the shared problem response of a status. */
function problemResponseName(status: string): string {
  if (status === "default") return "AnyOtherError";
  return (STATUS_CODES[Number(status)] ?? `Status${status}`).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase());
}

/**
 * Each error answer of each operation is the same object for a status (its
 * description and the Problem schema): described once under
 * `components.responses` and referenced from every operation.
 */
function shareProblemResponses(document: OpenApiDocument): void {
  const shared: Record<string, unknown> = {};
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item)) {
      const responses = (operation as { responses?: Record<string, Schema> }).responses ?? {};
      for (const [status, response] of Object.entries(responses)) {
        const content = response.content as Record<string, unknown> | undefined;
        if (content === undefined || Object.keys(content).join() !== PROBLEM_JSON) continue;
        const name = problemResponseName(status);
        shared[name] ??= response;
        responses[status] = { $ref: `#/components/responses/${name}` };
      }
    }
  }
  (document.components as Record<string, unknown>).responses = Object.fromEntries(Object.entries(shared).sort(([a], [b]) => a.localeCompare(b)));
}

/** The components the routes referenced, each with the named schemas inside it referenced too. */
function addComponents(document: OpenApiDocument, names: ReadonlyMap<object, string>, used: Set<string>): OpenApiDocument {
  shareProblemResponses(document);
  const byName = new Map([...names].map(([schema, name]) => [name, schema]));
  const done = new Set<string>();
  const schemas: Record<string, unknown> = {};
  for (let pending = [...used]; pending.length > 0; pending = [...used].filter((n) => !done.has(n))) {
    for (const name of pending) {
      done.add(name);
      schemas[name] = referencing(byName.get(name), names, used, true);
    }
  }
  document.components.schemas = Object.fromEntries(Object.entries({ ...document.components.schemas, ...schemas }).sort(([a], [b]) => a.localeCompare(b)));
  return document;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as { version?: string };
  return pkg.version ?? "0.0.0";
}

const DESCRIPTION = [
  "A networked attach-arbitration service for IOMMU domains: it simulates what the Linux IOMMU core and its drivers decide when a device or an IOMMU group is attached to a domain, and answers with the kernel's attach contract.",
  "",
  "Every refusal is an RFC 9457 problem document (`application/problem+json`) carrying the errno contract: `errno`, `code`, `soft` (an EINVAL meaning \"incompatible: try another domain\") and a stable `reason`.",
  "",
  `Roles, lowest first: ${ROLES.join(", ")}; each route's description and its \`x-role\` name the least it needs. Without a token table (open development mode) no token is needed.`,
].join("\n");

/**
 * The document generator, /openapi.json and /docs. Call before any route is
 * declared: the generator records routes as they are added.
 */
export async function installOpenApi(app: FastifyInstance): Promise<void> {
  const names = namedSchemas();
  const used = new Set<string>();
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "iommu-arbiter", version: packageVersion(), description: DESCRIPTION },
      components: {
        securitySchemes: {
          bearer: {
            type: "http",
            scheme: "bearer",
            description: `A token of the service's token table (README "Identities and roles"); its role (${ROLES.join(" < ")}) decides what it may do.`,
          },
        },
      },
      security: [{ bearer: [] }],
      tags: Object.entries(TAG_DESCRIPTIONS).map(([name, description]) => ({ name, description })),
    },
    transform: transform(names, used) as never,
    transformObject: (documentObject) => addComponents((documentObject as { openapiObject: OpenApiDocument }).openapiObject, names, used) as never,
  });

  // The document, serialized once: it changes only with the code.
  let serialized: string | undefined;
  app.get(OPENAPI_PATH, {
    config: { role: "public" },
    schema: { description: "This document: the OpenAPI 3.1 description of every route", response: { 200: { type: "object", description: "An OpenAPI 3.1 document" } } },
  }, (_request, reply) => {
    serialized ??= JSON.stringify(app.swagger());
    // A string with a JSON content type is sent as it is, not serialized again.
    return reply.type("application/json; charset=utf-8").send(serialized);
  });

  await app.register(async (docs) => {
    // Every route of the reference (the page, its assets, the copy of the
    // document it loads from ./json) is public, as the document is.
    docs.addHook("onRoute", (route) => {
      route.config = { ...route.config, role: "public" };
    });
    await docs.register(swaggerUi, {
      routePrefix: DOCS_PATH,
      // The page's assets are this process's own files, so 'self' is all it
      // needs: no CDN, no validator badge (validatorUrl stays null), no
      // upgrade-insecure-requests (the service speaks plain HTTP). Framing
      // is refused as X-Frame-Options DENY does (src/http/limits.ts); the
      // other helmet headers (nosniff, CORP same-origin, no referrer) suit
      // the page as they are. data: images: the logo is inlined. The one
      // hash is of the <style> element Swagger UI's own React tree renders
      // (constant text in the bundle of @fastify/swagger-ui 5.2; found with
      // a browser, test/http/docs-browser.test.ts): styles need no
      // 'unsafe-inline'. Should an upgrade change that text, the browser
      // blocks that one element and logs it; the page still works.
      staticCSP: [
        "default-src 'self'", "base-uri 'self'", "connect-src 'self'", "font-src 'self' data:", "form-action 'self'",
        "frame-ancestors 'none'", "img-src 'self' data:", "object-src 'none'", "script-src 'self'", "script-src-attr 'none'",
        `style-src 'self' '${SWAGGER_UI_STYLE}'`,
      ].join("; "),
    });
  });
}
