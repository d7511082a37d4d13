// Start-up configuration, declared once as a TypeBox schema: each setting
// is a property with its type, bounds, default and help line, plus its
// command-line flag and environment variable (derived from the property
// name unless the setting says otherwise). The flag parser (node:util
// parseArgs), the validation and coercion (ajv), the error messages and the
// usage text are all derived from it, so a new setting is one property here
// and one field in `Config`.
import { Type, type SchemaOptions, type Static, type TSchema } from "@sinclair/typebox";
import { Ajv } from "ajv";
import { parseArgs } from "node:util";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KERNEL_PROFILE_NAMES, type KernelProfileName } from "./core/profiles.js";
import { DEFAULT_QUOTAS } from "./core/quota.js";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export class ConfigError extends Error {}

/** `--help`: not an error; main prints the usage on stdout and exits 0. */
export class HelpRequested extends Error {}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LEVELS)[number];

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where a setting comes from and how messages name it, beside its JSON schema. */
interface Source {
  /** The command-line flag; default: the property name in kebab case (eventRetention: --event-retention). */
  readonly flag?: string;
  /** The environment variable; default: the property name in upper snake case; null: a flag only. */
  readonly env?: string | null;
  /** How messages name the setting; default: the flag with spaces for dashes. */
  readonly label?: string;
}
type Options = SchemaOptions & Source & { readonly description: string };

const integer = (minimum: number, maximum: number, options: Options) => Type.Integer({ minimum, maximum, ...options });
/** Text that is not blank. */
const text = (options: Options) => Type.String({ pattern: "\\S", ...options });
const choice = <V extends string>(values: readonly V[], options: Options) => Type.Unsafe<V>({ type: "string", enum: values, ...options });
/** A switch: the flag takes no value; the variable is true, false, 1 or 0. */
const flag = (options: Options) => Type.Boolean({ default: false, ...options });

