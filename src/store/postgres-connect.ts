// Opening one connection to the PostgreSQL database a URL names, with every
// way that can fail said in one sentence: the server does not answer, it
// refuses the user or the database, the URL is not a URL. The sentence names
// the database as host:port/database and never carries the password, so it
// can go to a log or a terminal as it is.
import pg from "pg";

/** The database cannot be reached or refused us; the message says where and why, without a password. */
export class PostgresConnectionError extends Error {}

/** How long to wait for a server that does not answer before saying so. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Socket errors that mean "nothing useful answered at that address". */
const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ENOENT"]);

function parse(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The text itself is not repeated: it may hold a password.
    throw new PostgresConnectionError("the PostgreSQL URL is not a valid URL (expected postgresql://user@host:port/database)");
  }
  if (parsed.protocol !== "postgresql:" && parsed.protocol !== "postgres:") {
    throw new PostgresConnectionError(`the PostgreSQL URL must start with postgresql:// (it starts with ${parsed.protocol}//)`);
  }
  return parsed;
}

/** `host:port/database` of a PostgreSQL URL: what a message may show of it. */
export function describePostgresUrl(url: string): string {
  const parsed = parse(url);
  const host = parsed.hostname || parsed.searchParams.get("host") || "localhost";
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || decodeURIComponent(parsed.username) || "postgres";
  return `${host}:${parsed.port || "5432"}/${database}`;
}

/** The error code of a socket error; Node wraps the attempts at several addresses in an AggregateError. */
function socketCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; errors?: unknown[] };
  if (typeof e.code === "string") return e.code;
  const inner = e.errors?.find((x) => typeof (x as { code?: unknown }).code === "string") as { code: string } | undefined;
  return inner?.code;
}

/** A PostgreSQL server's own error (it has a five-character SQLSTATE). */
export function isServerError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError || /^[0-9A-Z]{5}$/.test(String((error as { code?: unknown }).code ?? ""));
}

/** A connection that broke while in use: the server went away or cut us off. */
export function isConnectionLoss(error: unknown): boolean {
  const code = socketCode(error);
  if (code !== undefined && UNREACHABLE.has(code)) return true;
  // 57P01..57P03: the server is shutting down or crashed; 08xxx: connection exceptions.
  if (code !== undefined && (/^57P0[123]$/.test(code) || code.startsWith("08"))) return true;
  return /Connection terminated|Client has encountered a connection error|not queryable/i.test((error as Error)?.message ?? "");
}

function withoutPassword(message: string, url: string): string {
  let password = "";
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    // parse() has already said what is wrong with such a URL.
  }
  return password ? message.split(password).join("***") : message;
}

/** One sentence for a failure to connect to `url` (or a connection lost while in use, when `lost`). */
export function postgresConnectionError(url: string, error: unknown, lost = false): PostgresConnectionError {
  if (error instanceof PostgresConnectionError) return error;
  const where = describePostgresUrl(url);
  const code = socketCode(error);
  const message = (error as Error)?.message ?? String(error);
  let sentence: string;
  if (lost) {
    sentence = `lost the connection to the PostgreSQL database at ${where}: ${code && !isServerError(error) ? code : message}`;
  } else if (code !== undefined && UNREACHABLE.has(code)) {
    sentence = `cannot reach the PostgreSQL database at ${where}: ${code}`;
  } else if (/timeout/i.test(message) && !isServerError(error)) {
    sentence = `cannot reach the PostgreSQL database at ${where}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s`;
  } else {
    // Refused by the server itself: authentication, an unknown database, too many connections, TLS.
    sentence = `cannot connect to the PostgreSQL database at ${where}: ${message}`;
  }
  return new PostgresConnectionError(withoutPassword(sentence.replace(/\s*\n\s*/g, " "), url));
}

/**
 * One connected client, or PostgresConnectionError. An error the server
 * sends on an idle connection (it was terminated, the server stopped) would
 * otherwise be an unhandled 'error' event and end the process; it is kept
 * here and surfaces as the failure of the next query instead.
 */
export async function connectPostgres(url: string): Promise<pg.Client> {
  describePostgresUrl(url);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw postgresConnectionError(url, error);
  }
  return client;
}
