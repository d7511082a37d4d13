// The Fastify app factory. Tests build it and call `inject`, the server
// entry point builds it and listens: one app, two ways to drive it.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { randomBytes } from "node:crypto";
import fastJsonStringify from "fast-json-stringify";
import type { ArbiterStore } from "../store/store.js";
import { edgeServerOptions, installEdge } from "./edge.js";
import { installErrorHandling } from "./errors.js";
import { routes } from "./routes/index.js";
import { validatorCompiler } from "./validation.js";

declare module "fastify" {
  interface FastifyInstance {
    store: ArbiterStore;
  }
}

export interface AppOptions {
  readonly store: ArbiterStore;
  /** pino options, or false for silence (tests). */
  readonly logger?: FastifyServerOptions["logger"];
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  // Request ids: the client's X-Request-Id if it sent one, else boot id + counter.
  const boot = randomBytes(3).toString("hex");
  let counter = 0;
  const app = Fastify({
    logger: options.logger ?? false,
    requestIdHeader: "x-request-id",
    genReqId: () => `${boot}-${(++counter).toString(36)}`,
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
  // Callback style, not async: this runs on every request.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    done();
  });
  installEdge(app);
  installErrorHandling(app);
  app.get("/healthz", { schema: { response: { 200: { type: "object", properties: { status: { type: "string" } } } } } },
    async () => ({ status: "ok" }));
  await app.register(routes, { prefix: "/v1" });
  return app;
}
