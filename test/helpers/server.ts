// Real servers for the race and crash tests: the service as a child process
// (bin/iommu-arbiter-server, as `npm start` runs it), and an HTTP client that
// keeps one connection of its own, as a separate client machine would.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { PROJECT_ROOT } from "../../src/config.js";

const LAUNCHER = path.join(PROJECT_ROOT, "bin", "iommu-arbiter-server");

export interface ServerProcess {
  readonly child: ChildProcess;
  /** http://127.0.0.1:<port> */
  readonly base: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGKILL: no shutdown hook runs; resolves once the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM, the graceful stop; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts the launcher with `env` on top of this process's environment and
 * resolves once its log says where it listens (port 0 picks a free one).
 */
export function startServer(env: Record<string, string>, startTimeoutMs = 20_000): Promise<ServerProcess> {
  const child = spawn(LAUNCHER, [], {
    cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let exited: Promise<void> | null = null;
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const running = (base: string): ServerProcess => ({
    child, base,
    output: () => out,
    kill9() {
      exited ??= exit.then(() => undefined);
      child.kill("SIGKILL");
      return exited;
    },
    stop() {
      child.kill("SIGTERM");
      return exit;
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start within ${startTimeoutMs} ms:\n${out}`));
    }, startTimeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(running(m[1]!));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
}

export interface Answer<T = unknown> {
  readonly status: number;
  readonly contentType: string;
  /** The response headers (lower-case names). */
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** Parsed JSON, or null for an empty body. */
  readonly body: T;
}

/**
 * One client with exactly one keep-alive connection: its requests go one
 * after another on the same socket, like a separate machine's would.
 * A request that gets no complete answer rejects (connection reset, refused,
 * or no answer within `timeoutMs`).
 */
export class SocketClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly url: URL;

  constructor(base: string, private readonly timeoutMs = 15_000) {
    this.url = new URL(base);
  }

  send<T = unknown>(method: string, route: string, body?: unknown): Promise<Answer<T>> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request({
        agent: this.agent, host: this.url.hostname, port: Number(this.url.port), method, path: route,
        headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: this.timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          if (!res.complete) {
            reject(new Error(`${method} ${route}: answer cut short`));
            return;
          }
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({
              status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), headers: res.headers, text,
              body: (text.length > 0 ? JSON.parse(text) : null) as T,
            });
          } catch (error) {
            reject(new Error(`${method} ${route}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)} (${String(error)})`));
          }
        });
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${route}: no answer within ${this.timeoutMs} ms`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A small seeded generator (mulberry32), so a failing schedule can be run again. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from nothing");
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** A seed from the environment variable `name` (to replay a run), else a fresh one. */
export function seedFrom(name: string): number {
  const given = process.env[name];
  if (given !== undefined && given !== "") return Number(given) >>> 0;
  return Math.floor(Math.random() * 2 ** 32);
}
