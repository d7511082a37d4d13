// The Fastify app factory. Tests build it and call `inject`, the server
// entry point builds it and listens: one app, two ways to drive it.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import fastJsonStringify from "fast-json-stringify";
import type { ArbiterStore } from "../store/store.js";
import type { Limits } from "../config.js";
import { DEFAULT_QUOTAS, type Quotas } from "../core/quota.js";
import { DEFAULT_IOMMUFD_PARAMS, type IommufdParams } from "../core/iommufd-device.js";
import { failure } from "../core/result.js";
import { installAuth } from "./auth.js";
import { edgeServerOptions, installEdge } from "./edge.js";
import { installErrorHandling } from "./errors.js";
import { sendProblem } from "./problem.js";
import { Problem } from "./schemas/common.js";
import { installLimits, resolveLimits, serverOptions, type LimitOptions } from "./limits.js";
import { requestIdGenerator } from "./request-id.js";
import type { TokenTable } from "./tokens.js";
import { routes } from "./routes/index.js";
import { validatorCompiler } from "./validation.js";

declare module "fastify" {
  interface FastifyInstance {
    store: ArbiterStore;
    /** Quotas the routes pass to the core. */
    quotas: Quotas;
    /** The host's iommufd module parameters the routes pass to the core. */
    iommufdParams: IommufdParams;
    /** Sizes, timeouts and budgets in force (src/config.ts). */
    limits: Limits;
  }
}

export interface AppOptions {
  readonly store: ArbiterStore;
  /** pino options, or false for silence (tests). */
  readonly logger?: FastifyServerOptions["logger"];
  /** Timeouts, sizes and budgets; each one left out takes its default (src/config.ts). */
  readonly limits?: LimitOptions;
  /** A logger the caller made (the server makes its own first); wins over `logger`. */
  readonly loggerInstance?: FastifyBaseLogger;
  /** Bearer tokens; absent or null: open development mode (src/http/auth.ts). */
  readonly tokens?: TokenTable | null;
  /** What one client may make the service hold; unset: the defaults of src/core/quota.ts. */
  readonly quotas?: Quotas;
  /** iommufd's module parameters (allow_unsafe_interrupts); unset: the module's defaults. */
  readonly iommufdParams?: IommufdParams;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const limits = resolveLimits(options.limits);
  const app = Fastify({
    ...(options.loggerInstance ? { loggerInstance: options.loggerInstance } : { logger: options.logger ?? false }),
    // genReqId reads X-Request-Id itself, to refuse unbounded or unsafe ids.
    requestIdHeader: false,
    genReqId: requestIdGenerator(),
    ...serverOptions(limits),
    ...edgeServerOptions(),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler());

  // One compiled serializer per schema object, not per route and status:
  // every route answers its errors with the same Problem schema, and
  // compiling it ~200 times cost ~13 MB of resident memory.
  const serializers = new WeakMap<object, (data: unknown) => string>();
  app.setSerializerCompiler(({ schema }) => {
    let serialize = serializers.get(schema);
    if (!serialize) {
      serialize = fastJsonStringify(schema as Parameters<typeof fastJsonStringify>[0]) as (data: unknown) => string;
      serializers.set(schema, serialize);
    }
    return serialize;
  });

  app.decorate("store", options.store);
  app.decorate("quotas", options.quotas ?? DEFAULT_QUOTAS);
  app.decorate("iommufdParams", options.iommufdParams ?? DEFAULT_IOMMUFD_PARAMS);
  app.decorate("limits", limits);
  // Callback style, not async: this runs on every request.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  installEdge(app);
  installErrorHandling(app);
  installAuth(app, options.tokens ?? null);
  await installLimits(app, limits);
  // Liveness: the process answers. Readiness: the store takes changes now
  // (not while the disk refuses writes or the model is being rebuilt).
  const Status = { type: "object", properties: { status: { type: "string" } } } as const;
  app.get("/healthz", { config: { role: "public" }, schema: { response: { 200: Status } } }, async () => ({ status: "ok" }));
  app.get("/readyz", { config: { role: "public" }, schema: { response: { 200: Status, 503: Problem } } }, async (_request, reply) => {
    const health = app.store.health();
    if (health.ready) return { status: "ready" };
    reply.header("retry-after", "1");
    return sendProblem(reply, failure("not-ready", health.cause ?? "not ready"));
  });
  await app.register(routes, { prefix: "/v1" });
  return app;
}
