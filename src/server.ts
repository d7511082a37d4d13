// `npm start`: check the settings, the listen address and the database path;
// open (and migrate) the database, give a new one its preset topology, and
// listen. With `--topology-apply FILE`: apply that file to the database,
// print what it did and exit. Any failure on the way is one line on stderr
// and exit code 2 (startup/fatal.ts).
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import { HelpRequested, parseConfig, type Config } from "./config.js";
import { DRIVERS } from "./drivers/index.js";
import { buildApp } from "./http/app.js";
import { reportStartupFailure, STARTUP_FAILED } from "./startup/fatal.js";
import { checkListenAddress, listenError } from "./startup/listen.js";
import { applyKernelProfileFlag, applyPreset, applyTopologyCommand, readTopologyFile } from "./startup/topology.js";
import { checkDatabasePath } from "./store/file-check.js";
import { PostgresStore } from "./store/postgres.js";
import { describePostgresUrl } from "./store/postgres-connect.js";
import { SqliteStore, type ArbiterStore } from "./store/store.js";
import { loadTokens, refuseOpenNonLoopback } from "./http/tokens.js";

export { readTopologyFile } from "./startup/topology.js";

/**
 * Made first, so that everything after it, the store included, reports
 * through it. JSON lines for log collectors; readable lines for a person at
 * a terminal (--log-format auto decides by whether stdout is one).
 */
export function createLogger(config: Pick<Config, "logLevel" | "logFormat">, stdoutIsTerminal = process.stdout.isTTY === true): Logger {
  const prettyLines = config.logFormat === "pretty" || (config.logFormat === "auto" && stdoutIsTerminal);
  if (!prettyLines) return pino({ level: config.logLevel });
  // In this thread and synchronous: the last lines before process.exit are not lost.
  return pino({ level: config.logLevel }, pretty({ sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }));
}

async function openStore(config: Config, logger: Logger): Promise<ArbiterStore> {
  if (config.databaseUrl !== null) {
    return PostgresStore.open({
      drivers: DRIVERS,
      url: config.databaseUrl, migrationsDir: config.migrationsDir, eventRetention: config.eventRetention,
      idempotencyTtlMs: config.idempotencyTtl * 1000, eventReadRate: config.eventReadRate,
      logger: logger.child({ component: "store" }),
    });
  }
  checkDatabasePath(config.databaseFile);
  return SqliteStore.open({
    // The core is handed its drivers here: it imports none of them.
    drivers: DRIVERS,
    file: config.databaseFile, migrationsDir: config.migrationsDir, eventRetention: config.eventRetention,
    synchronous: config.synchronous, idempotencyTtlMs: config.idempotencyTtl * 1000, eventReadRate: config.eventReadRate,
    logger: logger.child({ component: "store" }),
  });
}

/**
 * Loading a large database leaves tens of MB of garbage that V8 would keep
 * resident for a long time. Full collections before serving return it: the
 * second one releases the pages the first one emptied. Needs node --expose-gc, which
 * bin/iommu-arbiter-server passes; without it this does nothing.
 */
function releaseStartupGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

export async function start(config: Config, logger: Logger = createLogger(config)): Promise<FastifyInstance> {
  // Settings first, then the address, then the database: a mistake in one is
  // reported before the next is touched.
  const tokens = loadTokens(config);
  const preset = config.topologyFile ? readTopologyFile(config.topologyFile) : null;
  await checkListenAddress(config.host, config.port);
  refuseOpenNonLoopback(config.host, tokens);
  const store = await openStore(config, logger);
  let app: FastifyInstance | null = null;
  try {
    if (preset) await applyPreset(store, config.topologyFile!, preset, logger, DRIVERS);
    await applyKernelProfileFlag(store, config.kernelProfile, logger);
    app = await buildApp({
      store, loggerInstance: logger, limits: config.limits, tokens,
      quotas: { objectsPerClient: config.objectQuota, activeFaults: config.maxFaults, faultCount: config.maxFaultCount },
      iommufdParams: { allowUnsafeInterrupts: config.allowUnsafeInterrupts },
      metricsPublic: config.metricsPublic, corsOrigins: config.corsOrigins,
      eventStreams: { maxStreams: config.eventStreams, heartbeatMs: config.eventStreamHeartbeat, bufferEvents: config.eventStreamBuffer },
    });
    app.addHook("onClose", () => store.close());
    releaseStartupGarbage();
    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (error) {
      throw listenError(config.host, config.port, error);
    }
    return app;
  } catch (error) {
    // Nothing may keep holding the database after a failed start.
    await (app ? app.close() : store.close());
    throw error;
  }
}

