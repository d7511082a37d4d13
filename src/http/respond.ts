// Running a core operation for a request and answering with its outcome.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Caller } from "../core/caller.js";
import type { Model } from "../core/model.js";
import { ok, type ErrnoError, type Result } from "../core/result.js";
import { answer, sendAnswer, type Answer } from "./answer.js";
import { AnsweredEarlierError } from "../store/store.js";
import { admit, judge, keyedRequest, REPLAYED, type Keyed } from "./idempotency.js";
import { checkIfMatch, parseIfMatch, type IfMatch, type Target } from "./preconditions.js";
import { headerProblem, problemAnswer } from "./problem.js";
import { etagOf } from "./version.js";

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

export interface RespondOptions<V, T = unknown> {
  /** The status of a success (default 200), or how the operation's result decides it; 204 sends no body. */
  readonly status?: number | ((result: T) => number);
  /**
   * A refusal the operation overrode (a must-succeed move): logged at warn,
   * as the kernel WARNs, with the request id.
   */
  readonly warning?: (result: T) => ErrnoError | undefined;
  /** The answer is one resource: send this version of it as the ETag. */
  readonly etag?: (value: V) => string;
  /** What If-Match is compared with; without one, only `If-Match: *` passes. */
  readonly target?: Target;
}

/**
 * Execute `op` through the store and build the whole answer (status and
 * serialized body, success or problem) in the same synchronous step, so it
 * shows exactly the state the operation left and is the very answer an
 * Idempotency-Key remembers. If-Match is judged in that step too.
 */
export async function respond<T, V>(
  reply: FastifyReply,
  op: (model: Model) => Result<T>,
  view: (model: Model, value: T) => V,
  options: RespondOptions<V, T> = {},
): Promise<void> {
  const request = reply.request;
  const ifMatch = parseIfMatch(request.headers["if-match"]);
  if (!ifMatch.ok) return finish(reply, headerProblem(reply, ifMatch));
  const keyed = keyedRequest(request);
  if (!keyed.ok) return finish(reply, headerProblem(reply, keyed));
  if (keyed.value === null) return finish(reply, await run(reply, op, view, options, ifMatch.value, null));

  let admission = await admit(reply.server.store, keyed.value);
  if (admission.kind === "run") {
    const { done } = admission;
    try {
      return await finish(reply, await run(reply, op, view, options, ifMatch.value, keyed.value));
    } catch (error) {
      // Another replica answered this key while this request was on its way.
      if (!(error instanceof AnsweredEarlierError)) throw error;
      admission = judge(error.answer, keyed.value);
    } finally {
      done();
    }
  }
  switch (admission.kind) {
    case "replay":
      reply.log.info({ idempotencyKey: keyed.value.key, status: admission.answer.status }, "replayed the remembered answer");
      return finish(reply, admission.answer, { [REPLAYED]: "true" });
    case "refuse":
      return finish(reply, problemAnswer(reply, admission.error));
  }
}

async function run<T, V>(
  reply: FastifyReply,
  op: (model: Model) => Result<T>,
  view: (model: Model, value: T) => V,
  options: RespondOptions<V, T>,
  ifMatch: IfMatch | null,
  keyed: Keyed | null,
): Promise<Answer> {
  // Built once: the store remembers exactly what is sent.
  let built: Answer | undefined;
  const answerOf = (r: Result<Answer>): Answer => (built ??= r.ok ? r.value : problemAnswer(reply, r.error));
  const result = await reply.server.store.execute((model): Result<Answer> => {
    // The target's version is a digest of its representation: computed only
    // when there is a condition to judge it against.
    if (ifMatch !== null) {
      const precondition = checkIfMatch(ifMatch, options.target ? options.target(model) : undefined);
      if (!precondition.ok) return precondition;
    }
    const r = op(model);
    if (!r.ok) return r;
    const warning = options.warning?.(r.value);
    if (warning) {
      reply.log.warn({ errno: warning.errno, reason: warning.reason, detail: warning.detail, ...warning.ids },
        "a must-succeed move overrode a refusal; the kernel WARNs and moves the group anyway");
    }
    const value = view(model, r.value);
    const headers = options.etag ? { etag: etagOf(options.etag(value)) } : undefined;
    const status = typeof options.status === "function" ? options.status(r.value) : options.status ?? 200;
    return ok(answer(reply, status, value, undefined, headers));
  }, keyed ? { remember: { ...keyed, answer: answerOf } } : undefined);
  return answerOf(result);
}

/** Read-only: answer from the model, or 404 with the lookup's problem. */
export async function respondRead<V>(
  reply: FastifyReply, view: (model: Model) => Result<V>, options: Pick<RespondOptions<V, V>, "etag"> = {},
): Promise<void> {
  const result = await reply.server.store.read(view);
  if (!result.ok) return finish(reply, problemAnswer(reply, result.error));
  const headers = options.etag ? { etag: etagOf(options.etag(result.value)) } : undefined;
  return finish(reply, answer(reply, 200, result.value, undefined, headers));
}

async function finish(reply: FastifyReply, a: Answer, extra?: Record<string, string>): Promise<void> {
  sendAnswer(reply, a, extra);
  // Fastify's documented way to finish an async handler that called send().
  await reply;
}
