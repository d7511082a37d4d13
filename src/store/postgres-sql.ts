// The PostgreSQL side of the write path's SQL: the steps encode.ts builds
// (written with `?` placeholders, one statement per row change) turned into
// one text the simple query protocol sends in a single round trip, and the
// connection settings every store connection uses.
//
// Values are inlined as quoted literals (pg's escapeLiteral, the same
// quoting libpq's PQescapeLiteral does). A quoted literal has no type until
// PostgreSQL gives it the column's, so the cells encode.ts makes for SQLite
// (booleans as 0/1, JSON as text, times as ISO text) are stored as the
// columns' own types. encode.ts has already refused what no database stores
// exactly (NUL, lone surrogates, unsafe integers).
import pg from "pg";
import type { Cell, Step } from "./encode.js";

export function literal(cell: Cell): string {
  if (cell === null) return "NULL";
  // Digits, a sign and a point need no escaping.
  if (typeof cell === "number") return `'${cell}'`;
  return pg.escapeLiteral(cell);
}

/** One statement with its parameters inlined. */
export function inline(step: Step): string {
  const parts = step.sql.split("?");
  if (parts.length - 1 !== step.params.length) throw new Error(`statement has ${parts.length - 1} placeholders for ${step.params.length} values: ${step.sql}`);
  let out = parts[0]!;
  for (let i = 0; i < step.params.length; i++) out += literal(step.params[i]!) + parts[i + 1]!;
  return out;
}

/**
 * Type parsers for the store's connections: BIGINT as a number (the store
 * writes only safe integers), and TIMESTAMP (without time zone: Prisma's
 * DateTime, always UTC here) as ISO 8601 text in UTC, not as a Date in the
 * process's local time zone.
 */
const TIMESTAMP = 1114;
const INT8 = 20;
export const STORE_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === INT8) return (text: string) => Number(text);
    if (oid === TIMESTAMP) return (text: string) => new Date(`${text.replace(" ", "T")}Z`).toISOString();
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * Errors that mean the connection (or the server) is gone, as opposed to
 * PostgreSQL refusing a statement: network errors, the server shutting
 * down or restarting (class 57P), connection failures (class 08), and the
 * client's own "connection terminated" errors.
 */
export function isConnectionLoss(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = String((error as { code?: unknown }).code ?? "");
  if (code.startsWith("08") || code.startsWith("57P") || code === "53300") return true;
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable|Connection ended/i.test(error.message);
}