/** Every setting the service reads, in the order the usage text lists them. */
export const SETTINGS = Type.Object({
  host: text({ default: "127.0.0.1", description: "listen address" }),
  port: integer(0, 65535, { default: 3000, description: "listen port, 0 = any free" }),
  databaseFile: Type.Optional(text({
    flag: "db", label: "database file", description: "SQLite database file (default ./data/iommu-arbiter.db)",
  })),
  databaseUrl: Type.Optional(Type.String({
    pattern: "^(postgres(ql)?://\\S+|file:\\S+)$", label: "database URL",
    description: "postgresql://user:password@host:port/database: PostgreSQL, which several replicas can share; file:PATH: that SQLite file",
  })),
  logLevel: choice(LEVELS, { default: "info", description: "log level" }),
  topologyFile: Type.Optional(text({
    flag: "topology",
    description: 'preset topology JSON, applied once to a new database (default examples/intel-2s-server.json; "none": nothing)',
  })),
  topologyApply: Type.Optional(text({
    env: null, label: "topology file to apply",
    description: "apply this topology JSON to the database, print what changed and exit (refused while a server holds the database)",
  })),
  kernelProfile: Type.Optional(choice(KERNEL_PROFILE_NAMES, {
    description: "kernel-version profile the answers follow, set at every start (unset: the stored one, else the preset's, else 6.5+)",
  })),
  eventRetention: integer(0, Number.MAX_SAFE_INTEGER, { default: 1_000_000, description: "most recent events kept; 0 keeps all" }),
  eventReadRate: integer(0, 100_000_000, {
    default: 20_000, description: "event rows per second all readers of /v1/events may have read, together; beyond it pages wait their turn (0 = no limit)",
  }),
  eventStreams: integer(0, 100_000, { default: 100, description: "live event streams (GET /v1/events as text/event-stream) open at once; beyond it 503" }),
  eventStreamHeartbeat: integer(100, 3_600_000, { default: 15_000, description: "ms between heartbeat lines on a quiet event stream" }),
  eventStreamBuffer: integer(1, 10_000_000, { default: 10_000, description: "events held for a stream whose client does not read; past it the stream is closed (the client resumes)" }),
  synchronous: choice(["full", "normal"] as const, {
    env: "DB_SYNCHRONOUS", default: "full", description: "full: an answered change survives power loss; normal: survives a crash of the process only",
  }),
  // Bounded resources: what one client, or a slow one, may hold.
  bodyLimit: integer(1, 1 << 30, { default: 65536, description: "largest request body in bytes" }),
  headersTimeout: integer(1, 3_600_000, { default: 10_000, description: "ms a client has to send a request's headers (at most the request timeout)" }),
  requestTimeout: integer(1, 3_600_000, { default: 30_000, description: "ms a client has to send a whole request, headers and body" }),
  socketTimeout: integer(0, 3_600_000, { default: 60_000, description: "ms a connection may stay silent in either direction; 0 = never closed for silence" }),
  keepAliveTimeout: integer(1, 3_600_000, { default: 10_000, description: "ms an idle keep-alive connection is kept between requests" }),
  maxConnections: integer(0, 1_000_000, { default: 1000, description: "open connections served at once; the extra ones get 503; 0 = no cap" }),
  rateLimitReads: integer(0, Number.MAX_SAFE_INTEGER, { default: 10_000, description: "GET requests per client per window; 0 = unlimited" }),
  rateLimitWrites: integer(0, Number.MAX_SAFE_INTEGER, { default: 2000, description: "POST/PATCH/DELETE requests per client per window; 0 = unlimited" }),
  rateLimitWindow: integer(1, 86_400_000, { default: 10_000, description: "ms of the rate-limit window" }),
  maxEventLoopDelay: integer(0, 3_600_000, { default: 1000, description: "ms of event-loop lag past which requests get 503; 0 = never shed" }),
  idempotencyTtl: integer(1, 31_536_000, { default: 86_400, description: "seconds an Idempotency-Key's answer is remembered for replay" }),
  tokensFile: Type.Optional(text({
    flag: "tokens", label: "token file",
    description: "bearer-token table (JSON of SHA-256 digests, see README); unset with TOKENS unset: open mode, loopback only",
  })),
  tokensJson: Type.Optional(text({ env: "TOKENS", label: "TOKENS", description: "the token table itself, as JSON, instead of a file" })),
  objectQuota: integer(1, 1_000_000_000, { default: DEFAULT_QUOTAS.objectsPerClient, description: "containers + domains + IOVA mappings one client may have created" }),
  maxFaults: integer(1, 1_000_000_000, { default: DEFAULT_QUOTAS.activeFaults, description: "injected faults active at once" }),
  maxFaultCount: integer(1, 1_000_000, { default: DEFAULT_QUOTAS.faultCount, description: "attach ops one injected fault may fail (its count)" }),
  // iommufd's module parameter of the same name (drivers/iommu/iommufd/device.c).
  allowUnsafeInterrupts: flag({
    description: "bind devices to iommufd even where their MSIs cannot be isolated (no interrupt remapping or ITS): a security weakness",
  }),
  // Operations: how the service is watched, stopped and reached from browsers.
  logFormat: choice(LOG_FORMATS, { default: "auto", description: "auto: pretty lines on a terminal, JSON otherwise" }),
  metricsPublic: flag({ description: "serve GET /metrics without a token (default: the reader role, like any read)" }),
  shutdownTimeout: integer(1, 3_600_000, {
    default: 8000, description: "ms a SIGTERM/SIGINT shutdown may take to finish in-flight requests and close the database; past it the process exits 1",
  }),
  corsOrigins: Type.Optional(text({
    label: "cors origins",
    description: 'comma-separated origins a browser page may call the API from (e.g. "https://ui.example.com"), "*" for any (no credentials either way); unset: no CORS',
  })),
});

type Declared = Static<typeof SETTINGS>;
type SettingName = keyof Declared;

/** The settings as parsed, before paths are resolved; null: unset, for a setting without a default. */
export type Settings = { -readonly [N in SettingName]-?: undefined extends Declared[N] ? Exclude<Declared[N], undefined> | null : Declared[N] };

type Setting = TSchema & Source & { readonly description: string; readonly default?: unknown; readonly enum?: readonly string[]; readonly minimum?: number; readonly maximum?: number };

const SETTING_LIST: readonly (readonly [SettingName, Setting])[] = Object.entries(SETTINGS.properties) as [SettingName, Setting][];

export const flagOf = (name: SettingName): string => SETTINGS.properties[name].flag ?? name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export function envOf(name: SettingName): string | null {
  const declared = (SETTINGS.properties[name] as Setting).env;
  return declared === undefined ? name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase() : declared;
}
const labelOf = (name: SettingName): string => (SETTINGS.properties[name] as Setting).label ?? flagOf(name).replace(/-/g, " ");

