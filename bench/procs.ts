// Server child processes: start one on a free port, wait until /healthz
// answers, read its memory from /proc, stop it. Every child started here is
// tracked and killed if the bench exits early, so no server outlives it.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { PROJECT_ROOT } from "./seed.js";

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Memory {
  /** Peak resident set (VmHWM), MiB. */
  readonly peakMiB: number;
  /** Current resident set (VmRSS), MiB. */
  readonly rssMiB: number;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return m ? Number(m[1]) : Number.NaN;
  };
  return { peakMiB: kb("VmHWM") / 1024, rssMiB: kb("VmRSS") / 1024 };
}

export interface Server {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  /** From spawn until /healthz first answered 200, ms. */
  readonly startupMs: number;
  memory(): Memory;
  /** SIGTERM, then SIGKILL if it has not exited within a few seconds. */
  stop(): Promise<void>;
}

function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/healthz`, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What `npm start` runs after building, with the same process settings. */
const SERVICE_LAUNCHER = path.join(PROJECT_ROOT, "bin", "iommu-arbiter-server");

export interface StartOptions {
  readonly name: string;
  /** The program: node, or a launcher that execs node (so the pid stays the server's). */
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly readyTimeoutMs?: number;
}

/**
 * Starts `<command> ...args --port <free>` (one process, so its pid is the
 * server's own and /proc shows the server's memory) and waits for /healthz.
 */
export async function startServer(options: StartOptions): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child = spawn(options.command, [...options.args, "--port", String(port)], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 8000);
    await exit;
    clearTimeout(timer);
  };

  const deadline = started + (options.readyTimeoutMs ?? 180_000);
  for (;;) {
    if (exited) {
      const e = exited as { code: number | null; signal: NodeJS.Signals | null };
      throw new Error(`${options.name} exited during start-up (code ${e.code}, signal ${e.signal}):\n${output}`);
    }
    if (await healthy(url)) break;
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`${options.name} did not answer /healthz within ${options.readyTimeoutMs ?? 180_000} ms:\n${output}`);
    }
    await sleep(20);
  }
  const startupMs = performance.now() - started;
  const pid = child.pid!;
  return {
    name: options.name, pid, url, startupMs, stop,
    memory: () => memoryOf(pid),
  };
}

/** The service itself, as `npm start` runs it (the compiled build), on `dbFile`. */
export function startService(dbFile: string, topology = "none", extraArgs: readonly string[] = []): Promise<Server> {
  return startServer({
    name: "service",
    command: SERVICE_LAUNCHER,
    // The bench's whole load comes from one address: per-client budgets
    // would measure the rate limiter, not the service.
    args: ["--db", dbFile, "--log-level", "warn", "--topology", topology, "--rate-limit-reads", "0", "--rate-limit-writes", "0", ...extraArgs],
  });
}

/** The service on the PostgreSQL database at `url` (one replica of several, when started several times). */
export function startPostgresService(url: string, name = "service"): Promise<Server> {
  return startServer({
    name, command: SERVICE_LAUNCHER,
    args: ["--log-level", "warn", "--topology", "none", "--rate-limit-reads", "0", "--rate-limit-writes", "0"],
    env: { DATABASE_URL: url },
  });
}

/** The raw `pg` baseline (bench/pg-baseline-server.ts) on the PostgreSQL database at `url`. */
export function startPostgresBaseline(url: string): Promise<Server> {
  return startServer({
    name: "pg-baseline", command: process.execPath,
    args: ["--import", "tsx", path.join(PROJECT_ROOT, "bench/pg-baseline-server.ts"), "--url", url],
  });
}

/** The raw better-sqlite3 baseline; `extraArgs` e.g. ["--synchronous", "normal"] (default full, like the service). */
export function startBaseline(dbFile: string, extraArgs: readonly string[] = []): Promise<Server> {
  return startServer({
    name: "baseline", command: process.execPath,
    args: ["--import", "tsx", path.join(PROJECT_ROOT, "bench/baseline-server.ts"), "--db", dbFile, ...extraArgs],
  });
}

/** Runs `fn` with a started server and always stops it afterwards. */
export async function withServer<T>(start: () => Promise<Server>, fn: (server: Server) => Promise<T>): Promise<T> {
  const server = await start();
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}
