// Start-up configuration from flags and environment variables, validated
// before anything starts so a wrong value is one clear message, not a trace.
import { parseArgs } from "node:util";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly databaseFile: string;
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Topology JSON loaded at start-up (objects already present are kept). */
  readonly topologyFile: string | null;
  readonly migrationsDir: string;
  /** Most recent events kept in the log; 0 keeps all. */
  readonly eventRetention: number;
}

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export class ConfigError extends Error {}

const USAGE = `Usage: npm start -- [options]
  --host HOST          listen address            (HOST, default 127.0.0.1)
  --port PORT          listen port, 0 = any free (PORT, default 3000)
  --db FILE            SQLite database file      (DATABASE_FILE, default ./data/iommu-arbiter.db)
  --log-level LEVEL    ${LEVELS.join("|")} (LOG_LEVEL, default info)
  --topology FILE      topology JSON to load     (TOPOLOGY_FILE, default examples/intel-2s-server.json;
                       "none" loads nothing)
  --event-retention N  most recent events kept   (EVENT_RETENTION, default 1000000; 0 keeps all)`;

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: "string" }, port: { type: "string" }, db: { type: "string" },
        "log-level": { type: "string" }, topology: { type: "string" }, "event-retention": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) throw new ConfigError(USAGE);
  const pick = (flag: string, name: string): string | undefined => {
    const v = values[flag];
    return typeof v === "string" ? v : env[name];
  };

  const host = pick("host", "HOST") ?? "127.0.0.1";
  const portText = pick("port", "PORT") ?? "3000";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new ConfigError(`port must be an integer from 0 to 65535, got "${portText}"`);
  const level = pick("log-level", "LOG_LEVEL") ?? "info";
  if (!(LEVELS as readonly string[]).includes(level)) throw new ConfigError(`log level must be one of ${LEVELS.join(", ")}, got "${level}"`);
  const db = pick("db", "DATABASE_FILE") ?? path.join(PROJECT_ROOT, "data", "iommu-arbiter.db");
  if (db.trim() === "") throw new ConfigError("database file must not be empty");
  const topology = pick("topology", "TOPOLOGY_FILE") ?? path.join(PROJECT_ROOT, "examples", "intel-2s-server.json");
  const retentionText = pick("event-retention", "EVENT_RETENTION") ?? "1000000";
  if (!/^\d+$/.test(retentionText)) throw new ConfigError(`event retention must be a whole number (0 keeps every event), got "${retentionText}"`);

  return {
    host, port,
    databaseFile: path.resolve(db),
    logLevel: level as Config["logLevel"],
    topologyFile: topology === "none" ? null : path.resolve(topology),
    migrationsDir: path.join(PROJECT_ROOT, "prisma", "migrations"),
    eventRetention: Number(retentionText),
  };
}
