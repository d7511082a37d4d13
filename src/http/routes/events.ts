import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { Limit, MAX_ID, problems } from "../schemas/common.js";
import { Event } from "../schemas/resources.js";
import { presentEvent } from "../present.js";

const EventQuery = Type.Object({
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
  }, async (req) => {
    const after = req.query.after ?? 0;
    const events = await app.store.events(after, req.query.limit ?? 100, { groupId: req.query.groupId });
    return { items: events.map(presentEvent), next: events.length > 0 ? events[events.length - 1]!.seq : after };
  });
};
