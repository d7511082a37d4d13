// Liveness and readiness, and the drain before a shutdown.
//
// /livez (and /healthz, its older name): the process answers. /readyz: it
// should be sent traffic: the database answers a query now with every
// migration applied, the store takes changes, and the service is not
// draining. Draining (server.ts on SIGTERM/SIGINT) makes /readyz answer 503
// and every other new request too, and closes each connection after the
// answer it is busy with, so that no keep-alive connection holds the process.
import type { FastifyInstance } from "fastify";
import { failure } from "../core/result.js";
import { ProblemError, sendProblem } from "./problem.js";
import { Problem } from "./schemas/common.js";

declare module "fastify" {
  interface FastifyInstance {
    /** True from the start of a shutdown: nothing new is taken, connections close after their answer. */
    readonly draining: boolean;
    /** Begin the drain (server.ts, before app.close()). */
    startDraining(): void;
  }
}

/** Routes a probe calls: answered while draining, never rate-limited or shed. */
export const PROBE_ROUTES: readonly string[] = ["/livez", "/healthz", "/readyz"];

const Status = { type: "object", properties: { status: { type: "string" } } } as const;

/** Seconds a client should wait before trying again (this instance, or another). */
const RETRY_AFTER = "1";

export function installProbes(app: FastifyInstance): void {
  const state = { draining: false };
  app.decorate("draining", { getter: () => state.draining });
  app.decorate("startDraining", () => {
    state.draining = true;
  });
  const probes = new Set(PROBE_ROUTES);
  app.addHook("onRequest", (request, _reply, done) => {
    if (!state.draining || probes.has(request.routeOptions.url ?? "")) return done();
    done(new ProblemError(failure("not-ready", "the service is shutting down; retry on a new connection"), { "retry-after": RETRY_AFTER }));
  });
  // Once draining, each answer closes its connection (Node then ends it
  // after the response): a busy keep-alive connection does not outlive it.
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (state.draining) reply.header("connection", "close");
    done(null, payload);
  });

  const live = { config: { role: "public" as const }, schema: { response: { 200: Status } } };
  app.get("/livez", live, async () => ({ status: "ok" }));
  app.get("/healthz", live, async () => ({ status: "ok" }));
  app.get("/readyz", { config: { role: "public" }, schema: { response: { 200: Status, 503: Problem } } }, async (_request, reply) => {
    const health = state.draining ? { ready: false, cause: "the service is shutting down" } : await app.store.readiness();
    if (health.ready) return { status: "ready" };
    reply.header("retry-after", RETRY_AFTER);
    return sendProblem(reply, failure("not-ready", health.cause ?? "not ready"));
  });
}
