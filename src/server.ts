// `npm start`: open (and migrate) the database, load the topology, listen.
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import { ConfigError, parseConfig, type Config } from "./config.js";
import { applyTopology } from "./core/topology-file.js";
import { buildApp } from "./http/app.js";
import { loadTokens, refuseOpenNonLoopback } from "./http/tokens.js";
import { TopologyFile } from "./http/schemas/topology.js";
import { SqliteStore, StoreLockedError } from "./store/store.js";
import { MigrationError } from "./store/migrate.js";

export function readTopologyFile(file: string): TopologyFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ConfigError(`cannot read topology file ${file}: ${(error as Error).message}`);
  }
  // The same validator as request bodies: no type coercion, no unknown fields.
  const validate = new Ajv({ strict: false, allErrors: true }).compile<TopologyFile>(TopologyFile);
  if (!validate(parsed)) {
    const problems = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "/"}: ${e.message ?? "is invalid"}`);
    throw new ConfigError(`topology file ${file} is not valid:\n  ${problems.join("\n  ")}`);
  }
  return parsed;
}

/**
 * Loading a large database leaves tens of MB of garbage that V8 would keep
 * resident for a long time. Full collections before serving return it: the
 * second one releases the pages the first one emptied (measured at 50,000
 * groups: 187 → 176 MB). Needs node --expose-gc, which
 * bin/iommu-arbiter-server passes; without it this does nothing.
 */
function releaseStartupGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

export async function start(config: Config) {
  const tokens = loadTokens(config);
  refuseOpenNonLoopback(config.host, tokens);
  const topology = config.topologyFile ? readTopologyFile(config.topologyFile) : null;
  mkdirSync(path.dirname(config.databaseFile), { recursive: true });
  // The store opens before the app (and its logger) exists.
  let warn: (error: Error) => void = () => undefined;
  const store = await SqliteStore.open({
    file: config.databaseFile, migrationsDir: config.migrationsDir, eventRetention: config.eventRetention,
    onCheckpointerFailure: (error) => warn(error),
  });
  const app = await buildApp({
    store, logger: { level: config.logLevel }, tokens,
    limits: { objectsPerClient: config.objectQuota, activeFaults: config.maxFaults, faultCount: config.maxFaultCount },
  });
  warn = (error) => app.log.warn({ err: error }, "background WAL checkpointer failed; SQLite checkpoints inline from now on");
  app.addHook("onClose", () => store.close());
  if (topology) {
    const r = await store.execute((model) => applyTopology(model, topology));
    if (!r.ok) {
      await app.close();
      throw new ConfigError(`topology file ${config.topologyFile}: ${r.error.detail}`);
    }
    app.log.info({ topology: config.topologyFile, ...r.value.created }, "topology loaded");
  }
  releaseStartupGarbage();
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close(); // release the database before giving up
    throw new ConfigError(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
  }
  return app;
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
    const app = await start(config);
    const stop = async (signal: string) => {
      app.log.info({ signal }, "shutting down");
      await app.close();
      process.exit(0);
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  } catch (error) {
    if (error instanceof ConfigError || error instanceof StoreLockedError || error instanceof MigrationError) {
      console.error(`iommu-arbiter: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  void main();
}
