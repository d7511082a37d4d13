// A failing disk under a running server: the disk fills up (a file-size limit
// set on the live process with prlimit) or returns I/O errors (a small
// LD_PRELOAD shim, built here with the machine's C compiler, fails pwrite and
// fsync while a flag file exists, or fsync alone). In every case each request ends with an
// answer (503 problem+json with Retry-After for changes, never a hang),
// /readyz says not-ready while the fault lasts, the service recovers by itself
// once it clears, and no acknowledged change is lost across a restart.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { tempDbFile } from "../helpers/app.js";

const LAUNCHER = path.join(PROJECT_ROOT, "bin", "iommu-arbiter-server");
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Server {
  readonly child: ChildProcess;
  readonly base: string;
}

function start(file: string, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(LAUNCHER, [], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, DATABASE_FILE: file, PORT: "0", TOPOLOGY_FILE: "none", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 20_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1]! });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.child.removeAllListeners("exit");
    server.child.once("exit", () => resolve());
    server.child.kill("SIGKILL");
  });
}

interface Answer {
  status: number;
  type: string | null;
  retryAfter: string | null;
  body: Record<string, unknown> | null;
}

/** Every request must end: a hang fails the test through the abort timer. */
async function call(base: string, method: string, url: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${url}`, {
    method,
    signal: AbortSignal.timeout(10_000),
    ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status, type: res.headers.get("content-type"), retryAfter: res.headers.get("retry-after"),
    body: text ? (JSON.parse(text) as Record<string, unknown>) : null,
  };
}

async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectUnavailable(a: Answer): void {
  expect(a.status).toBe(503);
  expect(a.type).toMatch(/^application\/problem\+json/);
  expect(a.retryAfter).toMatch(/^\d+$/);
  expect(a.body).toMatchObject({ errno: "EIO", code: -5, soft: false, reason: "store-unavailable" });
}

/** Units whose creation was acknowledged must all be on disk, and nothing refused. */
function checkDisk(file: string, acknowledged: string[], refused: string[]): void {
  const db = new Database(file, { readonly: true });
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    const names = new Set((db.prepare(`SELECT "name" FROM "Unit"`).all() as { name: string }[]).map((r) => r.name));
    for (const n of acknowledged) expect(names.has(n), `acknowledged unit ${n} is on disk`).toBe(true);
    for (const n of refused) expect(names.has(n), `refused unit ${n} is not on disk`).toBe(false);
  } finally {
    db.close();
  }
}

/**
 * Creates units while the fault is on. Writes that got in before the fault
 * took hold are acknowledged; after that each is a 503, and the service
 * stays not-ready.
 */
async function writeThroughFault(base: string, prefix: string, acknowledged: string[], refused: string[]): Promise<void> {
  let failures = 0;
  for (let i = 0; i < 40 && failures < 5; i++) {
    const name = `${prefix}-${i}`;
    const a = await call(base, "POST", "/v1/units", { name, driver: "mock" });
    if (a.status === 201) acknowledged.push(name);
    else {
      expectUnavailable(a);
      refused.push(name);
      failures++;
    }
  }
  expect(failures).toBeGreaterThan(0);
  const ready = await call(base, "GET", "/readyz");
  expect(ready.status).toBe(503);
  expect(ready.body).toMatchObject({ reason: "not-ready" });
  // Reads go on being answered from the model, which matches the disk.
  const units = await call(base, "GET", "/v1/units?limit=1000");
  expect(units.status).toBe(200);
  const listed = (units.body!.items as { name: string }[]).map((u) => u.name);
  for (const n of refused) expect(listed).not.toContain(n);
  for (const n of acknowledged) expect(listed).toContain(n);
}

/** Writes acknowledged while the disk is still well. */
async function writeBeforeFault(base: string): Promise<string[]> {
  const acknowledged: string[] = [];
  for (let i = 0; i < 5; i++) {
    expect((await call(base, "POST", "/v1/units", { name: `before-${i}`, driver: "mock" })).status).toBe(201);
    acknowledged.push(`before-${i}`);
  }
  return acknowledged;
}

/**
 * Once the fault is cleared: ready again by itself, takes a change, and
 * after a kill -9 and a restart has exactly the acknowledged changes.
 */
async function recoversAndKeepsEverything(server: Server, file: string, acknowledged: string[], refused: string[]): Promise<void> {
  await until(async () => (await call(server.base, "GET", "/readyz")).status === 200);
  expect((await call(server.base, "POST", "/v1/units", { name: "after", driver: "mock" })).status).toBe(201);
  acknowledged.push("after");
  await stop(server);
  checkDisk(file, acknowledged, refused);
  const again = await start(file);
  const units = await call(again.base, "GET", "/v1/units?limit=1000");
  expect((units.body!.items as { name: string }[]).map((u) => u.name).sort()).toEqual([...acknowledged].sort());
  await stop(again);
}

/** Builds the EIO shim into `dir` with the machine's C compiler; returns its path. */
function buildShim(dir: string): string {
  const shim = path.join(dir, "eio.so");
  const source = path.join(dir, "eio.c");
  writeFileSync(source, `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
/* Fails writes and syncs with EIO while the file named by EIO_FLAG_FILE exists,
   syncs alone while the one named by SYNC_FLAG_FILE does. */
static int exists(const char *variable) {
  const char *flag = getenv(variable);
  struct stat st;
  return flag != NULL && stat(flag, &st) == 0;
}
static int failing(void) { return exists("EIO_FLAG_FILE"); }
static int syncFailing(void) { return exists("EIO_FLAG_FILE") || exists("SYNC_FLAG_FILE"); }
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef int (*sync_fn)(int);
#define REAL(name, type) static type real_##name; if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  REAL(pwrite64, pwrite_fn);
  if (failing()) { errno = EIO; return -1; }
  return real_pwrite64(fd, buf, n, off);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  REAL(pwrite, pwrite_fn);
  if (failing()) { errno = EIO; return -1; }
  return real_pwrite(fd, buf, n, off);
}
int fsync(int fd) {
  REAL(fsync, sync_fn);
  if (syncFailing()) { errno = EIO; return -1; }
  return real_fsync(fd);
}
int fdatasync(int fd) {
  REAL(fdatasync, sync_fn);
  if (syncFailing()) { errno = EIO; return -1; }
  return real_fdatasync(fd);
}
`);
  const cc = spawnSync("cc", ["-shared", "-fPIC", "-O1", "-o", shim, source, "-ldl"], { encoding: "utf8" });
  expect(cc.status, cc.stderr).toBe(0);
  return shim;
}

describe("a failing disk", () => {
  it("disk full (file-size limit): 503s without a hang, not ready, then recovers by itself; nothing acknowledged is lost", async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    const server = await start(file);
    const acknowledged = await writeBeforeFault(server.base);
    const refused: string[] = [];
    const pid = String(server.child.pid);
    // Nothing past the first 4 KiB of any file can be written any more.
    expect(spawnSync("prlimit", ["--pid", pid, "--fsize=4096:unlimited"]).status).toBe(0);
    await writeThroughFault(server.base, "full", acknowledged, refused);

    expect(spawnSync("prlimit", ["--pid", pid, "--fsize=unlimited:unlimited"]).status).toBe(0);
    await recoversAndKeepsEverything(server, file, acknowledged, refused);
  }, 120_000);

  it("I/O errors on write and fsync: 503s without a hang, not ready, then recovers by itself; nothing acknowledged is lost", async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    const shim = buildShim(dir);
    const flag = path.join(dir, "fail-now");
    const server = await start(file, { LD_PRELOAD: shim, EIO_FLAG_FILE: flag });
    const acknowledged = await writeBeforeFault(server.base);
    const refused: string[] = [];
    writeFileSync(flag, "");
    await writeThroughFault(server.base, "eio", acknowledged, refused);
    // Still not ready a while later: the fault has not cleared.
    await new Promise((r) => setTimeout(r, 600));
    expect((await call(server.base, "GET", "/readyz")).status).toBe(503);

    unlinkSync(flag);
    await recoversAndKeepsEverything(server, file, acknowledged, refused);
  }, 120_000);

  it("I/O errors on the log sync alone: 503s without a hang, not ready, then recovers by itself; nothing acknowledged is lost", async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    const flag = path.join(dir, "fail-syncs-now");
    const server = await start(file, { LD_PRELOAD: buildShim(dir), SYNC_FLAG_FILE: flag });
    const acknowledged = await writeBeforeFault(server.base);
    writeFileSync(flag, "");
    // The commit reached the log but the log could not be synced: the change
    // is refused (503), though it may be in the database.
    const refused = await syncRefusals(server.base, acknowledged);
    await new Promise((r) => setTimeout(r, 600));
    expect((await call(server.base, "GET", "/readyz")).status).toBe(503);

    unlinkSync(flag);
    await until(async () => (await call(server.base, "GET", "/readyz")).status === 200);
    expect((await call(server.base, "POST", "/v1/units", { name: "after", driver: "mock" })).status).toBe(201);
    acknowledged.push("after");
    // What the service shows is what the database holds: every acknowledged
    // change, and of the refused ones only those the database kept.
    const shown = await unitNames(server.base);
    await stop(server);
    const stored = unitsOnDisk(file);
    expect(shown).toEqual(stored);
    for (const n of acknowledged) expect(stored, `acknowledged unit ${n} is on disk`).toContain(n);
    expect(stored.filter((n) => !acknowledged.includes(n)).every((n) => refused.includes(n))).toBe(true);
    const again = await start(file);
    expect(await unitNames(again.base)).toEqual(stored);
    await stop(again);
  }, 120_000);
});

/** Units listed by the service, sorted. */
async function unitNames(base: string): Promise<string[]> {
  const units = await call(base, "GET", "/v1/units?limit=1000");
  expect(units.status).toBe(200);
  return (units.body!.items as { name: string }[]).map((u) => u.name).sort();
}

/** Units in the database file, sorted (integrity checked). */
function unitsOnDisk(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    return (db.prepare(`SELECT "name" FROM "Unit"`).all() as { name: string }[]).map((r) => r.name).sort();
  } finally {
    db.close();
  }
}

/** Creates units while syncs fail: each is acknowledged (before the fault took hold) or a 503. Returns the refused names. */
async function syncRefusals(base: string, acknowledged: string[]): Promise<string[]> {
  const refused: string[] = [];
  for (let i = 0; i < 40 && refused.length < 5; i++) {
    const name = `sync-${i}`;
    const a = await call(base, "POST", "/v1/units", { name, driver: "mock" });
    if (a.status === 201) acknowledged.push(name);
    else {
      expectUnavailable(a);
      // The first refusal was written but not synced: it must not claim that
      // nothing changed. Later ones are refused before any write.
      expect((a.body as { detail: string }).detail).toContain(refused.length === 0 ? "may or may not have been kept" : "nothing was changed");
      refused.push(name);
    }
  }
  expect(refused.length).toBeGreaterThan(0);
  const ready = await call(base, "GET", "/readyz");
  expect(ready.status).toBe(503);
  return refused;
}
