// The Fastify app factory. Tests build it and call `inject`, the server
// entry point builds it and listens: one app, two ways to drive it.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { randomBytes } from "node:crypto";
import fastJsonStringify from "fast-json-stringify";
import { Ajv } from "ajv";
import type { ArbiterStore } from "../store/store.js";
import { DEFAULT_LIMITS, type Limits } from "../core/quota.js";
import { installAuth } from "./auth.js";
import { installErrorHandling } from "./errors.js";
import type { TokenTable } from "./tokens.js";
import { routes } from "./routes/index.js";

declare module "fastify" {
  interface FastifyInstance {
    store: ArbiterStore;
    /** Quotas the routes pass to the core. */
    limits: Limits;
  }
}

export interface AppOptions {
  readonly store: ArbiterStore;
  /** pino options, or false for silence (tests). */
  readonly logger?: FastifyServerOptions["logger"];
  /** Bearer tokens; absent or null: open development mode (src/http/auth.ts). */
  readonly tokens?: TokenTable | null;
  readonly limits?: Limits;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  // Request ids: the client's X-Request-Id if it sent one, else boot id + counter.
  const boot = randomBytes(3).toString("hex");
  let counter = 0;
  const app = Fastify({
    logger: options.logger ?? false,
    requestIdHeader: "x-request-id",
    genReqId: () => `${boot}-${(++counter).toString(36)}`,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Two validators: path and query values arrive as text and are converted
  // ("7" → 7); JSON bodies are taken as sent ({"unitId":"7"} is a 400, not 7).
  // Unknown fields are errors everywhere: a typo must not be silently dropped.
  const strict = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false } as const;
  const bodyAjv = new Ajv({ ...strict, coerceTypes: false });
  const urlAjv = new Ajv({ ...strict, coerceTypes: "array" });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? bodyAjv : urlAjv).compile(schema));

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
  app.decorate("limits", options.limits ?? DEFAULT_LIMITS);
  // Callback style, not async: this runs on every request.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  installErrorHandling(app);
  installAuth(app, options.tokens ?? null);
  app.get("/healthz", { config: { role: "public" }, schema: { response: { 200: { type: "object", properties: { status: { type: "string" } } } } } },
    async () => ({ status: "ok" }));
  await app.register(routes, { prefix: "/v1" });
  return app;
}
