import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { Limit, MAX_ID, problems } from "../schemas/common.js";
import { Event } from "../schemas/resources.js";
import { wantsStream } from "../event-stream.js";

const EventQuery = Type.Object({
  // Sequence numbers are SQLite rowids; a JS number holds them exactly up to 2^53 - 1.
  // No schema default: a stream without `after` starts at the end of the log, a page at 0.
  after: Type.Optional(Type.Integer({
    minimum: 0, maximum: Number.MAX_SAFE_INTEGER,
    description: "Events with seq strictly greater (page: default 0; stream: default the end of the log, Last-Event-ID wins)",
  })),
  limit: Type.Optional(Limit),
  groupId: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ID, description: "Only this group's attempts (indexed)" })),
}, { additionalProperties: false });

const EventPage = Type.Object({
  items: Type.Array(Event),
  next: Type.Union([Type.Integer(), Type.Null()], { description: "Pass as after for the next page; null when this page reached the end of the log" }),
  last: Type.Integer({ description: "The last seq of this page (the query's after when it is empty): pass as after to poll for newer events" }),
});

const EventStream = Type.String({
  description: "Server-Sent Events: per event `id: <seq>` and `data: <Event as JSON>`; `event: gap` when the events to resume after were pruned; comment lines are heartbeats",
});

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get("/events", {
    config: { role: "reader" },
    schema: {
      description: "The event log, oldest first: a page as JSON, or with `Accept: text/event-stream` a live stream of every event as it becomes durable, resuming after `Last-Event-ID`.",
      querystring: EventQuery,
      headers: Type.Object({
        "last-event-id": Type.Optional(Type.String({ description: "Stream only: resume after this seq (EventSource sends it on reconnect)" })),
      }),
      response: {
        200: { content: { "application/json": { schema: EventPage }, "text/event-stream": { schema: EventStream } } },
        ...problems(),
      },
    },
  }, async (req, reply) => {
    if (wantsStream(req)) {
      return app.eventStreams.start(req, reply, { after: req.query.after ?? null, groupId: req.query.groupId });
    }
    // The page comes serialized (src/store/event-page.ts, in the shape of the
    // schema above): it is read and built off the event loop.
    const body = await app.store.eventPage({ after: req.query.after ?? 0, limit: req.query.limit ?? 100, groupId: req.query.groupId });
    // Fastify sends a string payload as it is; the type provider only knows objects.
    return reply.type("application/json; charset=utf-8").send(body as never);
  });
};
