// Start-up configuration, declared once: each setting names its flag, its
// environment variable, its type, its default and its help line. The parser,
// the validation and the usage text are all derived from this table, so a
// new setting is one entry here and one field in `Config`.
import { parseArgs } from "node:util";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_LIMITS } from "./core/quota.js";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export class ConfigError extends Error {}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LEVELS)[number];

type Kind =
  | { readonly type: "string"; readonly nonEmpty?: boolean }
  | { readonly type: "integer"; readonly min: number; readonly max: number }
  | { readonly type: "choice"; readonly values: readonly string[] }
  | { readonly type: "boolean" };

interface Setting {
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  /** Text form of the default, as a user would type it; null: unset. */
  readonly fallback: string | null;
  readonly help: string;
  /** How messages name the setting, when its flag does not read well. */
  readonly label?: string;
}

/** Every setting the service reads, in the order the usage text lists them. */
export const SETTINGS = {
  host: { flag: "host", env: "HOST", kind: { type: "string", nonEmpty: true }, fallback: "127.0.0.1", help: "listen address" },
  port: { flag: "port", env: "PORT", kind: { type: "integer", min: 0, max: 65535 }, fallback: "3000", help: "listen port, 0 = any free" },
  databaseFile: {
    flag: "db", env: "DATABASE_FILE", label: "database file", kind: { type: "string", nonEmpty: true }, fallback: null,
    help: "SQLite database file (default ./data/iommu-arbiter.db)",
  },
  logLevel: { flag: "log-level", env: "LOG_LEVEL", kind: { type: "choice", values: LEVELS }, fallback: "info", help: "log level" },
  topologyFile: {
    flag: "topology", env: "TOPOLOGY_FILE", kind: { type: "string", nonEmpty: true }, fallback: null,
    help: 'topology JSON to load (default examples/intel-2s-server.json; "none" loads nothing)',
  },
  eventRetention: {
    flag: "event-retention", env: "EVENT_RETENTION", kind: { type: "integer", min: 0, max: Number.MAX_SAFE_INTEGER }, fallback: "1000000",
    help: "most recent events kept; 0 keeps all",
  },
  tokensFile: {
    flag: "tokens", env: "TOKENS_FILE", label: "token file", kind: { type: "string", nonEmpty: true }, fallback: null,
    help: "bearer-token table (JSON of SHA-256 digests, see README); unset with TOKENS unset: open mode, loopback only",
  },
  tokensJson: {
    flag: "tokens-json", env: "TOKENS", label: "TOKENS", kind: { type: "string", nonEmpty: true }, fallback: null,
    help: "the token table itself, as JSON, instead of a file",
  },
  objectQuota: {
    flag: "object-quota", env: "OBJECT_QUOTA", kind: { type: "integer", min: 1, max: 1_000_000_000 }, fallback: String(DEFAULT_LIMITS.objectsPerClient),
    help: "containers + domains one client may have created",
  },
  maxFaults: {
    flag: "max-faults", env: "MAX_FAULTS", kind: { type: "integer", min: 1, max: 1_000_000_000 }, fallback: String(DEFAULT_LIMITS.activeFaults),
    help: "injected faults active at once",
  },
  maxFaultCount: {
    flag: "max-fault-count", env: "MAX_FAULT_COUNT", kind: { type: "integer", min: 1, max: 1_000_000 }, fallback: String(DEFAULT_LIMITS.faultCount),
    help: "attach ops one injected fault may fail (its count)",
  },
} as const satisfies Record<string, Setting>;

type SettingName = keyof typeof SETTINGS;

type ValueOf<K extends Kind> =
  K extends { type: "integer" } ? number
  : K extends { type: "boolean" } ? boolean
  : K extends { type: "choice"; values: readonly (infer V)[] } ? V
  : string;

