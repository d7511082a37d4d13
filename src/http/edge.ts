// What happens before a request reaches a route: requests the HTTP parser
// or the router cannot take, methods no route has, bodies that are not JSON.
// Each is answered with a problem document like every other refusal.
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from "fastify";
import { failure, type ErrnoError } from "../core/result.js";
import { problemDocument, sendProblem } from "./problem.js";
import { statusOf } from "./status.js";

/** Longest path parameter the router accepts: ids have at most 10 digits. */
export const MAX_PARAM_LENGTH = 100;
/**
 * Longest request target (path and query) the service reads. Below Node's
 * 16 KiB header limit, so a long URL gets a 414 here rather than a 431 from
 * the parser; the longest honest URL is a few hundred bytes.
 */
export const MAX_URL_LENGTH = 8192;

/** One registered route: its method and URL pattern ("/v1/groups/:id/attach"). */
export interface RouteEntry {
  readonly method: string;
  readonly url: string;
  readonly schema: Readonly<Record<string, unknown>> | undefined;
}

const tables = new WeakMap<FastifyInstance, RouteEntry[]>();

/** Every route the app registered, HEAD included (for tests and the 405 answer). */
export function routesOf(app: FastifyInstance): readonly RouteEntry[] {
  return tables.get(app) ?? [];
}

/**
 * Server options for failures Fastify answers itself unless told otherwise:
 * a URL it cannot decode, a path parameter over MAX_PARAM_LENGTH, and
 * anything Node's HTTP parser rejects before there is a request.
 */
export function edgeServerOptions(): Pick<FastifyServerOptions, "frameworkErrors" | "clientErrorHandler" | "routerOptions"> {
  return {
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      reply.header("x-request-id", request.id);
      if (error.code === "FST_ERR_MAX_PARAM_LENGTH") {
        return sendProblem(reply, failure("uri-too-long", `a path segment is longer than ${MAX_PARAM_LENGTH} characters`));
      }
      if (error.code === "FST_ERR_BAD_URL") {
        return sendProblem(reply, failure("malformed-request", "the URL path is not valid percent-encoded UTF-8"),
          { errors: [{ field: "url", message: "is not valid percent-encoded UTF-8" }] });
      }
      request.log.error({ err: error }, "router failure");
      return sendProblem(reply, failure("internal-error", "internal error; see the server log with this request id"));
    },
    clientErrorHandler: answerClientError,
  };
}

/** A request line naming a method: token SP request-target SP HTTP-version (RFC 9112 §3). */
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/\d\.\d\r?$/;

/** What to answer when Node's HTTP parser gives up on a connection. */
function clientProblem(err: ConnectionError): ErrnoError {
  // The bytes of the chunk the parser failed in (a Buffer at run time,
  // whatever Fastify's typing says); its first line is usually the request line.
  const raw: unknown = err.rawPacket;
  const packet = Buffer.isBuffer(raw) ? raw : Buffer.alloc(0);
  const lineEnd = packet.indexOf("\n");
  const firstLine = packet.subarray(0, lineEnd < 0 ? packet.length : lineEnd).toString("latin1");
  switch (err.code) {
    case "HPE_INVALID_METHOD":
      // A well-formed request line with a method Node does not know is an
      // unimplemented method (RFC 9110 §15.6.2); anything else is garbage.
      return REQUEST_LINE.test(firstLine)
        ? failure("method-not-implemented", "the request method is not one this service implements")
        : failure("malformed-request", "the request line is not method, target and HTTP version");
    case "HPE_HEADER_OVERFLOW":
      // Node's limit covers the request line too: when the line alone is
      // over the URL limit, the URL is what did not fit.
      return lineEnd < 0 || firstLine.length > MAX_URL_LENGTH
        ? failure("uri-too-long", `the request target is longer than ${MAX_URL_LENGTH} bytes`)
        : failure("headers-too-large", "the request header fields are too large");
    case "ERR_HTTP_REQUEST_TIMEOUT":
    case "ERR_HTTP_HEADERS_TIMEOUT":
      return failure("request-timeout", "the request was not received in time");
    default:
      return failure("malformed-request", `the request is not well-formed HTTP (${err.code ?? "parse error"})`);
  }
}

function answerClientError(this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  // A reset connection has nobody to answer (Node's own handler does the same).
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const error = clientProblem(err);
  const status = statusOf(error);
  this.log.debug({ err, status }, "client error");
  if (socket.writable) {
    const body = JSON.stringify(problemDocument(error));
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n`
      + "Content-Type: application/problem+json; charset=utf-8\r\n"
      + `Content-Length: ${Buffer.byteLength(body)}\r\n`
      + "Connection: close\r\n\r\n"
      + body);
  }
  socket.destroySoon();
}

/**
 * Record every route as it is registered (call before registering any), and
 * accept only JSON bodies: Fastify's text/plain parser would hand a string to
 * a route that expects an object; without it such a body is a 415.
 */
export function installEdge(app: FastifyInstance): void {
  const table: RouteEntry[] = [];
  tables.set(app, table);
  app.addHook("onRoute", (route) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      table.push({ method, url: route.url, schema: route.schema as Record<string, unknown> | undefined });
    }
  });
  app.removeContentTypeParser("text/plain");
  // Callback style, not async: this runs on every request.
  app.addHook("onRequest", (request, reply, done) => {
    if (request.url.length <= MAX_URL_LENGTH) return done();
    sendProblem(reply, failure("uri-too-long", `the request target is longer than ${MAX_URL_LENGTH} bytes`));
  });
}

function matches(pattern: string, path: string): boolean {
  const want = pattern.split("/");
  const got = path.split("/");
  return want.length === got.length && want.every((segment, i) => segment.startsWith(":") ? got[i] !== "" : segment === got[i]);
}

/**
 * The answer when no route matched (RFC 9110): 501 for a method no route of
 * the service implements (§15.6.2), 405 with Allow when the path exists under
 * other methods (§15.5.6), else 404.
 */
export function answerNoRoute(table: readonly RouteEntry[], request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split("?")[0]!;
  if (!table.some((r) => r.method === request.method)) {
    return sendProblem(reply, failure("method-not-implemented", `this service implements no ${request.method} method`));
  }
  const allowed = [...new Set(table.filter((r) => matches(r.url, path)).map((r) => r.method))].sort();
  if (allowed.length > 0) {
    reply.header("allow", allowed.join(", "));
    return sendProblem(reply, failure("method-not-allowed", `${path} supports ${allowed.join(", ")}, not ${request.method}`));
  }
  return sendProblem(reply, failure("no-such-route", `no route ${request.method} ${path}`));
}
