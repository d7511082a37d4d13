// The service as a process, started the way `npm start`, the Dockerfile and
// docker-compose.yml start it (bin/iommu-arbiter-server, which execs node on
// dist/server.js, built by `npm run build`, which `npm test` runs first;
// configured by environment variables), stopped with SIGTERM, and started
// again on the same database file; and every way it can fail to start, each
// told as one line on stderr with exit code 2.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, linkSync, mkdirSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync, closeSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { applyMigrations } from "../../src/store/migrate.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";

// Each test starts real processes, several seconds each on a loaded machine.
const SLOW = 120_000;

const LAUNCHER = path.join(PROJECT_ROOT, "bin", "iommu-arbiter-server");

interface Running {
  readonly child: ChildProcess;
  readonly base: string;
  readonly output: () => string;
}

function startServer(env: Record<string, string>, args: string[] = []): Promise<Running> {
  const child = spawn(LAUNCHER, args, {
    cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1]!, output: () => out });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
}

function stop(server: Running): Promise<number | null> {
  return new Promise((resolve) => {
    server.child.removeAllListeners("exit");
    server.child.on("exit", (code) => resolve(code));
    server.child.kill("SIGTERM");
  });
}

interface Exited { code: number | null; stdout: string; stderr: string }

/** Runs the launcher to its end; `as` runs it as another user (the tests run as root, who may read anything). */
function runToExit(env: Record<string, string>, args: string[] = [], as: { uid: number; gid: number } | object = {}): Promise<Exited> {
  const child = spawn(LAUNCHER, args, {
    cwd: PROJECT_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], ...as,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** Exit code 2 and exactly one line on stderr, naming the cause. */
function expectOneLineFailure(r: Exited, cause: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^iommu-arbiter: /);
  expect(lines[0]).toMatch(cause);
}

/** Permission checks are bypassed by root: such cases run the server as nobody. */
const unprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

describe("server process", () => {
  const { dir, file } = tempDbFile();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = {
    HOST: "127.0.0.1", PORT: "0", DATABASE_FILE: file, LOG_LEVEL: "info",
    TOPOLOGY_FILE: path.join(PROJECT_ROOT, "examples", "intel-2s-server.json"),
  };

  it("starts from environment variables, serves, stops on SIGTERM and keeps its state across a restart", { timeout: SLOW }, async () => {
    const first = await startServer(env);
    expect((await fetch(`${first.base}/healthz`)).status).toBe(200);
    const units = (await (await fetch(`${first.base}/v1/units`)).json()) as { items: { name: string }[] };
    expect(units.items.map((u) => u.name)).toEqual(["dmar0", "dmar1"]);
    const container = await fetch(`${first.base}/v1/containers`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "restart-check" }),
    });
    expect(container.status).toBe(201);
    const attach = await fetch(`${first.base}/v1/containers/${((await container.json()) as { id: number }).id}/attach`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ groupId: 1 }),
    });
    expect(attach.status).toBe(200);
    const placed = (await attach.json()) as { domain: { id: number } };
    expect(await stop(first)).toBe(0);

    // Same file, same topology file: nothing duplicated, the attach survived.
    const second = await startServer(env);
    // While it runs, a second process on the same file is refused: one writer.
    const intruder = await runToExit(env);
    expectOneLineFailure(intruder, /in use by another process/);
    const group = (await (await fetch(`${second.base}/v1/groups/1`)).json()) as { domainId: number };
    expect(group.domainId).toBe(placed.domain.id);
    const again = (await (await fetch(`${second.base}/v1/units`)).json()) as { items: unknown[] };
    expect(again.items).toHaveLength(2);
    expect(await stop(second)).toBe(0);
  });

  it.each([
    [{ PORT: "http" }, /port must be an integer/],
    [{ LOG_LEVEL: "loud" }, /log level must be one of/],
    [{ KERNEL_PROFILE: "5.15" }, /kernel profile must be one of 6\.1, 6\.2, 6\.5\+, got "5\.15"/],
    [{ TOPOLOGY_FILE: "/nonexistent/topology.json" }, /cannot read topology file/],
    [{ TOPOLOGY_FILE: path.join(PROJECT_ROOT, "package.json") }, /is not valid/],
  ])("refuses bad configuration %j with a clear message and exit code 2", { timeout: SLOW }, async (bad, message) => {
    const r = await runToExit({ ...env, DATABASE_FILE: path.join(dir, "bad.db"), ...bad });
    expectOneLineFailure(r, message);
  });

  it("refuses an unknown flag in one line, and --help prints the usage with exit code 0", { timeout: SLOW }, async () => {
    expectOneLineFailure(await runToExit(env, ["--bogus"]), /Unknown option '--bogus'/);
    const help = await runToExit(env, ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage:[\s\S]*--topology-apply/);
  });

  it("refuses a second process on the same file through a symbolic link, a path through .., or a hard link", { timeout: SLOW }, async () => {
    const d = path.join(dir, "names");
    mkdirSync(path.join(d, "real"), { recursive: true });
    const file = path.join(d, "real", "a.db");
    const server = await startServer({ ...env, DATABASE_FILE: file });
    symlinkSync(file, path.join(d, "link.db"));
    linkSync(file, path.join(d, "hard.db"));
    const [viaLink, viaDots, viaHard] = await Promise.all([
      runToExit({ ...env, DATABASE_FILE: path.join(d, "link.db") }),
      runToExit({ ...env, DATABASE_FILE: `${d}/real/../real/a.db` }),
      runToExit({ ...env, DATABASE_FILE: path.join(d, "hard.db") }),
    ]);
    expectOneLineFailure(viaLink, /link\.db is in use by another process/);
    expectOneLineFailure(viaDots, /is in use by another process/);
    expectOneLineFailure(viaHard, /hard\.db has 2 hard links/);
    expect(await stop(server)).toBe(0);
  });

  it("two processes starting at once on one new database through two names: one serves, the other is refused", { timeout: SLOW }, async () => {
    const d = path.join(dir, "race");
    mkdirSync(path.join(d, "real"), { recursive: true });
    symlinkSync(path.join(d, "real"), path.join(d, "alias"));
    const outcomes = await Promise.allSettled([
      startServer({ ...env, DATABASE_FILE: path.join(d, "real", "a.db") }),
      startServer({ ...env, DATABASE_FILE: path.join(d, "alias", "a.db") }),
    ]);
    const served = outcomes.filter((o): o is PromiseFulfilledResult<Running> => o.status === "fulfilled");
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(served).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(String(refused[0]!.reason)).toMatch(/exited with 2:\niommu-arbiter: database file .*a\.db is in use by another process[^\n]*\n$/);
    const units = (await (await fetch(`${served[0]!.value.base}/v1/units`)).json()) as { items: unknown[] };
    expect(units.items).toHaveLength(2);
    expect(await stop(served[0]!.value)).toBe(0);
  });

  describe("every start-up failure is one line on stderr and exit code 2", () => {
    let n = 0;
    /** A fresh directory for one case, open to the unprivileged user. */
    const caseDir = () => {
      const d = path.join(dir, `case-${++n}`);
      mkdirSync(d);
      chmodSync(dir, 0o755);
      chmodSync(d, 0o755);
      return d;
    };
    const migrated = (file: string, change?: (db: Database.Database) => void) => {
      applyMigrations(file, MIGRATIONS);
      if (change) {
        const db = new Database(file);
        change(db);
        db.close();
      }
      return file;
    };
    type Case = () => Promise<{ env: Record<string, string>; as?: object; after?: () => Promise<void> }> | { env: Record<string, string>; as?: object };

    const cases: [string, Case, RegExp][] = [
      ["port in use", async () => {
        const blocker = net.createServer();
        await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
        const port = (blocker.address() as net.AddressInfo).port;
        return {
          env: { PORT: String(port), DATABASE_FILE: path.join(caseDir(), "a.db") },
          after: () => new Promise<void>((resolve) => blocker.close(() => resolve())),
        };
      }, /port \d+ on 127\.0\.0\.1 is already in use/],
      // A 64-character label is not a valid DNS name: refused by the resolver without a query.
      ["unresolvable host", () => ({ env: { HOST: `${"x".repeat(64)}.invalid`, DATABASE_FILE: path.join(caseDir(), "a.db") } }),
        /host x+\.invalid does not resolve/],
      // TEST-NET-1: never an address of this machine; binding it fails locally, nothing is sent.
      ["host not local", () => ({ env: { HOST: "192.0.2.1", DATABASE_FILE: path.join(caseDir(), "a.db") } }),
        /host 192\.0\.2\.1 is not an address of this machine/],
      ["database directory cannot be created", () => {
        const d = caseDir();
        writeFileSync(path.join(d, "plain-file"), "");
        return { env: { DATABASE_FILE: path.join(d, "plain-file", "sub", "a.db") } };
      }, /cannot create database directory .*plain-file\/sub: a component of the path is not a directory/],
      ["database directory not writable", () => {
        const d = caseDir();
        chmodSync(d, 0o555);
        return { env: { DATABASE_FILE: path.join(d, "a.db") }, as: unprivileged };
      }, /database directory .*case-\d+ is not writable/],
      ["database file unreadable", () => {
        const d = caseDir();
        chmodSync(d, 0o777);
        const file = migrated(path.join(d, "a.db"));
        chmodSync(file, 0o000);
        return { env: { DATABASE_FILE: file }, as: unprivileged };
      }, /cannot read database file .*a\.db: permission denied/],
      ["not a SQLite file", () => {
        const file = path.join(caseDir(), "a.db");
        writeFileSync(file, "name,address\nalice,somewhere\n".repeat(100));
        return { env: { DATABASE_FILE: file } };
      }, /database file .*a\.db is not a SQLite database/],
      ["a corrupt SQLite file", () => {
        const file = path.join(caseDir(), "a.db");
        const db = new Database(file);
        db.exec(`CREATE TABLE t (x TEXT); CREATE INDEX ti ON t (x)`);
        const insert = db.prepare(`INSERT INTO t VALUES (?)`);
        db.transaction(() => { for (let i = 0; i < 2000; i++) insert.run(`row ${i}`); })();
        db.close();
        // Garbage over the cell pointers of a b-tree page in the middle of the file.
        const fd = openSync(file, "r+");
        writeSync(fd, Buffer.alloc(64, 0x5a), 0, 64, 4096 * 3 + 100);
        closeSync(fd);
        return { env: { DATABASE_FILE: file } };
      }, /database file .*a\.db is corrupt \(quick_check: /],
      ["another program's SQLite database", () => {
        const file = path.join(caseDir(), "a.db");
        const db = new Database(file);
        db.exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)`);
        db.close();
        return { env: { DATABASE_FILE: file } };
      }, /database file .*a\.db belongs to another program \(tables customers, no _prisma_migrations\)/],
      ["another Prisma program's database", () => {
        const file = path.join(caseDir(), "a.db");
        const db = new Database(file);
        db.exec(`CREATE TABLE "_prisma_migrations" ("id" TEXT PRIMARY KEY, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
          "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME, "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
          "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
          INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name) VALUES ('1', 'x', '2020-01-01', '20200101000000_shop');`);
        db.close();
        return { env: { DATABASE_FILE: file } };
      }, /database file .*a\.db was made by another program \(its migrations 20200101000000_shop are none of this build's\)/],
      ["a migration this build does not know", () => {
        const file = migrated(path.join(caseDir(), "a.db"), (db) => db.exec(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name) VALUES ('f', 'x', '2099-01-01', '20990101000000_future')`));
        return { env: { DATABASE_FILE: file } };
      }, /database has migration 20990101000000_future, which this build does not know/],
      ["a preset topology that cannot be applied", () => {
        const d = caseDir();
        const topology = path.join(d, "dangling.json");
        writeFileSync(topology, JSON.stringify({ units: [], groups: [{ name: "g0", unit: "dmar9" }] }));
        return { env: { DATABASE_FILE: path.join(d, "a.db"), TOPOLOGY_FILE: topology } };
      }, /topology file .*dangling\.json cannot be applied: group g0 names unit dmar9, which neither the database nor the file defines/],
      // Anything the service does not name itself: still one line, no stack trace.
      ["an unexpected error (a table missing)", () => {
        const file = migrated(path.join(caseDir(), "a.db"), (db) => db.exec(`DROP TABLE "Fault"`));
        return { env: { DATABASE_FILE: file } };
      }, /^iommu-arbiter: start-up failed: .*Fault/],
    ];

    // Independent processes on their own files: run side by side.
    it.concurrent.each(cases)("%s", { timeout: SLOW }, async (_name, setup, cause) => {
      const c = await setup();
      try {
        const r = await runToExit({ ...env, ...c.env }, [], c.as ?? {});
        expectOneLineFailure(r, cause);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      } finally {
        if ("after" in c && c.after) await c.after();
      }
    });
  });
});
