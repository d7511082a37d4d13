// Request ids: the client's X-Request-Id when it is a short, plain token, so
// a caller can follow its own id through our logs; anything else (too long,
// control characters, spaces, a list) is replaced, because the id is echoed
// in a header, written to every log line and returned in problem documents.
import type { IncomingMessage } from "node:http";
import { randomBytes } from "node:crypto";

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The client's id if acceptable, else null. */
export function acceptableRequestId(header: string | string[] | undefined): string | null {
  return typeof header === "string" && CLIENT_ID.test(header) ? header : null;
}

/** A genReqId for Fastify: the client's id if acceptable, else boot id + counter. */
export function requestIdGenerator(): (request: IncomingMessage) => string {
  const boot = randomBytes(3).toString("hex");
  let counter = 0;
  return (request) => acceptableRequestId(request.headers["x-request-id"]) ?? `${boot}-${(++counter).toString(36)}`;
}
