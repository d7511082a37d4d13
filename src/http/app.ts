// The Fastify app factory. Tests build it and call `inject`, the server
// entry point builds it and listens: one app, two ways to drive it.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import fastJsonStringify from "fast-json-stringify";
import type { ArbiterStore } from "../store/store.js";
import { DEFAULT_QUOTAS, type Quotas } from "../core/quota.js";
import { DEFAULT_IOMMUFD_PARAMS, type IommufdParams } from "../core/iommufd-device.js";
import { installAuth } from "./auth.js";
import { edgeServerOptions, installEdge } from "./edge.js";
import { installErrorHandling } from "./errors.js";
import { DEFAULT_STREAM_LIMITS, EventStreams, type StreamLimits } from "./event-stream.js";
import { installLimits, resolveLimits, serverOptions, type LimitOptions } from "./limits.js";
import { installOpenApi } from "./openapi.js";
import { installMetrics } from "./metrics.js";
import { installProbes } from "./probes.js";
import { installCors } from "./cors.js";
import { installPage } from "./page.js";
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
    /** The open live event streams (GET /v1/events as text/event-stream). */
    eventStreams: EventStreams;
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
  /** GET /metrics without a token (--metrics-public); default: the reader role. */
  readonly metricsPublic?: boolean;
  /** Origins CORS allows ("*": any); unset or null: no CORS headers (--cors-origins). */
  readonly corsOrigins?: readonly string[] | null;
  /** Live event streams; each bound left out takes its default (src/http/event-stream.ts). */
  readonly eventStreams?: Partial<StreamLimits>;
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
    // On close: idle keep-alive connections are closed at once; busy ones
    // after their answer (probes.ts). New requests meanwhile get our own
    // problem document (probes.ts), not Fastify's plain 503.
    forceCloseConnections: "idle",
    return503OnClosing: false,
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
  const streams = new EventStreams(options.store, { ...DEFAULT_STREAM_LIMITS, ...options.eventStreams });
  app.decorate("eventStreams", streams);
  // Before the server stops listening and waits for its connections: a
  // stream never ends by itself.
  app.addHook("preClose", (done) => {
    streams.closeAll();
    done();
  });
  // Callback style, not async: this runs on every request.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  installEdge(app);
  installErrorHandling(app);
  await installCors(app, options.corsOrigins);
  installAuth(app, options.tokens ?? null);
  await installLimits(app, limits);
  // After the limits (its own routes are limited like any read), before
  // every other route (it records them as they are added).
  await installOpenApi(app);
  installProbes(app);
  await installMetrics(app, { role: options.metricsPublic ? "public" : "reader" });
  await app.register(routes, { prefix: "/v1" });
  // The live topology page (public/): a reader of the API like any client.
  await installPage(app);
  return app;
}
