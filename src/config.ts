// Start-up configuration, declared once: each setting names its flag, its
// environment variable, its type, its default and its help line. The parser,
// the validation and the usage text are all derived from this table, so a
// new setting is one entry here and one field in `Config`.
import { parseArgs } from "node:util";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_QUOTAS } from "./core/quota.js";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export class ConfigError extends Error {}

/** `--help`: not an error; main prints the usage on stdout and exits 0. */
export class HelpRequested extends Error {}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LEVELS)[number];

type Kind =
  | { readonly type: "string"; readonly nonEmpty?: boolean }
  | { readonly type: "integer"; readonly min: number; readonly max: number }
  | { readonly type: "choice"; readonly values: readonly string[] }
  | { readonly type: "boolean" };

interface Setting {
  readonly flag: string;
  /** null: a command-line flag only (a one-shot command, not a setting for a service's environment). */
  readonly env: string | null;
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
    help: 'preset topology JSON, applied once to a new database (default examples/intel-2s-server.json; "none": nothing)',
  },
  topologyApply: {
    flag: "topology-apply", env: null, label: "topology file to apply", kind: { type: "string", nonEmpty: true }, fallback: null,
    help: "apply this topology JSON to the database, print what changed and exit (refused while a server holds the database)",
  },
  eventRetention: {
    flag: "event-retention", env: "EVENT_RETENTION", kind: { type: "integer", min: 0, max: Number.MAX_SAFE_INTEGER }, fallback: "1000000",
    help: "most recent events kept; 0 keeps all",
  },
  eventReadRate: {
    flag: "event-read-rate", env: "EVENT_READ_RATE", kind: { type: "integer", min: 0, max: 100_000_000 }, fallback: "20000",
    help: "event rows per second all readers of /v1/events may have read, together; beyond it pages wait their turn (0 = no limit)",
  },
  synchronous: {
    flag: "synchronous", env: "DB_SYNCHRONOUS", kind: { type: "choice", values: ["full", "normal"] }, fallback: "full",
    help: "full: an answered change survives power loss; normal: survives a crash of the process only",
  },
  // Bounded resources: what one client, or a slow one, may hold.
  bodyLimit: { flag: "body-limit", env: "BODY_LIMIT", kind: { type: "integer", min: 1, max: 1 << 30 }, fallback: "65536", help: "largest request body in bytes" },
  headersTimeout: {
    flag: "headers-timeout", env: "HEADERS_TIMEOUT", kind: { type: "integer", min: 1, max: 3_600_000 }, fallback: "10000",
    help: "ms a client has to send a request's headers (at most the request timeout)",
  },
  requestTimeout: {
    flag: "request-timeout", env: "REQUEST_TIMEOUT", kind: { type: "integer", min: 1, max: 3_600_000 }, fallback: "30000",
    help: "ms a client has to send a whole request, headers and body",
  },
  socketTimeout: {
    flag: "socket-timeout", env: "SOCKET_TIMEOUT", kind: { type: "integer", min: 0, max: 3_600_000 }, fallback: "60000",
    help: "ms a connection may stay silent in either direction; 0 = never closed for silence",
  },
  keepAliveTimeout: {
    flag: "keep-alive-timeout", env: "KEEP_ALIVE_TIMEOUT", kind: { type: "integer", min: 1, max: 3_600_000 }, fallback: "10000",
    help: "ms an idle keep-alive connection is kept between requests",
  },
  maxConnections: {
    flag: "max-connections", env: "MAX_CONNECTIONS", kind: { type: "integer", min: 0, max: 1_000_000 }, fallback: "1000",
    help: "open connections served at once; the extra ones get 503; 0 = no cap",
  },
  rateLimitReads: {
    flag: "rate-limit-reads", env: "RATE_LIMIT_READS", kind: { type: "integer", min: 0, max: Number.MAX_SAFE_INTEGER }, fallback: "10000",
    help: "GET requests per client per window; 0 = unlimited",
  },
  rateLimitWrites: {
    flag: "rate-limit-writes", env: "RATE_LIMIT_WRITES", kind: { type: "integer", min: 0, max: Number.MAX_SAFE_INTEGER }, fallback: "2000",
    help: "POST/PATCH/DELETE requests per client per window; 0 = unlimited",
  },
  rateLimitWindow: {
    flag: "rate-limit-window", env: "RATE_LIMIT_WINDOW", kind: { type: "integer", min: 1, max: 86_400_000 }, fallback: "10000",
    help: "ms of the rate-limit window",
  },
  maxEventLoopDelay: {
    flag: "max-event-loop-delay", env: "MAX_EVENT_LOOP_DELAY", kind: { type: "integer", min: 0, max: 3_600_000 }, fallback: "1000",
    help: "ms of event-loop lag past which requests get 503; 0 = never shed",
  },
  idempotencyTtl: {
    flag: "idempotency-ttl", env: "IDEMPOTENCY_TTL", kind: { type: "integer", min: 1, max: 31_536_000 }, fallback: "86400",
    help: "seconds an Idempotency-Key's answer is remembered for replay",
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
    flag: "object-quota", env: "OBJECT_QUOTA", kind: { type: "integer", min: 1, max: 1_000_000_000 }, fallback: String(DEFAULT_QUOTAS.objectsPerClient),
    help: "containers + domains one client may have created",
  },
  maxFaults: {
    flag: "max-faults", env: "MAX_FAULTS", kind: { type: "integer", min: 1, max: 1_000_000_000 }, fallback: String(DEFAULT_QUOTAS.activeFaults),
    help: "injected faults active at once",
  },
  maxFaultCount: {
    flag: "max-fault-count", env: "MAX_FAULT_COUNT", kind: { type: "integer", min: 1, max: 1_000_000 }, fallback: String(DEFAULT_QUOTAS.faultCount),
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

/** What a client may hold: sizes, timeouts, budgets (see SETTINGS for each). */
export interface Limits {
  readonly bodyLimit: number;
  readonly headersTimeout: number;
  readonly requestTimeout: number;
  /** 0: connections are never closed for silence. */
  readonly socketTimeout: number;
  readonly keepAliveTimeout: number;
  /** 0: no cap. */
  readonly maxConnections: number;
  /** Per client and window; 0: unlimited. */
  readonly rateLimitReads: number;
  readonly rateLimitWrites: number;
  readonly rateLimitWindow: number;
  /** 0: never shed load. */
  readonly maxEventLoopDelay: number;
}

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly databaseFile: string;
  readonly logLevel: LogLevel;
  /** Preset topology JSON, applied when the database has never held an object; null: none. */
  readonly topologyFile: string | null;
  /** `--topology-apply FILE`: apply this file to the database and exit instead of serving. */
  readonly topologyApply: string | null;
  readonly migrationsDir: string;
  /** Most recent events kept in the log; 0 keeps all. */
  readonly eventRetention: number;
  /** Event rows per second all readers of the log may have read, together; 0: no limit. */
  readonly eventReadRate: number;
  /** SQLite's synchronous setting for the store's writer (see src/store/sqlite.ts). */
  readonly synchronous: "full" | "normal";
  readonly limits: Limits;
  /** Seconds an Idempotency-Key's answer is remembered for replay. */
  readonly idempotencyTtl: number;
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
    const source = [s.env, s.fallback !== null ? `default ${s.fallback}` : null].filter((x) => x !== null).join(", ");
    return `${left.padEnd(24)} ${s.help}${choices}${source ? ` [${source}]` : ""}`;
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
    // One line: start-up failures are reported as a single line (server.ts).
    throw new ConfigError(`${(error as Error).message.split("\n")[0]!} (--help lists the settings)`);
  }
  if (values.help) throw new HelpRequested(usage());
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, s] of Object.entries(table)) {
    const given = values[s.flag];
    if (typeof given === "boolean") out[name] = given;
    else {
      const text = given ?? (s.env === null ? undefined : env[s.env]) ?? s.fallback;
      out[name] = text === null ? null : parseValue(s, text);
    }
  }
  return out as Settings;
}

