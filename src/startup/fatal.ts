// How a failed start is told: one line on stderr, `iommu-arbiter: ` and the
// cause, and exit code 2, whatever failed. The errors below are the causes
// the service names itself; anything else is still one line, and its stack
// goes to the log at debug level.
import type { Logger } from "pino";
import { ConfigError } from "../config.js";
import { DatabaseFileError } from "../store/file-check.js";
import { HardLinkedDatabaseError, StoreLockedError } from "../store/lock.js";
import { MigrationError } from "../store/migrate.js";
import { PostgresConnectionError } from "../store/postgres-connect.js";
import { ListenError } from "./listen.js";
import { TopologyConflictError } from "./topology.js";

export const STARTUP_FAILED = 2;

const KNOWN = [ConfigError, ListenError, DatabaseFileError, StoreLockedError, HardLinkedDatabaseError, MigrationError, PostgresConnectionError, TopologyConflictError];

export function isKnownStartupError(error: unknown): boolean {
  return KNOWN.some((kind) => error instanceof kind);
}

/** The single line, without the prefix; never contains a newline. */
export function startupFailureLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = isKnownStartupError(error) ? message : `start-up failed: ${message}`;
  return line.replace(/\s*\n\s*/g, " ").trim();
}

export function reportStartupFailure(error: unknown, logger: Logger | null): void {
  if (!isKnownStartupError(error)) logger?.debug({ err: error }, "start-up failed");
  process.stderr.write(`iommu-arbiter: ${startupFailureLine(error)}\n`);
}
