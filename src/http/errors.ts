// Failures that are not the core's (bad input, unknown routes, a database
// that refused a write, bugs) answered in the same problem shape.
import type { FastifyError, FastifyInstance } from "fastify";
import type { FixedReason } from "../core/reasons.js";
import { failure } from "../core/result.js";
import { ReadsThrottledError, StoreUnavailableError } from "../store/store.js";
import { answerNoRoute, routesOf } from "./edge.js";
import { ProblemError, sendProblem } from "./problem.js";

function fieldOf(error: FastifyError): { field: string; message: string }[] {
  const context = error.validationContext ?? "body";
  return (error.validation ?? []).map((v) => {
    const params = v.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
    const path = v.instancePath.replace(/^\//, "").replace(/\//g, ".");
    const leaf = params.missingProperty ?? params.additionalProperty;
    const field = [context, path, leaf].filter(Boolean).join(".");
    const message = params.additionalProperty ? "is not a known field"
      : params.allowedValues ? `must be one of ${params.allowedValues.slice(0, 12).join(", ")}${params.allowedValues.length > 12 ? ", …" : ""}`
      : (v.message ?? "is invalid");
    return { field, message };
  });
}

/**
 * Client errors Fastify raises before validation, by Fastify's status; any
 * other 4xx is invalid-request (answered, like every reason, with the status
 * of src/http/status.ts).
 */
const CLIENT_ERRORS: Readonly<Record<number, FixedReason>> = {
  413: "body-too-large",
  414: "uri-too-long",
  415: "unsupported-media-type",
};

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ProblemError) return sendProblem(reply.headers(error.headers), error.problem);
    if (error.validation) {
      const errors = fieldOf(error);
      const detail = errors.map((e) => `${e.field} ${e.message}`).join("; ");
      return sendProblem(reply, failure("invalid-request", detail), { errors });
    }
    if (error instanceof ReadsThrottledError) {
      reply.header("retry-after", String(error.retryAfterSeconds));
      return sendProblem(reply, failure("overloaded", error.message));
    }
    if (error instanceof StoreUnavailableError) {
      request.log.error({ err: error.cause }, "database write failed");
      reply.header("retry-after", String(error.retryAfterSeconds));
      if (error.use === "read") {
        return sendProblem(reply, failure("store-unavailable", "the database cannot be reached; retry later (the server log has the cause under this request id)"));
      }
      const outcome = error.mayHaveApplied
        ? "the change reached the database but its commit was not confirmed, so it may or may not have been kept: read the resource back, or retry with the same Idempotency-Key"
        : "nothing was changed, retry later";
      return sendProblem(reply, failure("store-unavailable", `the database could not make this change durable; ${outcome} (the server log has the cause under this request id)`));
    }
    const status = error.statusCode ?? 500;
    if (status < 500) {
      const reason = CLIENT_ERRORS[status] ?? "invalid-request";
      // Content-type parser failures (FST_ERR_CTP_*: malformed JSON, empty body, bad length) are the body's.
      const extra = error.code?.startsWith("FST_ERR_CTP_") ? { errors: [{ field: "body", message: error.message }] } : undefined;
      const detail = status === 415 ? `the body must be JSON (Content-Type: application/json), not ${request.headers["content-type"] ?? "untyped"}` : error.message;
      return sendProblem(reply, failure(reason, detail), extra);
    }
    request.log.error({ err: error }, "unhandled error");
    return sendProblem(reply, failure("internal-error", "internal error; see the server log with this request id"));
  });

  const table = routesOf(app);
  app.setNotFoundHandler((request, reply) => answerNoRoute(table, request, reply));
}
