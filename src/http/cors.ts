// CORS for browser pages on other origins, off unless origins are listed
// (--cors-origins). Never with credentials: the API authenticates with a
// bearer token the page sends itself, not with cookies, so no origin is ever
// told it may send the browser's credentials, and "*" is "*", not a
// reflection of whatever Origin came.
import cors from "@fastify/cors";
import type { FastifyInstance } from "fastify";

/** Request headers a page may send: what the API reads. */
const ALLOWED_HEADERS = ["authorization", "content-type", "idempotency-key", "if-match", "if-none-match", "last-event-id", "x-request-id"];
/** Answer headers a page may read. */
const EXPOSED_HEADERS = ["etag", "location", "retry-after", "x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];

/** Register before authentication: a preflight carries no token and is answered in the hook. */
export async function installCors(app: FastifyInstance, origins: readonly string[] | null | undefined): Promise<void> {
  if (!origins || origins.length === 0) return;
  await app.register(cors, {
    origin: origins.includes("*") ? "*" : [...origins],
    credentials: false,
    methods: ["GET", "HEAD", "POST", "PATCH", "DELETE"],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    strictPreflight: true,
  });
}
