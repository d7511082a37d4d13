// Who a request comes from, as far as idempotency keys are concerned: keys
// are scoped per client, so two clients may pick the same key. Every request
// is anonymous today; authentication will return the authenticated client's
// name here. Kept in its own module so that is a one-line change.
import type { FastifyRequest } from "fastify";

export function clientOf(_request: FastifyRequest): string {
  return "anonymous";
}
