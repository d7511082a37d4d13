// What the CLI prints, and the exit status it ends with.
//
// Exit status: 0 on success; for a refusal the errno's Linux number (22
// EINVAL, 16 EBUSY, 19 ENODEV, 1 EPERM, 2 ENOENT, ...), with one line on
// stderr; 2 for a usage error (commander's message); 69 (EX_UNAVAILABLE,
// sysexits.h; no errno the service answers) when the server could not be
// reached or answered something that is not the API.
import { ErrnoError, ProblemError, TransportError } from "../client/index.js";

export const EXIT_USAGE = 2;
export const EXIT_UNAVAILABLE = 69;

/** A failure the CLI itself reports (a usage error found after parsing). */
export class UsageError extends Error {}

export interface Printer {
  readonly json: boolean;
  /** A table for people, the value as JSON for scripts. */
  table<T>(value: unknown, rows: readonly T[], columns: readonly Column<T>[]): void;
  /** Key and value per line for people, the value as JSON for scripts. */
  record(value: unknown, fields: readonly [string, unknown][]): void;
  line(text: string): void;
}

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => unknown;
}

const colour = (stream: NodeJS.WriteStream) => stream.isTTY === true && process.env.NO_COLOR === undefined;

export function cell(value: unknown): string {
  if (value === null || value === undefined) return "-";
  if (Array.isArray(value)) return value.length === 0 ? "-" : value.map(cell).join(",");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Aligned columns, two spaces apart; the header bold on a terminal. */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[], bold = false): string {
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const format = (row: readonly string[]) => row.map((v, i) => (i === row.length - 1 ? v : v.padEnd(widths[i]!))).join("  ").trimEnd();
  const header = format(columns.map((c) => c.header));
  return [bold ? `\x1b[1m${header}\x1b[0m` : header, ...cells.map(format)].join("\n") + "\n";
}

export function printer(json: boolean, out: NodeJS.WriteStream = process.stdout): Printer {
  return {
    json,
    table(value, rows, columns) {
      out.write(json ? `${JSON.stringify(value)}\n` : formatTable(rows, columns, colour(out)));
    },
    record(value, fields) {
      if (json) {
        out.write(`${JSON.stringify(value)}\n`);
        return;
      }
      const width = Math.max(...fields.map(([k]) => k.length));
      out.write(fields.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`).join("\n") + "\n");
    },
    line(text) {
      if (!json) out.write(`${text}\n`);
    },
  };
}

/** The stderr line and exit status for a failure. */
export function failureReport(error: unknown): { message: string; status: number } {
  if (error instanceof ProblemError) {
    const tags = [
      ...(error.errno === "EINVAL" ? [error.soft ? "soft" : "hard"] : []),
      ...(error instanceof ErrnoError && error.driverErrno ? [`driver ${error.driverErrno}`] : []),
    ];
    const label = `${error.errno ?? error.status}${tags.length > 0 ? ` (${tags.join(", ")})` : ""}`;
    return { message: `${label}: ${error.detail ?? error.title}`, status: error.errnoNumber ?? EXIT_UNAVAILABLE };
  }
  if (error instanceof TransportError) return { message: error.message, status: EXIT_UNAVAILABLE };
  if (error instanceof UsageError) return { message: error.message, status: EXIT_USAGE };
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return { message: `${error instanceof Error ? error.message : String(error)}${cause}`, status: 1 };
}
