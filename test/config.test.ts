// The settings schema (src/config.ts) is the one declaration of every flag,
// variable and default: the parser, the messages, the usage text and the
// README's table must all say what it says.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, envOf, flagOf, HelpRequested, parseConfig, parseSettings, PROJECT_ROOT, SETTINGS, usage, type Settings } from "../src/config.js";

type Name = keyof Settings;
const NAMES = Object.keys(SETTINGS.properties) as Name[];

describe("settings schema", () => {
  it("derives the published flag and variable of every setting", () => {
    expect(Object.fromEntries(NAMES.map((n) => [n, [flagOf(n), envOf(n)]]))).toEqual({
      host: ["host", "HOST"], port: ["port", "PORT"], databaseFile: ["db", "DATABASE_FILE"], databaseUrl: ["database-url", "DATABASE_URL"], logLevel: ["log-level", "LOG_LEVEL"],
      topologyFile: ["topology", "TOPOLOGY_FILE"], topologyApply: ["topology-apply", null], kernelProfile: ["kernel-profile", "KERNEL_PROFILE"], eventRetention: ["event-retention", "EVENT_RETENTION"],
      eventReadRate: ["event-read-rate", "EVENT_READ_RATE"],
      eventStreams: ["event-streams", "EVENT_STREAMS"], eventStreamHeartbeat: ["event-stream-heartbeat", "EVENT_STREAM_HEARTBEAT"],
      eventStreamBuffer: ["event-stream-buffer", "EVENT_STREAM_BUFFER"], synchronous: ["synchronous", "DB_SYNCHRONOUS"], bodyLimit: ["body-limit", "BODY_LIMIT"],
      headersTimeout: ["headers-timeout", "HEADERS_TIMEOUT"], requestTimeout: ["request-timeout", "REQUEST_TIMEOUT"],
      socketTimeout: ["socket-timeout", "SOCKET_TIMEOUT"], keepAliveTimeout: ["keep-alive-timeout", "KEEP_ALIVE_TIMEOUT"],
      maxConnections: ["max-connections", "MAX_CONNECTIONS"], rateLimitReads: ["rate-limit-reads", "RATE_LIMIT_READS"],
      rateLimitWrites: ["rate-limit-writes", "RATE_LIMIT_WRITES"], rateLimitWindow: ["rate-limit-window", "RATE_LIMIT_WINDOW"],
      maxEventLoopDelay: ["max-event-loop-delay", "MAX_EVENT_LOOP_DELAY"], idempotencyTtl: ["idempotency-ttl", "IDEMPOTENCY_TTL"],
      tokensFile: ["tokens", "TOKENS_FILE"], tokensJson: ["tokens-json", "TOKENS"], objectQuota: ["object-quota", "OBJECT_QUOTA"],
      maxFaults: ["max-faults", "MAX_FAULTS"], maxFaultCount: ["max-fault-count", "MAX_FAULT_COUNT"],
      allowUnsafeInterrupts: ["allow-unsafe-interrupts", "ALLOW_UNSAFE_INTERRUPTS"],
      logFormat: ["log-format", "LOG_FORMAT"], metricsPublic: ["metrics-public", "METRICS_PUBLIC"],
      shutdownTimeout: ["shutdown-timeout", "SHUTDOWN_TIMEOUT"], corsOrigins: ["cors-origins", "CORS_ORIGINS"],
    });
  });

  it("gives each setting its default, and null to one without", () => {
    const defaults = parseSettings([], {});
    for (const name of NAMES) {
      const declared = (SETTINGS.properties[name] as { default?: unknown }).default;
      expect(defaults[name], name).toBe(declared ?? null);
    }
  });

  it.each(NAMES.filter((n) => SETTINGS.properties[n].type === "integer"))("%s: an integer within its bounds, from the flag or the variable, named when refused", (name) => {
    const { minimum, maximum } = SETTINGS.properties[name] as { minimum: number; maximum: number };
    const flag = `--${flagOf(name)}`;
    const env = envOf(name)!;
    const label = flagOf(name).replace(/-/g, " ");
    expect(parseSettings([flag, String(minimum)], {})[name]).toBe(minimum);
    expect(parseSettings([], { [env]: String(maximum) })[name]).toBe(maximum);
    expect(parseSettings([flag, String(minimum)], { [env]: String(maximum) })[name]).toBe(minimum);
    for (const bad of [String(maximum + 1), ...(minimum > 0 ? [String(minimum - 1)] : []), "-1", "1e3", "0x10", " 5", "5.0", ""]) {
      const message = `${label} must be an integer from ${minimum} to ${maximum}, got "${bad}"`;
      expect(() => parseSettings([`${flag}=${bad}`], {}), bad).toThrow(new ConfigError(message));
      expect(() => parseSettings([], { [env]: bad }), bad).toThrow(new ConfigError(message));
    }
  });

  it.each([
    ["logLevel", "debug", "DEBUG", 'log level must be one of fatal, error, warn, info, debug, trace, silent, got "DEBUG"'],
    ["synchronous", "normal", "off", 'synchronous must be one of full, normal, got "off"'],
  ] as const)("%s: one of its choices", (name, good, bad, message) => {
    expect(parseSettings([`--${flagOf(name)}`, good], {})[name]).toBe(good);
    expect(() => parseSettings([], { [envOf(name)!]: bad })).toThrow(new ConfigError(message));
  });

  it("kernelProfile: one of the kernel-version profiles, from the flag or the variable; unset is null (the stored profile stays)", () => {
    expect(parseSettings([], {}).kernelProfile).toBeNull();
    expect(parseSettings(["--kernel-profile", "6.1"], {}).kernelProfile).toBe("6.1");
    expect(parseSettings([], { KERNEL_PROFILE: "6.2" }).kernelProfile).toBe("6.2");
    expect(parseSettings(["--kernel-profile=6.5+"], { KERNEL_PROFILE: "6.1" }).kernelProfile).toBe("6.5+");
    expect(parseConfig(["--kernel-profile", "6.1"], {}).kernelProfile).toBe("6.1");
    expect(parseConfig([], {}).kernelProfile).toBeNull();
    for (const bad of ["5.15", "6.5", "6.1 ", ""]) {
      const message = `kernel profile must be one of 6.1, 6.2, 6.5+, got "${bad}"`;
      expect(() => parseConfig([`--kernel-profile=${bad}`], {}), bad).toThrow(new ConfigError(message));
      expect(() => parseConfig([], { KERNEL_PROFILE: bad }), bad).toThrow(new ConfigError(message));
    }
  });

  it.each([
    ["host", "host"], ["databaseFile", "database file"], ["topologyFile", "topology"], ["topologyApply", "topology file to apply"],
    ["tokensFile", "token file"], ["tokensJson", "TOKENS"],
  ] as const)("%s: text that must not be blank", (name, label) => {
    expect(parseSettings([`--${flagOf(name)}`, "x y"], {})[name]).toBe("x y");
    for (const blank of ["", " ", "\t\n"]) {
      expect(() => parseSettings([`--${flagOf(name)}=${blank}`], {})).toThrow(new ConfigError(`${label} must not be empty`));
    }
  });

  it("allowUnsafeInterrupts: a switch, off by default; the flag takes no value, the variable is true, false, 1 or 0; handed to the app", () => {
    expect(parseSettings([], {}).allowUnsafeInterrupts).toBe(false);
    expect(parseSettings(["--allow-unsafe-interrupts"], {}).allowUnsafeInterrupts).toBe(true);
    expect(parseSettings(["--allow-unsafe-interrupts"], { ALLOW_UNSAFE_INTERRUPTS: "0" }).allowUnsafeInterrupts).toBe(true);
    for (const [text, value] of [["true", true], ["1", true], ["false", false], ["0", false]] as const) {
      expect(parseSettings([], { ALLOW_UNSAFE_INTERRUPTS: text }).allowUnsafeInterrupts, text).toBe(value);
    }
    for (const bad of ["yes", "Y", "", "2", "constructor"]) {
      expect(() => parseSettings([], { ALLOW_UNSAFE_INTERRUPTS: bad }), bad)
        .toThrow(new ConfigError(`allow unsafe interrupts must be true, false, 1 or 0, got "${bad}"`));
    }
    expect(() => parseSettings(["--allow-unsafe-interrupts=1"], {})).toThrow(ConfigError);
    expect(parseConfig(["--allow-unsafe-interrupts"], {}).allowUnsafeInterrupts).toBe(true);
    expect(parseConfig([], {}).allowUnsafeInterrupts).toBe(false);
    expect(usage()).toContain("  --allow-unsafe-interrupts bind devices to iommufd even where their MSIs cannot be isolated");
  });

  it("logFormat: auto, json or pretty; auto by default", () => {
    expect(parseConfig([], {}).logFormat).toBe("auto");
    expect(parseConfig(["--log-format", "pretty"], {}).logFormat).toBe("pretty");
    expect(parseConfig([], { LOG_FORMAT: "json" }).logFormat).toBe("json");
    expect(() => parseSettings([], { LOG_FORMAT: "text" })).toThrow(new ConfigError('log format must be one of auto, json, pretty, got "text"'));
  });

  it("metricsPublic: a switch, off by default; shutdownTimeout below Docker's 10 s grace by default", () => {
    expect(parseConfig([], {}).metricsPublic).toBe(false);
    expect(parseConfig(["--metrics-public"], {}).metricsPublic).toBe(true);
    expect(parseConfig([], { METRICS_PUBLIC: "1" }).metricsPublic).toBe(true);
    expect(parseConfig([], {}).shutdownTimeout).toBeLessThan(10_000);
    expect(parseConfig(["--shutdown-timeout", "2500"], {}).shutdownTimeout).toBe(2500);
  });

  it("corsOrigins: unset is no CORS; a comma-separated list of origins, or \"*\" alone; anything else named and refused", () => {
    expect(parseConfig([], {}).corsOrigins).toBeNull();
    expect(parseConfig(["--cors-origins", "https://ui.example.com, http://localhost:8080"], {}).corsOrigins)
      .toEqual(["https://ui.example.com", "http://localhost:8080"]);
    expect(parseConfig([], { CORS_ORIGINS: "*" }).corsOrigins).toEqual(["*"]);
    for (const bad of ["https://ui.example.com/", "https://ui.example.com/app", "ftp://x.example", "ui.example.com", "null"]) {
      expect(() => parseConfig([], { CORS_ORIGINS: bad }), bad).toThrow(new ConfigError(
        `cors origins must be "*" or origins like https://ui.example.com (scheme, host and port only, no path or trailing slash), got "${bad}"`));
    }
    expect(() => parseConfig([], { CORS_ORIGINS: "*, https://ui.example.com" })).toThrow(/list no others/);
    expect(() => parseConfig([], { CORS_ORIGINS: " , " })).toThrow(/at least one origin/);
  });

  it("ignores a flag-only setting's namesake variable and unrelated variables", () => {
    expect(parseSettings([], { TOPOLOGY_APPLY: "x.json", PATH: "/bin" }).topologyApply).toBeNull();
  });

  it("generates the usage text from the schema: every flag, its variable, its default and its help", () => {
    const lines = usage().split("\n");
    expect(lines[0]).toBe("Usage: npm start -- [options]");
    expect(lines).toHaveLength(NAMES.length + 1);
    NAMES.forEach((name, i) => {
      const s = SETTINGS.properties[name] as { description: string; default?: unknown };
      const line = lines[i + 1]!;
      expect(line.startsWith(`  --${flagOf(name)} `), line).toBe(true);
      expect(line).toContain(s.description);
      if (envOf(name)) expect(line).toContain(`[${envOf(name)}`);
      if (s.default !== undefined) expect(line).toContain(`default ${String(s.default)}]`);
    });
    expect(lines).toContain("  --port N               listen port, 0 = any free [PORT, default 3000]");
    expect(lines).toContain("  --log-level VALUE      log level (fatal|error|warn|info|debug|trace|silent) [LOG_LEVEL, default info]");
    expect(() => parseSettings(["--help"], {})).toThrow(HelpRequested);
  });

  it("agrees with the README's table of flags, variables and defaults", () => {
    const readme = readFileSync(path.join(PROJECT_ROOT, "README.md"), "utf8");
    const rows = new Map<string, [string, string]>();
    for (const m of readme.matchAll(/^\| `--([a-z-]+)[^`]*` \| *(?:`([A-Z_]+)`)? *\|([^|]*)\|/gm)) rows.set(m[1]!, [m[2] ?? "", m[3]!.trim()]);
    for (const name of NAMES) {
      const row = rows.get(flagOf(name));
      expect(row, `README row for --${flagOf(name)}`).toBeDefined();
      expect(row![0], name).toBe(envOf(name) ?? "");
      const declared = (SETTINGS.properties[name] as { default?: unknown }).default;
      if (declared !== undefined) expect(row![1], name).toBe(`\`${String(declared)}\``);
    }
    expect(rows.size).toBe(NAMES.length);
  });
});

