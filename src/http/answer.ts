// One HTTP answer, built once as the bytes sent: the live reply and the answer
// remembered for an idempotent replay are the same object, so they cannot drift.
import type { FastifyReply } from "fastify";
import type { StoredAnswer } from "../store/store.js";

export type Answer = StoredAnswer;

export const JSON_TYPE = "application/json; charset=utf-8";
export const PROBLEM_TYPE = "application/problem+json; charset=utf-8";

/**
 * Serialize `value` with the route's compiled response schema for `status`
 * (what Fastify itself would use), or JSON.stringify where the route declares
 * none, such as the not-found handler. A 204 has no body.
 */
export function answer(
  reply: FastifyReply, status: number, value: unknown, contentType = JSON_TYPE, headers?: Record<string, string>,
): Answer {
  const body = status === 204 ? "" : (reply.getSerializationFunction(String(status)) ?? JSON.stringify)(value as Record<string, unknown>);
  return headers ? { status, contentType, body, headers } : { status, contentType, body };
}

/** Send an answer as built; `extra` headers are this reply's only (e.g. the replay marker). */
export function sendAnswer(reply: FastifyReply, a: Answer, extra?: Record<string, string>): FastifyReply {
  reply.code(a.status);
  if (a.headers) reply.headers(a.headers);
  if (extra) reply.headers(extra);
  if (a.status === 204) return reply.send();
  // A string with a JSON content type is sent as is, not serialized again.
  return reply.type(a.contentType).send(a.body);
}
