// A pino logger whose lines the test can read back, parsed.
import { pino, type Logger } from "pino";

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  /** pino's serialization of an `err` binding. */
  readonly err?: { readonly type: string; readonly message: string; readonly stack: string };
  readonly [key: string]: unknown;
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function captureLog(): { logger: Logger; lines: LogLine[]; matching(msg: RegExp): LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines, matching: (msg) => lines.filter((l) => msg.test(l.msg)) };
}
