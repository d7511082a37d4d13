// One request, with the retry policy: what may be sent again, when, and how
// long to wait. Built on Node's global fetch.
//
// Retried, with exponential backoff and full jitter (a random wait between 0
// and min(cap, base * 2^n), so that clients knocked over together do not
// come back together):
// - no answer: connection refused or reset, the per-request timeout;
// - 503 and 429 with Retry-After (overloaded, store-unavailable, rate-limited,
//   ...), waiting at least what the server asked; an answer asking for more
//   than the cap is given to the caller instead;
// - 409 idempotency-key-in-flight: the same request is still running.
// Never retried: any other answer, in particular every errno the contract
// returns (an EINVAL is a verdict, not a glitch; acting on it is
// attachWithRetry's job, not the transport's).
//
// Writes are retried safely because every POST, PATCH and DELETE carries an
// Idempotency-Key, the same on each retry: if the first one was executed
// and only its answer was lost, the server answers the retry with the first
// answer instead of running the operation again. Without keys
// (`idempotencyKeys: false`), a write is retried only when the connection
// was refused, i.e. the request never reached the server.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { isProblemDocument, problemError, TransportError } from "./errors.js";

export interface RetryPolicy {
  /** Tries per call, the first included (default 4). 1: never retry. */
  maxAttempts: number;
  /** ms: the first backoff's upper bound (default 100). */
  baseDelayMs: number;
  /** ms: no single wait exceeds this; nor is a longer Retry-After waited for (default 5000). */
  maxDelayMs: number;
}

export interface TransportOptions {
  /** The server, e.g. http://127.0.0.1:3000 (the /v1 prefix is the client's). */
  baseUrl: string;
  /** Bearer token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** ms each try may take before it is abandoned (default 30000); 0: none. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Send an Idempotency-Key with every write (default true). */
  idempotencyKeys?: boolean;
  /** Replaces Math.random for the jitter. */
  random?: () => number;
  /** Told before each wait for a retry (for a log line). */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  readonly method: Method;
  readonly path: string;
  /** The try that failed (1 for the first). */
  readonly attempt: number;
  readonly delayMs: number;
  /** The missing answer's error, or the ProblemError of a busy server. */
  readonly cause: unknown;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** `If-Match`: the version the caller last read (PATCH, DELETE and the moves). */
  ifMatch?: string;
  /** The write's Idempotency-Key; default a fresh UUID per call. */
  idempotencyKey?: string;
  /** ms each try of this call may take, instead of the client's timeoutMs; 0: none. */
  timeoutMs?: number;
}

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

export interface Request extends CallOptions {
  method: Method;
  /** Path under the base URL, e.g. /v1/groups/1/attach. */
  path: string;
  query?: Readonly<Record<string, string | number | boolean | undefined>>;
  body?: unknown;
}

export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 5000 };

/** Errors of the socket that mean "no answer", as undici reports them in `cause.code`. */
const CONNECTION_ERRORS = new Set([
  "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN",
  "UND_ERR_SOCKET", "UND_ERR_CLOSED", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT",
]);

/** Why a try got no answer, and whether the request can have reached the server. */
interface NoAnswer {
  readonly error: unknown;
  readonly sent: boolean;
}

export class Transport {
  readonly baseUrl: string;
  private readonly policy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly keys: boolean;
  private readonly random: () => number;

  constructor(private readonly options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.policy = { ...DEFAULT_RETRY, ...options.retry };
    if (!(this.policy.maxAttempts >= 1)) throw new RangeError("retry.maxAttempts must be at least 1");
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.keys = options.idempotencyKeys ?? true;
    this.random = options.random ?? Math.random;
  }

