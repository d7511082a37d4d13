// Model files at start-up: the preset, applied once to a database that
// has never held an object, and `--topology-apply FILE`, the explicit way to
// apply one later. A preset re-applied at every start would bring back, under
// new ids, the objects deleted through the API, and a state reachable through
// the API (a preset device deleted, its group attached elsewhere) would stop
// the default configuration from starting.
import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import type { Logger } from "pino";
import { ConfigError } from "../config.js";
import type { DriverTable } from "../core/driver.js";
import { KINDS, Model } from "../core/model.js";
import { updateHost } from "../core/objects.js";
import type { KernelProfileName } from "../core/profiles.js";
import { ok } from "../core/result.js";
import { applyTopology, describeTopologyReport, type TopologyReport } from "../core/topology-file.js";
import { TopologyFile } from "../http/schemas/topology.js";
import type { ArbiterStore } from "../store/store.js";

/** The file disagrees with the database, or with itself; nothing was applied. */
export class TopologyConflictError extends Error {}

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
    throw new ConfigError(`topology file ${file} is not valid: ${problems.join("; ")}`);
  }
  return parsed;
}

function firstConflicts(report: TopologyReport): string {
  const [first, ...rest] = report.conflicts;
  return `${first}${rest.length > 0 ? ` (and ${rest.length} more)` : ""}`;
}

async function apply(store: ArbiterStore, spec: TopologyFile): Promise<TopologyReport> {
  const r = await store.execute((model) => ok(applyTopology(model, spec)));
  if (!r.ok) throw new Error(`applying a topology failed: ${r.error.detail}`); // applyTopology never fails
  return r.value;
}

/** No id of any kind was ever handed out (the host's settings are not objects). */
function isNew(model: Model): boolean {
  const ids = model.lastIds();
  // A database whose kernel profile was set (--kernel-profile, PATCH
  // /v1/host) before any preset is still new.
  return KINDS.every((kind) => kind === "host" || ids[kind] === 0);
}

/**
 * Applies the preset if the database has never held an object: no id of any
 * kind was ever handed out (ids are never reused, so deleting everything does
 * not make a database new again). A start that stopped before the preset was
 * committed leaves the database new, and the next start applies it. The
 * check and the apply are one operation: of several replicas starting
 * together on one new database, exactly one applies it.
 */
export async function applyPreset(
  store: ArbiterStore, file: string, spec: TopologyFile, logger: Logger, drivers: DriverTable,
): Promise<void> {
  if (!(await store.read(isNew))) {
    logger.info({ topology: file }, "the database is not new: preset topology not applied (--topology-apply applies a file)");
    return;
  }
  // A dry run on an empty model first: a file that cannot be applied must
  // not leave ids handed out, which would make the database no longer new.
  const dry = applyTopology(new Model(drivers), spec);
  if (dry.conflicts.length > 0) throw new TopologyConflictError(`topology file ${file} cannot be applied: ${firstConflicts(dry)}`);
  const r = await store.execute((model) => ok(isNew(model) ? applyTopology(model, spec) : null));
  const report = r.ok ? r.value : null;
  if (report === null) {
    logger.info({ topology: file }, "another replica applied the preset topology first: not applied again");
    return;
  }
  if (report.conflicts.length > 0) throw new TopologyConflictError(`topology file ${file} cannot be applied: ${firstConflicts(report)}`);
  logger.info({ topology: file, ...report.created }, "preset topology applied to the new database");
}

/**
 * `--topology-apply FILE`: applies the file to the database, all or nothing,
 * and prints what it created, what was already there and every conflict.
 */
export async function applyTopologyCommand(
  store: ArbiterStore, file: string, spec: TopologyFile, databaseFile: string, print: (line: string) => void,
): Promise<void> {
  const report = await apply(store, spec);
  print(`topology ${file} -> database ${databaseFile}`);
  for (const line of describeTopologyReport(report)) print(`  ${line}`);
  if (report.conflicts.length > 0) {
    throw new TopologyConflictError(`topology file ${file} conflicts with the database: ${firstConflicts(report)}; nothing applied`);
  }
}

/**
 * `--kernel-profile`: stored as the host's kernel profile at start-up, after
 * the preset or the applied file, so the flag wins over both and over what
 * the database held (docs/semantics.md §7.3). Unset: nothing is written.
 */
export async function applyKernelProfileFlag(store: ArbiterStore, name: KernelProfileName | null, logger: Logger): Promise<void> {
  if (name === null) return;
  const before = await store.read((model) => model.host().kernelProfile);
  if (before === name) return;
  const r = await store.execute((model) => updateHost(model, { kernelProfile: name }));
  if (!r.ok) throw new Error(`setting the kernel profile failed: ${r.error.detail}`); // updateHost never fails
  logger.info({ kernelProfile: name, was: before }, "kernel profile set by --kernel-profile");
}
