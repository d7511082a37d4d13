// Load generation with wrk, the generator the reference numbers came
// from, in its own process (autocannon ran inside this one; with wrk the
// unchanged raw baseline went from 3,083 to 3,525 attach/detach requests/s
// here). wrk runs bench/wrk/load.lua, one connection per wrk thread; the
// script records every response's latency by request kind and prints them,
// and the percentiles are computed here, exactly.
import { execFile, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { percentile } from "./stats.js";
import { PROJECT_ROOT } from "./seed.js";

const SCRIPT = path.join(PROJECT_ROOT, "bench", "wrk", "load.lua");

export interface KindStats {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
}

export interface LoadResult {
  readonly seconds: number;
  readonly responses: number;
  /** Responses per second over the run. */
  readonly rps: number;
  /** Latency percentiles over every response, ms. */
  readonly p50: number;
  readonly p99: number;
  /** Per request kind: "get", or "attach" and "detach". */
  readonly kinds: Record<string, KindStats>;
  readonly statusCodes: Record<string, number>;
  readonly non2xx: number;
  readonly status409: number;
  readonly status5xx: number;
  /** Connect, read and write errors. */
  readonly errors: number;
  readonly timeouts: number;
  /** 2xx answers that changed nothing (an attach to where the group already was). */
  readonly noops: number;
}

/** What the connections do: GET one path, or attach/detach cycles (see attachDetachWorkload). */
export type Workload =
  | { readonly kind: "get"; readonly path: string }
  | { readonly kind: "attach-detach"; readonly groupsFile: string; readonly groups: number };

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  readonly workload: Workload;
}

/** Something the bench needs is missing: reported as one line, not a stack. */
export class BenchSetupError extends Error {}

/** Throws with install instructions when wrk is not on the PATH. */
export function checkWrk(): string {
  const r = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  if (r.error) {
    throw new BenchSetupError("npm run bench needs wrk on the PATH (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)");
  }
  return (r.stdout + r.stderr).split("\n")[0]!.trim();
}

interface WrkOutput {
  durationUs: number;
  requests: number;
  statuses: Record<string, number>;
  noops: Record<string, number>;
  errors: { connect: number; read: number; write: number; timeout: number };
  samplesUs: Record<string, number[]>;
}

function wrk(args: string[]): Promise<WrkOutput> {
  return new Promise((resolve, reject) => {
    execFile("wrk", args, { maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`wrk ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      const line = stdout.split("\n").reverse().find((l) => l.startsWith("{"));
      if (!line) return reject(new Error(`wrk printed no result:\n${stdout}\n${stderr}`));
      resolve(JSON.parse(line) as WrkOutput);
    });
  });
}

function wrkFor(options: LoadOptions): Promise<WrkOutput> {
  const w = options.workload;
  if (w.kind === "attach-detach" && w.groups < options.connections) {
    throw new Error(`attach/detach load: ${w.groups} groups is too few for ${options.connections} connections`);
  }
  const scriptArgs = w.kind === "get" ? ["get", w.path] : ["attach-detach", w.groupsFile, String(options.connections)];
  return wrk([
    "-t", String(options.connections), "-c", String(options.connections), "-d", `${options.seconds}s`,
    "--timeout", "10s", "-s", SCRIPT, options.url, "--", ...scriptArgs,
  ]);
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return runLoads([options]);
}

/**
 * Several loads at the same time (one per server, e.g. per replica), as one
 * result: responses and statuses summed over the longest run's time,
 * percentiles over every response of all of them.
 */
export async function runLoads(loads: readonly LoadOptions[]): Promise<LoadResult> {
  const outs = await Promise.all(loads.map(wrkFor));
  const all: number[] = [];
  const byKind = new Map<string, number[]>();
  const statuses: Record<string, number> = {};
  let errors = 0;
  let timeouts = 0;
  let noops = 0;
  for (const out of outs) {
    for (const [kind, us] of Object.entries(out.samplesUs)) {
      let ms = byKind.get(kind);
      if (!ms) byKind.set(kind, (ms = []));
      for (const v of us) {
        ms.push(v / 1000);
        all.push(v / 1000);
      }
    }
    for (const [code, n] of Object.entries(out.statuses)) statuses[code] = (statuses[code] ?? 0) + n;
    errors += out.errors.connect + out.errors.read + out.errors.write;
    timeouts += out.errors.timeout;
    noops += Object.values(out.noops).reduce((a, b) => a + b, 0);
  }
  const kinds: Record<string, KindStats> = {};
  for (const [kind, ms] of byKind) kinds[kind] = { count: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99) };
  const seconds = Math.max(...outs.map((o) => o.durationUs)) / 1e6;
  const count = (pred: (code: number) => boolean) =>
    Object.entries(statuses).reduce((n, [code, c]) => (pred(Number(code)) ? n + c : n), 0);
  return {
    seconds,
    responses: all.length,
    rps: all.length / seconds,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    kinds,
    statusCodes: statuses,
    non2xx: count((c) => c < 200 || c >= 300),
    status409: count((c) => c === 409),
    status5xx: count((c) => c >= 500),
    errors,
    timeouts,
    noops,
  };
}

/**
 * Attach then detach, over and over, each connection on random groups of its
 * own (bench/wrk/load.lua deals the groups out), so every request is a
 * legitimate success. Group g always goes to domain targetDomain[g]. Writes
 * the groups file into `dir`.
 */
export function attachDetachWorkload(dir: string, name: string, groupIds: Int32Array, targetDomain: Int32Array): Workload {
  const groupsFile = path.join(dir, `${name}.groups`);
  let text = "";
  for (const g of groupIds) text += `${g} ${targetDomain[g]}\n`;
  writeFileSync(groupsFile, text);
  return { kind: "attach-detach", groupsFile, groups: groupIds.length };
}