function limitsOf(s: Settings): Limits {
  // Node refuses a headers timeout longer than the request timeout.
  if (s.headersTimeout > s.requestTimeout) {
    throw new ConfigError(`headers timeout (${s.headersTimeout} ms) must not exceed request timeout (${s.requestTimeout} ms)`);
  }
  return {
    bodyLimit: s.bodyLimit,
    headersTimeout: s.headersTimeout,
    requestTimeout: s.requestTimeout,
    socketTimeout: s.socketTimeout,
    keepAliveTimeout: s.keepAliveTimeout,
    maxConnections: s.maxConnections,
    rateLimitReads: s.rateLimitReads,
    rateLimitWrites: s.rateLimitWrites,
    rateLimitWindow: s.rateLimitWindow,
    maxEventLoopDelay: s.maxEventLoopDelay,
  };
}

/** The limits when nothing is configured: what buildApp uses without options. */
export const DEFAULT_LIMITS: Limits = limitsOf(parseSettings([], {}));

/**
 * Absolute, but not normalised: `x/../db` is left for the kernel to resolve,
 * which follows x if it is a symbolic link, where path.resolve would drop it.
 */
function absolute(file: string): string {
  return path.isAbsolute(file) ? file : `${process.cwd()}${path.sep}${file}`;
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const s = parseSettings(argv, env);
  const topology = s.topologyFile ?? path.join(PROJECT_ROOT, "examples", "intel-2s-server.json");
  return {
    host: s.host,
    port: s.port,
    databaseFile: absolute(s.databaseFile ?? path.join(PROJECT_ROOT, "data", "iommu-arbiter.db")),
    logLevel: s.logLevel,
    topologyFile: topology === "none" ? null : path.resolve(topology),
    topologyApply: s.topologyApply === null ? null : path.resolve(s.topologyApply),
    migrationsDir: path.join(PROJECT_ROOT, "prisma", "migrations"),
    eventRetention: s.eventRetention,
    synchronous: s.synchronous,
    eventReadRate: s.eventReadRate,
    limits: limitsOf(s),
    idempotencyTtl: s.idempotencyTtl,
    tokensFile: s.tokensFile === null ? null : path.resolve(s.tokensFile),
    tokensJson: s.tokensJson,
    objectQuota: s.objectQuota,
    maxFaults: s.maxFaults,
    maxFaultCount: s.maxFaultCount,
  };
}
