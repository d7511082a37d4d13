import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { Limit, MAX_ID, problems } from "../schemas/common.js";
import { Event } from "../schemas/resources.js";

export const EventQuery = Type.Object({
  // Sequence numbers are SQLite rowids; a JS number holds them exactly up to 2^53 - 1.
  after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: "Return events with seq strictly greater" })),
  limit: Type.Optional(Limit),
  groupId: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ID, description: "Only this group's attempts (indexed)" })),
}, { additionalProperties: false });

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get("/events", {
    config: { role: "reader" },
    schema: {
      querystring: EventQuery,
      response: { 200: Type.Object({ items: Type.Array(Event), next: Type.Integer({ description: "Pass as after to continue" }) }), ...problems() },
    },
  }, async (req, reply) => {
    // The page comes serialized (src/store/event-page.ts, in the shape of the
    // schema above): it is read and built off the event loop.
    const body = await app.store.eventPage({ after: req.query.after ?? 0, limit: req.query.limit ?? 100, groupId: req.query.groupId });
    // Fastify sends a string payload as it is; the type provider only knows objects.
    return reply.type("application/json; charset=utf-8").send(body as never);
  });
};