describe("the database: SQLite file or PostgreSQL URL", () => {
  it("a postgresql:// URL (flag or DATABASE_URL) chooses PostgreSQL and its migrations", () => {
    const fromEnv = parseConfig([], { DATABASE_URL: "postgresql://arbiter:secret@db:5432/arbiter" });
    expect(fromEnv.databaseUrl).toBe("postgresql://arbiter:secret@db:5432/arbiter");
    expect(fromEnv.migrationsDir).toBe(path.join(PROJECT_ROOT, "prisma", "postgresql", "migrations"));
    expect(parseConfig(["--database-url", "postgres://db/x"], {}).databaseUrl).toBe("postgres://db/x");
  });

  it("unset, or a file: URL, is SQLite", () => {
    expect(parseConfig([], {})).toMatchObject({ databaseUrl: null, migrationsDir: path.join(PROJECT_ROOT, "prisma", "migrations") });
    expect(parseConfig([], { DATABASE_URL: "file:/tmp/x.db" })).toMatchObject({ databaseUrl: null, databaseFile: "/tmp/x.db" });
  });

  it("refuses another scheme without echoing the URL (it may hold a password), and a file and a URL together", () => {
    expect(() => parseConfig([], { DATABASE_URL: "mysql://root:hunter2@db/x" })).toThrow(/^database URL must be postgresql:\/\/user@host:port\/database or file:PATH$/);
    expect(() => parseConfig(["--db", "a.db"], { DATABASE_URL: "postgresql://u:hunter2@db/x" })).toThrow(ConfigError);
    expect(() => parseConfig(["--db", "a.db"], { DATABASE_URL: "postgresql://u:hunter2@db/x" })).not.toThrow(/hunter2/);
  });
});
