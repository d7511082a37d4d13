// Authentication and role checks, declared per route: each /v1 route states
// the least role it needs in its config (`config: { role: "client" }`) and
// the hooks here enforce it, so no handler checks roles itself. Ownership of
// groups, domains and containers is the core's (src/core/access.ts); this
// module decides who the caller is.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { failure } from "../core/result.js";
import { sendProblem } from "./problem.js";
import { ROLES, type Identity, type Role, type TokenTable } from "./tokens.js";

/** The least role a route needs; "public" routes (health) need no token. */
export type RouteRole = Role | "public";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Required on every /v1 route (checked when the route is added). */
    role?: RouteRole;
    /** In open mode the body must name an `owner` (claim, release): nothing else names the caller. */
    ownerRequired?: boolean;
  }
  interface FastifyRequest {
    /** The authenticated caller; null in open mode and on public routes. */
    identity: Identity | null;
  }
}

const rank = (role: Role): number => ROLES.indexOf(role);

/** RFC 6750 §2.1: "Bearer" then a token68. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The least role a request of `method` needs on a route that declares `declared` (the API description says the same). */
export function roleOf(method: string, declared: RouteRole | undefined): RouteRole {
  if (declared) return declared;
  // Routes outside /v1 that declare nothing (and unknown URLs): reads need a reader, anything else an admin.
  return method === "GET" || method === "HEAD" ? "reader" : "admin";
}

function requiredRole(request: FastifyRequest): RouteRole {
  return roleOf(request.method, request.routeOptions.config.role);
}

function unauthenticated(reply: FastifyReply, detail: string, invalid: boolean): void {
  // RFC 6750 §3: the challenge names the scheme; error= only when a token was sent.
  reply.header("www-authenticate", `Bearer realm="iommu-arbiter"${invalid ? ', error="invalid_token"' : ""}`);
  sendProblem(reply, failure("unauthenticated", detail));
}

function ownerProblem(reply: FastifyReply, message: string): void {
  sendProblem(reply, failure("invalid-request", `body.owner ${message}`), { errors: [{ field: "body.owner", message }] });
}

/**
 * With a token table, every request but a public route's must carry a
 * token of a role the route allows. Without one (open development mode),
 * every caller is let through as today and owners come from request bodies.
 */
export function installAuth(app: FastifyInstance, tokens: TokenTable | null): void {
  app.decorateRequest("identity", null);
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/v1/") && !route.config?.role) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no role (config.role)`);
    }
  });
  if (tokens === null) {
    app.log.warn("no bearer tokens configured: open development mode, every caller is an administrator and owners come from request bodies");
  } else {
    // Callback style, not async: this runs on every request. Before the body
    // is read, so an unauthenticated client cannot make the service parse it.
    app.addHook("onRequest", (request, reply, done) => {
      const need = requiredRole(request);
      if (need === "public") return done();
      const header = request.headers.authorization;
      if (header === undefined) return unauthenticated(reply, "this route needs a bearer token: send Authorization: Bearer <token>", false);
      const token = BEARER.exec(header)?.[1];
      const identity = token === undefined ? null : tokens.identify(token);
      if (identity === null) return unauthenticated(reply, "the bearer token is not valid", token !== undefined || /^bearer\b/i.test(header));
      request.identity = identity;
      if (rank(identity.role) < rank(need)) {
        sendProblem(reply, failure("forbidden-role",
          `${identity.name} is a ${identity.role}; ${request.method} ${request.routeOptions.url ?? request.url} needs the ${need} role`));
        return;
      }
      done();
    });
  }
  // Ownership binds to the token: a body naming another owner is refused,
  // not ignored, so a client that still sends one learns why.
  app.addHook("preValidation", (request, reply, done) => {
    const body = request.body;
    const named = typeof body === "object" && body !== null && Object.prototype.hasOwnProperty.call(body, "owner");
    if (request.identity !== null && named) {
      return ownerProblem(reply, "is not accepted with a bearer token: the token decides who is asking");
    }
    if (request.identity === null && tokens === null && !named && request.routeOptions.config.ownerRequired) {
      return ownerProblem(reply, "must have required property 'owner' (in open mode nothing else names the caller)");
    }
    done();
  });
}
