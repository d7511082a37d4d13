// Bounded resources: what a slow client, a greedy one or a flood may hold.
// Timeouts and sizes are server options (Node cuts the connection off); the
// connection cap, load shedding and rate limits are onRequest hooks that
// answer with our problem documents; helmet adds the security headers.
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from "fastify";
import type { ServerOptions } from "node:http";
import helmet from "helmet";
import rateLimit from "@fastify/rate-limit";
import underPressure from "@fastify/under-pressure";
import { performance } from "node:perf_hooks";
import type { Socket } from "node:net";
import { DEFAULT_LIMITS, type Limits } from "../config.js";
import { failure } from "../core/result.js";
import { ProblemError } from "./problem.js";
import { PROBE_ROUTES } from "./probes.js";
import { METRICS_PATH } from "./metrics.js";

export interface LimitOptions extends Partial<Limits> {
  /** How often under-pressure samples the event loop, ms (tests shorten it). */
  readonly pressureSampleInterval?: number;
}

/** Routes no limit applies to: a probe or a scrape must see the process, not its load. */
const EXEMPT: ReadonlySet<string | undefined> = new Set([...PROBE_ROUTES, METRICS_PATH]);

/**
 * Whose budget a request spends: the authenticated client (one client behind
 * a proxy or NAT is not many, and many clients behind one address are not
 * one); in open development mode, the address. Authentication runs first (an
 * app-wide hook, before the limiter's per-route one).
 */
export function clientKey(request: FastifyRequest): string {
  return request.identity ? `client ${request.identity.name}` : `address ${request.ip}`;
}

export function resolveLimits(options: LimitOptions = {}): Limits & { pressureSampleInterval: number } {
  const limits = { ...DEFAULT_LIMITS, pressureSampleInterval: 1000, ...options };
  if (limits.headersTimeout > limits.requestTimeout) {
    throw new RangeError(`headersTimeout (${limits.headersTimeout}) must not exceed requestTimeout (${limits.requestTimeout})`);
  }
  return limits;
}

/** The Fastify factory options that bound a connection's time and a body's size. */
export function serverOptions(limits: Limits): Pick<FastifyServerOptions,
  "bodyLimit" | "connectionTimeout" | "keepAliveTimeout" | "requestTimeout"> & { http: ServerOptions } {
  return {
    bodyLimit: limits.bodyLimit,
    connectionTimeout: limits.socketTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    requestTimeout: limits.requestTimeout,
    http: {
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      // Node checks both timeouts on this period (30 s by default), so the
      // period bounds how late a slow client is cut off.
      connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(limits.headersTimeout / 4))),
    },
    // A request that times out is answered by the edge's client-error
    // handler (src/http/edge.ts), with the other parser refusals.
  };
}

/** Register every limit; call before any route is declared (rate limits attach per route). */
export async function installLimits(app: FastifyInstance, limits: Limits & { pressureSampleInterval: number }): Promise<void> {
  // helmet itself, its middleware built once: @fastify/helmet rebuilds it
  // from the options on every request (and adds an async hook per request).
  const securityHeaders = helmet({
    // JSON only: no document is ever rendered, so the document-oriented
    // headers (CSP, COOP, COEP, Origin-Agent-Cluster, legacy IE/Flash ones)
    // would be bytes on every answer for nothing. HSTS belongs to whatever
    // terminates TLS; this service speaks plain HTTP.
    contentSecurityPolicy: false,
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    strictTransportSecurity: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
    // Kept: nosniff (a browser never reads an answer as HTML or script),
    // X-Frame-Options DENY and CORP same-origin (no other site frames or
    // embeds our answers), Referrer-Policy no-referrer.
    xFrameOptions: { action: "deny" },
  });
  // Callback style, not async: this runs on every request.
  app.addHook("onRequest", (request, reply, done) => securityHeaders(request.raw, reply.raw, (error) => done(error as Error | undefined)));
  capConnections(app, limits.maxConnections);
  if (limits.maxEventLoopDelay > 0) await shedLoad(app, limits.maxEventLoopDelay, limits.pressureSampleInterval);
  await limitRates(app, limits);
}

/**
 * At most `max` connections are served at once. An extra one is accepted
 * (so it can be told why) and its first request answered 503 with
 * Connection: close; one that never sends a request is closed by the
 * headers timeout.
 */
function capConnections(app: FastifyInstance, max: number): void {
  if (max === 0) return;
  let open = 0;
  const refused = new WeakSet<Socket>();
  app.server.on("connection", (socket: Socket) => {
    if (++open > max) refused.add(socket);
    socket.once("close", () => { open--; });
  });
  app.addHook("onRequest", (request, reply, done) => {
    if (!refused.has(request.raw.socket)) return done();
    reply.header("connection", "close");
    done(new ProblemError(
      failure("too-many-connections", `the server already holds its ${max} connections; retry on a new connection later`),
      { "retry-after": "1" }));
  });
}

/**
 * 503 while the event loop lags: every answer would be late anyway. The
 * samples taken before the app was ready, or in the interval that covers
 * that moment, measure start-up work (migrations, the topology load), not
 * load, and a sample without data (the monitor's first tick records nothing)
 * is no measurement: neither sheds.
 */
async function shedLoad(app: FastifyInstance, maxEventLoopDelay: number, sampleInterval: number): Promise<void> {
  const retryAfter = Math.max(1, Math.ceil(sampleInterval / 1000));
  let readyAt = Number.POSITIVE_INFINITY;
  app.addHook("onReady", (done) => {
    readyAt = performance.now();
    done();
  });
  await app.register(underPressure, {
    maxEventLoopDelay,
    sampleInterval,
    pressureHandler: async (request, _reply, _type, value) => {
      if (EXEMPT.has(request.routeOptions.url)) return;
      if (value === undefined || !Number.isFinite(value) || performance.now() - readyAt < 2 * sampleInterval) return;
      throw new ProblemError(
        failure("overloaded", `the server is overloaded (event loop ${Math.round(value)} ms late, limit ${maxEventLoopDelay} ms); retry later`),
        { "retry-after": String(retryAfter) });
    },
  });
}

/**
 * Per-client budgets, reads and writes apart. Writes are what is scarce:
 * each one goes through the single writer and most add an event row, so
 * their budget is the tighter one. Reads are answered from memory and
 * clients legitimately poll (events, compatibility), so they get more.
 */
async function limitRates(app: FastifyInstance, limits: Limits): Promise<void> {
  const { rateLimitReads: reads, rateLimitWrites: writes, rateLimitWindow: window } = limits;
  if (reads === 0 && writes === 0) return;
  const isRead = (request: FastifyRequest) => request.method === "GET" || request.method === "HEAD";
  const budget = (request: FastifyRequest) => (isRead(request) ? reads : writes);
  await app.register(rateLimit, {
    global: true,
    hook: "onRequest",
    timeWindow: window,
    keyGenerator: (request) => `${isRead(request) ? "read" : "write"} ${clientKey(request)}`,
    max: (request) => budget(request),
    allowList: (request) => EXEMPT.has(request.routeOptions.url) || budget(request) === 0,
    errorResponseBuilder: (request, context) => new ProblemError(
      failure("rate-limited", `more than ${context.max} ${isRead(request) ? "reads" : "writes"} in ${window} ms from this client; retry in ${context.after}`),
      { "retry-after": String(Math.max(1, Math.ceil(context.ttl / 1000))) }),
  });
}
