// Who a request comes from, as far as idempotency keys are concerned: keys
// are scoped per client, so two clients may pick the same key. The client is
// the bearer token's name; in open development mode everyone is "anonymous".
import type { FastifyRequest } from "fastify";

export function clientOf(request: FastifyRequest): string {
  return request.identity?.name ?? "anonymous";
}
