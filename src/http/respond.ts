// Running a core operation for a request and answering with its outcome.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Caller } from "../core/caller.js";
import type { Topology } from "../core/model.js";
import { ok, type Result } from "../core/result.js";
import { sendProblem } from "./problem.js";

/**
 * Who is asking: the authenticated client (src/http/auth.ts), or in open
 * development mode the `owner` the request body names (the auth hook refuses
 * a body `owner` from an authenticated caller, so the two never conflict).
 */
export function callerOf(request: FastifyRequest, owner?: string | null): Caller {
  const identity = request.identity;
  if (identity !== null) return { owner: identity.name, admin: identity.role === "admin" };
  return { owner: owner ?? null };
}

/**
 * Execute `op` through the store and present its value in the same
 * synchronous step, so the answer shows exactly the state the operation left.
 */
export async function respond<T, V>(
  reply: FastifyReply,
  op: (model: Topology) => Result<T>,
  view: (model: Topology, value: T) => V,
  status = 200,
): Promise<void> {
  const result = await reply.server.store.execute((model) => {
    const r = op(model);
    return r.ok ? ok(view(model, r.value)) : r;
  });
  if (!result.ok) sendProblem(reply, result.error);
  else if (status === 204) reply.code(204).send();
  else reply.code(status).send(result.value);
  // Fastify's documented way to finish an async handler that called send().
  await reply;
}

/** Read-only: answer from the model, or 404 with the lookup's problem. */
export async function respondRead<V>(reply: FastifyReply, view: (model: Topology) => Result<V>): Promise<void> {
  const result = await reply.server.store.read(view);
  if (!result.ok) sendProblem(reply, result.error);
  else reply.send(result.value);
  await reply;
}