async function applyTopologyFile(config: Config, file: string, logger: Logger): Promise<void> {
  const spec = readTopologyFile(file);
  // The store takes the writer lock: refused while a server holds the database.
  const store = await openStore(config, logger);
  try {
    await applyTopologyCommand(store, file, spec, config.databaseUrl ? describePostgresUrl(config.databaseUrl) : config.databaseFile, (line) => process.stdout.write(`${line}\n`));
    await applyKernelProfileFlag(store, config.kernelProfile, logger);
  } finally {
    await store.close();
  }
}

/**
 * Keeps the event loop alive while `work` runs. The store's checkpointer is
 * an unref'd worker thread: a failed start awaiting its exit while closing
 * the store left nothing else on the event loop, so Node ended the process,
 * with code 0 and without a word, before the error could be reported.
 */
async function holdingOpen<T>(work: () => Promise<T>): Promise<T> {
  const hold = setInterval(() => undefined, 1 << 30);
  try {
    return await work();
  } finally {
    clearInterval(hold);
  }
}

/**
 * The graceful stop: not ready at once (draining), no new connections,
 * idle keep-alive connections closed, busy ones after their answer, the
 * store flushed and the database closed; exit 0. Past `timeoutMs` (below
 * Docker's 10 s grace by default) every connection is cut and the process
 * exits 1, so an orchestrator never has to SIGKILL it. A second signal
 * while stopping is ignored: the timeout bounds the wait.
 */
function drain(app: FastifyInstance, signal: string, timeoutMs: number): void {
  app.log.info({ signal, timeoutMs }, "shutting down: finishing requests in flight");
  app.startDraining();
  const deadline = setTimeout(() => {
    app.log.error({ timeoutMs }, "shutdown did not finish in time; cutting every connection and exiting");
    app.server.closeAllConnections();
    process.exit(1);
  }, timeoutMs);
  holdingOpen(() => app.close()).then(
    () => {
      clearTimeout(deadline);
      app.log.info("stopped: the database is closed");
      process.exit(0);
    },
    (error: unknown) => {
      app.log.error({ err: error }, "shutdown failed");
      process.exit(1);
    },
  );
}

/**
 * Takes SIGTERM and SIGINT from the start, so that one arriving while the
 * service starts (Fastify logs that it listens before `start` returns) does
 * not kill it mid-way: the stop then begins as soon as it has started.
 * Returns the function that hands over the started app.
 */
function stopOnSignals(timeoutMs: number, logger: Logger): (app: FastifyInstance) => void {
  let started: FastifyInstance | null = null;
  let requested: string | null = null;
  const stop = (signal: string) => {
    if (requested !== null) return;
    requested = signal;
    if (started) drain(started, signal, timeoutMs);
    else logger.info({ signal }, "stop requested while starting: stopping once started");
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  return (app) => {
    started = app;
    if (requested !== null) drain(app, requested, timeoutMs);
  };
}

async function main(): Promise<void> {
  let logger: Logger | null = null;
  try {
    await holdingOpen(async () => {
      const config = parseConfig(process.argv.slice(2), process.env);
      logger = createLogger(config);
      if (config.topologyApply !== null) {
        await applyTopologyFile(config, config.topologyApply, logger);
        process.exit(0);
      }
      const started = stopOnSignals(config.shutdownTimeout, logger);
      started(await start(config, logger));
    });
  } catch (error) {
    if (error instanceof HelpRequested) {
      process.stdout.write(`${error.message}\n`);
      process.exit(0);
    }
    reportStartupFailure(error, logger);
    process.exit(STARTUP_FAILED);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  void main();
}