/** The settings as parsed, before paths are resolved. */
export type Settings = { -readonly [N in SettingName]: (typeof SETTINGS)[N]["fallback"] extends null
  ? ValueOf<(typeof SETTINGS)[N]["kind"]> | null
  : ValueOf<(typeof SETTINGS)[N]["kind"]> };

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly databaseFile: string;
  readonly logLevel: LogLevel;
  /** Topology JSON loaded at start-up; null loads nothing. */
  readonly topologyFile: string | null;
  readonly migrationsDir: string;
  /** Most recent events kept in the log; 0 keeps all. */
  readonly eventRetention: number;
  /** Token table file; null (and tokensJson null): open development mode. */
  readonly tokensFile: string | null;
  /** The token table as JSON text (TOKENS), instead of a file. */
  readonly tokensJson: string | null;
  readonly objectQuota: number;
  readonly maxFaults: number;
  readonly maxFaultCount: number;
}

export function usage(): string {
  const rows = Object.values(SETTINGS as Record<string, Setting>).map((s) => {
    const left = `  --${s.flag} ${s.kind.type === "boolean" ? "" : s.kind.type === "integer" ? "N" : "VALUE"}`;
    const choices = s.kind.type === "choice" ? ` (${s.kind.values.join("|")})` : "";
    const fallback = s.fallback !== null ? `, default ${s.fallback}` : "";
    return `${left.padEnd(24)} ${s.help}${choices} [${s.env}${fallback}]`;
  });
  return ["Usage: npm start -- [options]", ...rows].join("\n");
}

function parseValue(setting: Setting, text: string): string | number | boolean {
  const { kind } = setting;
  const name = setting.label ?? setting.flag.replace(/-/g, " ");
  switch (kind.type) {
    case "string":
      if (kind.nonEmpty && text.trim() === "") throw new ConfigError(`${name} must not be empty`);
      return text;
    case "integer": {
      // Digits only: "0x10", "1e3" and " 5" are typos here, not numbers.
      const n = Number(text);
      if (!/^\d+$/.test(text) || n < kind.min || n > kind.max) {
        throw new ConfigError(`${name} must be an integer from ${kind.min} to ${kind.max}, got "${text}"`);
      }
      return n;
    }
    case "choice":
      if (!kind.values.includes(text)) throw new ConfigError(`${name} must be one of ${kind.values.join(", ")}, got "${text}"`);
      return text;
    case "boolean":
      if (!["true", "false", "1", "0"].includes(text)) throw new ConfigError(`${name} must be true or false, got "${text}"`);
      return text === "true" || text === "1";
  }
}

/** Flags win over the environment, the environment over the defaults. */
export function parseSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  const table = SETTINGS as Record<string, Setting>;
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const s of Object.values(table)) options[s.flag] = { type: s.kind.type === "boolean" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n${usage()}`);
  }
  if (values.help) throw new ConfigError(usage());
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, s] of Object.entries(table)) {
    const given = values[s.flag];
    if (typeof given === "boolean") out[name] = given;
    else {
      const text = given ?? env[s.env] ?? s.fallback;
      out[name] = text === null ? null : parseValue(s, text);
    }
  }
  return out as Settings;
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const s = parseSettings(argv, env);
  const topology = s.topologyFile ?? path.join(PROJECT_ROOT, "examples", "intel-2s-server.json");
  return {
    host: s.host,
    port: s.port,
    databaseFile: path.resolve(s.databaseFile ?? path.join(PROJECT_ROOT, "data", "iommu-arbiter.db")),
    logLevel: s.logLevel,
    topologyFile: topology === "none" ? null : path.resolve(topology),
    migrationsDir: path.join(PROJECT_ROOT, "prisma", "migrations"),
    eventRetention: s.eventRetention,
    tokensFile: s.tokensFile === null ? null : path.resolve(s.tokensFile),
    tokensJson: s.tokensJson,
    objectQuota: s.objectQuota,
    maxFaults: s.maxFaults,
    maxFaultCount: s.maxFaultCount,
  };
}
