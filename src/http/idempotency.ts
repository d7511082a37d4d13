// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a client that
// sends a state-changing request with a key may send it again, for instance
// after a timeout, and the operation runs at most once. A retry with the same
// key and the same request gets the first answer again, byte for byte, with
// `Idempotent-Replayed: true`; the same key with another request is a 422;
// a retry while the first is still running is a 409. Keys are scoped per
// client (client.ts) and remembered by the store, in the same transaction as
// the operation's changes, for the configured time (--idempotency-ttl).
import { createHash } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { failure, type ErrnoError } from "../core/result.js";
import type { ArbiterStore, RememberedAnswer } from "../store/store.js";
import { clientOf } from "./client.js";
import type { Parsed } from "./problem.js";
import { canonicalJson } from "./version.js";

/** The header a replayed answer carries. */
export const REPLAYED = "idempotent-replayed";

/** A keyed request: who sent it, the key, and what the request was. */
export interface Keyed {
  readonly client: string;
  readonly key: string;
  readonly fingerprint: string;
}

// The key is an RFC 8941 sf-string: printable ASCII in double quotes, with
// `"` and `\` escaped by a backslash. 1 to 255 characters once unescaped.
const SF_STRING = /^"((?:[\x20\x21\x23-\x5B\x5D-\x7E]|\\["\\]){1,255})"$/;

/** The request's key; null without the header, refused when malformed. */
export function keyedRequest(request: FastifyRequest): Parsed<Keyed | null> {
  const header = request.headers["idempotency-key"];
  if (header === undefined) return { ok: true, value: null };
  // Several fields (forbidden by the draft) arrive joined or as an array: never one sf-string.
  const text = Array.isArray(header) ? header.join(", ") : header;
  const m = SF_STRING.exec(text.trim());
  if (!m) {
    return {
      ok: false, field: "headers.idempotency-key", reason: "invalid-idempotency-key",
      message: 'must be one quoted string of 1 to 255 printable ASCII characters, e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324"',
    };
  }
  const key = m[1]!.replace(/\\(["\\])/g, "$1");
  return { ok: true, value: { client: clientOf(request), key, fingerprint: fingerprintOf(request) } };
}

/**
 * What makes two requests "the same": method, URL, If-Match and the body as
 * validated (defaults applied, keys in any order), hashed.
 */
export function fingerprintOf(request: FastifyRequest): string {
  const parts = [request.method, request.url, request.headers["if-match"] ?? null, canonicalJson(request.body ?? null)];
  return createHash("sha256").update(JSON.stringify(parts)).digest("base64url");
}

export type Admission =
  | { readonly kind: "replay"; readonly answer: RememberedAnswer }
  | { readonly kind: "refuse"; readonly error: ErrnoError }
  | { readonly kind: "run"; readonly done: () => void };

/**
 * Keyed requests running now, per store: "client\0key" → fingerprint. In this
 * process only, which is exact because the store has a single writer
 * (src/store/lock.ts). A request stays here until its answer is durable, so a
 * retry never replays an answer the database might still refuse.
 */
const running = new WeakMap<ArbiterStore, Map<string, string>>();

/**
 * Decide a keyed request before it runs: replay the remembered answer, refuse
 * it, or let it run (call `done` once its answer is durable or it failed).
 * The request is registered as running before the store is asked (which may
 * take a round trip to the database), so two copies of a request in this
 * process cannot both be let through. Across replicas, the store itself
 * finds a key answered meanwhile (AnsweredEarlierError).
 */
export async function admit(store: ArbiterStore, keyed: Keyed): Promise<Admission> {
  let inFlight = running.get(store);
  if (!inFlight) running.set(store, (inFlight = new Map()));
  const slot = `${keyed.client}\0${keyed.key}`;
  const current = inFlight.get(slot);
  if (current !== undefined) return { kind: "refuse", error: current === keyed.fingerprint ? IN_FLIGHT : REUSED };
  inFlight.set(slot, keyed.fingerprint);
  const done = () => inFlight.delete(slot);
  let stored: RememberedAnswer | undefined;
  try {
    stored = await store.remembered(keyed.client, keyed.key);
  } catch (error) {
    done();
    throw error;
  }
  if (!stored) return { kind: "run", done };
  done();
  return judge(stored, keyed);
}

/** A remembered answer for this key: replayed if it answered this very request, else the key is refused as reused. */
export function judge(stored: RememberedAnswer, keyed: Keyed): Admission {
  return stored.fingerprint === keyed.fingerprint ? { kind: "replay", answer: stored } : { kind: "refuse", error: REUSED };
}

const IN_FLIGHT: ErrnoError = failure("idempotency-key-in-flight",
  "a request with this Idempotency-Key is still being processed; retry it once that one has been answered");
const REUSED: ErrnoError = failure("idempotency-key-reused",
  "this Idempotency-Key was used for another request (method, URL, If-Match or body differ); use a new key for a new request");
