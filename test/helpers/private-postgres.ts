// A private PostgreSQL 15 instance for one test file: for the tests that must
// stop, restart or kill the database server itself, which the shared server
// on 127.0.0.1:5432 must never be. Everything lives in one temporary
// directory (data, unix socket, log); the server listens on 127.0.0.1 only,
// on a port the OS gave, with trust auth and fsync on. PostgreSQL refuses to
// run as root, so its programs run as the `postgres` user.
import { execFile, execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./listening.js";

const run = promisify(execFile);
const BIN = process.env.TEST_POSTGRES_BIN ?? "/usr/lib/postgresql/15/bin";
/** The shared server's port: a private instance never takes it, whatever the OS hands out. */
const SHARED_PORT = 5432;

export interface PrivatePostgres {
  readonly port: number;
  /** The temporary directory holding everything of this instance. */
  readonly dir: string;
  /** postgresql://postgres@127.0.0.1:<port>/<db> (default db: postgres). */
  url(db?: string): string;
  /** Starts the stopped server again, same port, same data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Fast shutdown: open transactions are rolled back, clients disconnected, a clean checkpoint. */
  stop(): Promise<void>;
  /** Immediate shutdown: no checkpoint, as a crash would leave it; the next start recovers from the WAL. */
  kill(): Promise<void>;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The server's log so far (for a failing test's message). */
  log(): string;
  /** Stops the server if it runs and removes the directory. */
  destroy(): Promise<void>;
}

function owner(): { uid: number; gid: number } {
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid, gid };
}

/** The argv that runs a PostgreSQL program as the postgres user (directly when this process already is not root). */
function asPostgres(program: string, args: string[]): [string, string[]] {
  const exe = path.join(BIN, program);
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", exe, ...args]] : [exe, args];
}

/** Starts a new private instance (initdb + start). Call destroy() when done. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "arbiter-pg-"));
  const data = path.join(dir, "data");
  const logFile = path.join(dir, "server.log");
  const { uid, gid } = owner();
  chownSync(dir, uid, gid);
  let port = await freePort();
  while (port === SHARED_PORT) port = await freePort();

  const pgCtl = async (args: string[]) => {
    const [cmd, argv] = asPostgres("pg_ctl", ["-D", data, ...args]);
    await run(cmd, argv, { cwd: dir });
  };
  let running = false;
  // On an abrupt end of the test process: no server left behind.
  const onExit = () => {
    if (!running) return;
    try {
      const [cmd, argv] = asPostgres("pg_ctl", ["-D", data, "stop", "-m", "immediate", "-w"]);
      execFileSync(cmd, argv, { cwd: dir, stdio: "ignore" });
    } catch {
      // best effort: the process is ending
    }
  };
  process.once("exit", onExit);

  const instance: PrivatePostgres = {
    port, dir,
    url: (db = "postgres") => `postgresql://postgres@127.0.0.1:${port}/${db}`,
    async start() {
      // -w: returns once the server accepts connections.
      await pgCtl(["start", "-w", "-t", "60", "-l", logFile]);
      running = true;
    },
    async stop() {
      await pgCtl(["stop", "-m", "fast", "-w", "-t", "60"]);
      running = false;
    },
    async kill() {
      await pgCtl(["stop", "-m", "immediate", "-w", "-t", "60"]);
      running = false;
    },
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: instance.url(), connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, "")}"`);
      } finally {
        await client.end();
      }
      return instance.url(name);
    },
    log: () => {
      try {
        return readFileSync(logFile, "utf8");
      } catch {
        return "";
      }
    },
    async destroy() {
      try {
        if (running) await instance.kill();
      } finally {
        process.removeListener("exit", onExit);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };

  try {
    // --no-sync: initdb's own final flush only; the server itself runs with fsync on.
    const [cmd, argv] = asPostgres("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"]);
    await run(cmd, argv, { cwd: dir });
    appendFileSync(path.join(data, "postgresql.conf"), [
      "",
      "# private test instance (test/helpers/private-postgres.ts)",
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      "fsync = on",
      "synchronous_commit = on",
      "max_connections = 200",
      "shared_buffers = 32MB",
      "",
    ].join("\n"));
    // Trust, and only over loopback and this instance's own socket.
    writeFileSync(path.join(data, "pg_hba.conf"), [
      "local all all trust",
      "host all all 127.0.0.1/32 trust",
      "",
    ].join("\n"));
    await instance.start();
  } catch (error) {
    await instance.destroy().catch(() => undefined);
    throw new Error(`private PostgreSQL did not start: ${String(error)}\n${instance.log()}`);
  }
  return instance;
}