export function usage(): string {
  const rows = SETTING_LIST.map(([name, s]) => {
    const left = `  --${flagOf(name)}${s.type === "boolean" ? "" : s.type === "integer" ? " N" : " VALUE"}`;
    const choices = s.enum ? ` (${s.enum.join("|")})` : "";
    const source = [envOf(name), s.default !== undefined ? `default ${String(s.default)}` : null].filter((x) => x !== null).join(", ");
    return `${left.padEnd(24)} ${s.description}${choices}${source ? ` [${source}]` : ""}`;
  });
  return ["Usage: npm start -- [options]", ...rows].join("\n");
}

// Coerces the text of flags and variables to the declared types and fills
// in defaults. The keywords of Source are this file's, not JSON Schema's.
const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: false, strict: true });
ajv.addVocabulary(["flag", "env", "label"]);
const validateSettings = ajv.compile(SETTINGS);

/** The one-line message for a setting whose text is refused, from what the schema says it must be. */
function refusal(name: SettingName, given: string): ConfigError {
  const s = SETTINGS.properties[name] as Setting;
  const label = labelOf(name);
  if (s.type === "integer") return new ConfigError(`${label} must be an integer from ${s.minimum} to ${s.maximum}, got "${given}"`);
  if (s.enum) return new ConfigError(`${label} must be one of ${s.enum.join(", ")}, got "${given}"`);
  if (s.type === "boolean") return new ConfigError(`${label} must be true, false, 1 or 0, got "${given}"`);
  // Not echoed: a database URL may hold a password.
  if (name === "databaseUrl") return new ConfigError(`${label} must be postgresql://user@host:port/database or file:PATH`);
  return new ConfigError(`${label} must not be empty`);
}

/** What a switch's variable may say, as ajv coerces it. */
const SWITCH_VALUES: Readonly<Record<string, "true" | "false">> = { true: "true", false: "false", 1: "true", 0: "false" };

/** Flags win over the environment, the environment over the defaults. */
export function parseSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const [name, s] of SETTING_LIST) options[flagOf(name)] = { type: s.type === "boolean" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (error) {
    // One line: start-up failures are reported as a single line (server.ts).
    throw new ConfigError(`${(error as Error).message.split("\n")[0]!} (--help lists the settings)`);
  }
  if (values.help) throw new HelpRequested(usage());
  const given: Partial<Record<SettingName, string>> = {};
  for (const [name, s] of SETTING_LIST) {
    const variable = envOf(name);
    const fromFlag = values[flagOf(name)];
    // A switch given on the command line is on; a variable says which.
    const value = fromFlag === true ? "true" : (fromFlag as string | undefined) ?? (variable === null ? undefined : env[variable]);
    if (value === undefined) continue;
    if (s.type === "boolean") {
      const normal = Object.hasOwn(SWITCH_VALUES, value) ? SWITCH_VALUES[value] : undefined;
      if (normal === undefined) throw refusal(name, value);
      given[name] = normal;
      continue;
    }
    // Digits only: "0x10", "1e3" and " 5" are typos here, not the numbers ajv would make of them.
    if (s.type === "integer" && !/^\d+$/.test(value)) throw refusal(name, value);
    given[name] = value;
  }
  const settings: Record<string, unknown> = { ...given };
  if (!validateSettings(settings)) {
    const name = validateSettings.errors![0]!.instancePath.slice(1) as SettingName;
    throw refusal(name, given[name] ?? "");
  }
  return Object.fromEntries(SETTING_LIST.map(([name]) => [name, settings[name] ?? null])) as Settings;
}

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
  /** A postgresql:// URL: the PostgreSQL store (databaseFile is then unused); null: SQLite. */
  readonly databaseUrl: string | null;
  readonly logLevel: LogLevel;
  /** Preset topology JSON, applied when the database has never held an object; null: none. */
  readonly topologyFile: string | null;
  /** `--topology-apply FILE`: apply this file to the database and exit instead of serving. */
  readonly topologyApply: string | null;
  /** Stored as the host's kernel profile at every start, over what the database or a preset says; null: leave it. */
  readonly kernelProfile: KernelProfileName | null;
  readonly migrationsDir: string;
  /** Most recent events kept in the log; 0 keeps all. */
  readonly eventRetention: number;
  /** Event rows per second all readers of the log may have read, together; 0: no limit. */
  readonly eventReadRate: number;
  /** How long the store waits for the disk before answering a change (see src/store/sqlite.ts). */
  readonly synchronous: "full" | "normal";
  readonly limits: Limits;
  /** Seconds an Idempotency-Key's answer is remembered for replay. */
  readonly idempotencyTtl: number;
  /** Token table file; null (and tokensJson null): open development mode. */
  readonly tokensFile: string | null;
  /** The token table as JSON text (TOKENS), instead of a file. */
  readonly tokensJson: string | null;
  readonly eventStreams: number;
  readonly eventStreamHeartbeat: number;
  readonly eventStreamBuffer: number;
  readonly objectQuota: number;
  readonly maxFaults: number;
  readonly maxFaultCount: number;
  /** iommufd's allow_unsafe_interrupts, handed to the core as data (src/core/iommufd-device.ts). */
  readonly allowUnsafeInterrupts: boolean;
  /** auto: pretty on a terminal, JSON otherwise. */
  readonly logFormat: LogFormat;
  /** GET /metrics without a token. */
  readonly metricsPublic: boolean;
  /** ms a graceful shutdown may take before the process gives up and exits 1. */
  readonly shutdownTimeout: number;
  /** Origins allowed by CORS ("*": any); null: CORS off. */
  readonly corsOrigins: readonly string[] | null;
}