  /** Headers every request carries (the event stream adds its own). */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}), ...extra };
  }

  url(path: string, query?: Request["query"]): URL {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  async send<T>(request: Request): Promise<Answer<T>> {
    const write = request.method !== "GET";
    const key = write && this.keys ? request.idempotencyKey ?? randomUUID() : undefined;
    const headers = this.headers({
      accept: "application/json, application/problem+json",
      ...(request.body !== undefined ? { "content-type": "application/json" } : {}),
      ...(key !== undefined ? { "idempotency-key": sfString(key) } : {}),
      ...(request.ifMatch !== undefined ? { "if-match": request.ifMatch } : {}),
    });
    const init = {
      method: request.method, headers,
      ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
    };
    const url = this.url(request.path, request.query);
    const signal = request.signal;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const tried = await this.try(url, init, signal, request.timeoutMs ?? this.timeoutMs);
      const last = attempt >= this.policy.maxAttempts;
      if ("error" in tried) {
        const safe = !write || key !== undefined || !tried.sent;
        if (last || !safe) {
          throw new TransportError(`${request.method} ${url.pathname}: ${describe(tried.error)}${attempt > 1 ? ` (${attempt} tries)` : ""}`, attempt, { cause: tried.error });
        }
        await this.wait({ method: request.method, path: url.pathname, attempt, delayMs: this.backoff(attempt), cause: tried.error }, signal);
        continue;
      }
      const { response, text } = tried;
      const parsed = text.length > 0 ? parseJson(text) : null;
      if (response.ok) {
        if (parsed === undefined) throw new TransportError(`${request.method} ${url.pathname}: ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`, attempt);
        return { status: response.status, headers: response.headers, body: parsed as T };
      }
      if (!isProblemDocument(parsed)) {
        throw new TransportError(`${request.method} ${url.pathname}: ${response.status} ${response.statusText}, not a problem document: ${text.slice(0, 200)}`, attempt);
      }
      const retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
      const error = problemError(parsed, retryAfter);
      const wait = last ? null : this.retryWait(response.status, parsed.reason, retryAfter, attempt);
      if (wait === null) throw error;
      await this.wait({ method: request.method, path: url.pathname, attempt, delayMs: wait, cause: error }, signal);
    }
  }

  private async wait(info: RetryInfo, signal: AbortSignal | undefined): Promise<void> {
    this.options.onRetry?.(info);
    signal?.throwIfAborted();
    try {
      await sleep(info.delayMs, undefined, signal ? { signal } : {});
    } catch (error) {
      // The caller's reason, as fetch rejects with it.
      throw signal?.aborted ? signal.reason : error;
    }
  }

  /** One try: the answer read to its end, or why there is none. */
  private async try(
    url: URL, init: RequestInit & { method: Method }, signal: AbortSignal | undefined, timeoutMs: number,
  ): Promise<{ response: Response; text: string } | NoAnswer> {
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
    const signals = [signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const combined = signals.length > 0 ? AbortSignal.any(signals) : undefined;
    let response: Response;
    try {
      response = await fetch(url, { ...init, ...(combined ? { signal: combined } : {}) });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout?.aborted) return { error: timeout.reason, sent: true };
      if (isConnectionError(error)) return { error, sent: causeCode(error) !== "ECONNREFUSED" };
      // fetch's own refusals (a port it will not use, an unknown protocol): no answer will ever come.
      if (error instanceof TypeError) {
        throw new TransportError(`${init.method} ${url.pathname}: ${error.cause instanceof Error ? error.cause.message : error.message}`, 1, { cause: error });
      }
      throw error;
    }
    try {
      return { response, text: await response.text() };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      // The answer was cut short: the request reached the server.
      return { error: timeout?.aborted ? timeout.reason : error, sent: true };
    }
  }

  /** ms to wait before trying an answered request again, or null: give the answer to the caller. */
  private retryWait(status: number, reason: string | null, retryAfter: number | null, attempt: number): number | null {
    if (status === 409 && reason === "idempotency-key-in-flight") return this.backoff(attempt);
    if ((status === 503 || status === 429) && retryAfter !== null) {
      const asked = retryAfter * 1000;
      return asked > this.policy.maxDelayMs ? null : Math.max(asked, this.backoff(attempt));
    }
    return null;
  }

  /** Full jitter: uniform in [0, min(cap, base * 2^(attempt - 1))]. */
  backoff(attempt: number): number {
    const ceiling = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(this.random() * ceiling);
  }
}

/** An RFC 8941 sf-string, as the server wants the key. */
function sfString(key: string): string {
  return `"${key.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Retry-After in seconds (delta-seconds or an HTTP date), null when absent or unreadable. */
export function retryAfterSeconds(header: string | null): number | null {
  if (header === null) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** The JSON value, or undefined when the text is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Whether `error` says the connection failed or broke (as opposed to a bad URL or a bug). */
export function isConnectionError(error: unknown): boolean {
  const code = causeCode(error);
  return code !== null && CONNECTION_ERRORS.has(code);
}

function causeCode(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return null;
}

function describe(error: unknown): string {
  const code = causeCode(error);
  if (error instanceof Error && error.name === "TimeoutError") return "no answer in time";
  return code ?? (error instanceof Error ? error.message : String(error));
}
