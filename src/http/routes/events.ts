import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { failure } from "../../core/result.js";
import { EventStream } from "../event-stream.js";
import { sendProblem } from "../problem.js";
import { Limit, MAX_ID, problems } from "../schemas/common.js";
import { Event } from "../schemas/resources.js";

const Seq = { minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

export const EventQuery = Type.Object({
  // Sequence numbers are SQLite rowids; a JS number holds them exactly up to 2^53 - 1.
  after: Type.Optional(Type.Integer({
    ...Seq,
    description: "Events with seq strictly greater. A page starts at the oldest kept event without it; a stream (text/event-stream) "
      + "starts at the current end without it, and Last-Event-ID wins over it",
  })),
  limit: Type.Optional(Limit),
  groupId: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ID, description: "Only this group's events (indexed)" })),
}, { additionalProperties: false });

export const EventPage = Type.Object({
  items: Type.Array(Event),
  next: Type.Union([Type.Integer(), Type.Null()], { description: "Pass as after for the next page; null on the last page" }),
  last: Type.Integer({
    description: "The seq to poll after next time, on every page, the last included: the last event of this page, or the query's after when it is empty",
  }),
});

/** Whether the client asked for the stream: text/event-stream among its Accept media ranges, not refused with q=0. */
export function wantsStream(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(",").some((range) => {
    const [type, ...params] = range.split(";").map((part) => part.trim().toLowerCase());
    if (type !== "text/event-stream") return false;
    const q = params.find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

const DIGITS = /^\d{1,16}$/;

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const streams = new Set<EventStream>();
  let closing = false;
  // Open streams would hold app.close() (and SIGTERM) until their clients
  // left: end them first; their clients resume with Last-Event-ID.
  app.addHook("preClose", (done) => {
    closing = true;
    for (const stream of [...streams]) stream.end("shutdown");
    done();
  });

  function openStream(query: { after?: number | undefined; groupId?: number | undefined }, req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    const { eventStreams: max, eventStreamBuffer, eventHeartbeat } = app.limits;
    const header = req.headers["last-event-id"];
    const lastEventId = typeof header === "string" && header !== "" ? header.trim() : undefined;
    if (lastEventId !== undefined && !(DIGITS.test(lastEventId) && Number(lastEventId) <= Number.MAX_SAFE_INTEGER)) {
      return sendProblem(reply, failure("invalid-request", "Last-Event-ID must be an event seq (a non-negative integer)"),
        { errors: [{ field: "last-event-id", message: `must be a non-negative integer up to ${Number.MAX_SAFE_INTEGER}` }] });
    }
    if (closing) {
      reply.header("retry-after", "1");
      return sendProblem(reply, failure("not-ready", "the server is shutting down; reconnect with Last-Event-ID"));
    }
    if (streams.size >= max) {
      reply.header("retry-after", "1");
      return sendProblem(reply, failure("too-many-streams", `the server already serves its ${max} event streams; retry later`));
    }
    const after = lastEventId !== undefined ? Number(lastEventId) : query.after ?? app.store.eventLog().lastSeq;
    // The response is written here, not by Fastify: copy the headers the hooks set (request id, rate limit).
    reply.hijack();
    const res = reply.raw;
    const headers: Record<string, string | number | string[]> = {};
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value;
    res.writeHead(200, {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-store",
      // A proxy must pass each message on at once.
      "x-accel-buffering": "no",
      // The connection is the stream's: when the stream ends, so does it.
      "connection": "close",
    });
    req.raw.socket.setNoDelay(true);
    const stream = new EventStream(app.store, res, after, query.groupId,
      { bufferLimit: eventStreamBuffer, heartbeatMs: eventHeartbeat }, req.log, (ended) => streams.delete(ended));
    streams.add(stream);
    return undefined;
  }

  app.get("/events", {
    config: { role: "reader" },
    schema: {
      description: "The event log, oldest first. With Accept: text/event-stream, a Server-Sent Events stream instead of a page: "
        + "each committed event as `id: <seq>` and `data: <Event>`, heartbeat comments, resumable with Last-Event-ID (see docs/semantics.md)",
      querystring: EventQuery,
      response: { 200: EventPage, ...problems() },
    },
  }, async (req, reply) => {
    if (wantsStream(req.headers.accept)) return openStream(req.query, req, reply);
    // The page comes serialized (src/store/event-page.ts, in the shape of the
    // schema above): it is read and built off the event loop.
    const body = await app.store.eventPage({ after: req.query.after ?? 0, limit: req.query.limit ?? 100, groupId: req.query.groupId });
    // Fastify sends a string payload as it is; the type provider only knows objects.
    return reply.type("application/json; charset=utf-8").send(body as never);
  });
};