/** "https://a.example, http://localhost:8080" → the origins; each must be an origin (scheme, host, port), or "*". */
function originsOf(text: string | null): readonly string[] | null {
  if (text === null) return null;
  const origins = text.split(",").map((o) => o.trim()).filter((o) => o !== "");
  for (const origin of origins) {
    if (origin === "*") continue;
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      // Refused below.
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError(`cors origins must be "*" or origins like https://ui.example.com (scheme, host and port only, no path or trailing slash), got "${origin}"`);
    }
  }
  if (origins.length === 0) throw new ConfigError("cors origins must name at least one origin");
  if (origins.includes("*") && origins.length > 1) throw new ConfigError('cors origins: "*" allows any origin; list no others with it');
  return origins;
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
  const url = s.databaseUrl ?? null;
  const postgres = url !== null && !url.startsWith("file:") ? url : null;
  const fileUrl = url !== null && url.startsWith("file:") ? url.slice("file:".length) : null;
  if (url !== null && s.databaseFile !== null) {
    throw new ConfigError(`database file ${s.databaseFile} and database URL ${postgres ? "postgresql://..." : url} both given: choose one`);
  }
  return {
    host: s.host,
    port: s.port,
    databaseFile: absolute(s.databaseFile ?? fileUrl ?? path.join(PROJECT_ROOT, "data", "iommu-arbiter.db")),
    databaseUrl: postgres,
    logLevel: s.logLevel,
    topologyFile: topology === "none" ? null : path.resolve(topology),
    topologyApply: s.topologyApply === null ? null : path.resolve(s.topologyApply),
    kernelProfile: s.kernelProfile,
    migrationsDir: postgres ? path.join(PROJECT_ROOT, "prisma", "postgresql", "migrations") : path.join(PROJECT_ROOT, "prisma", "migrations"),
    eventRetention: s.eventRetention,
    synchronous: s.synchronous,
    eventReadRate: s.eventReadRate,
    limits: limitsOf(s),
    idempotencyTtl: s.idempotencyTtl,
    tokensFile: s.tokensFile === null ? null : path.resolve(s.tokensFile),
    tokensJson: s.tokensJson,
    eventStreams: s.eventStreams,
    eventStreamHeartbeat: s.eventStreamHeartbeat,
    eventStreamBuffer: s.eventStreamBuffer,
    objectQuota: s.objectQuota,
    maxFaults: s.maxFaults,
    maxFaultCount: s.maxFaultCount,
    allowUnsafeInterrupts: s.allowUnsafeInterrupts,
    logFormat: s.logFormat,
    metricsPublic: s.metricsPublic,
    shutdownTimeout: s.shutdownTimeout,
    corsOrigins: originsOf(s.corsOrigins),
  };
}
