// `iommu-arbiter events --follow` (the built binary) against the service as
// a process (bin/iommu-arbiter-server): a live event is printed as it is
// committed, and when the server restarts the follower reconnects with
// Last-Event-ID and goes on from the next event: no gap, no duplicate.
// Needs `npm run build`.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { ArbiterClient, type Event } from "../../src/client/index.js";
import { PROJECT_ROOT } from "../../src/config.js";
import { startServer, type ServerProcess } from "../helpers/server.js";
import { freePort } from "../helpers/listening.js";

const CLI = path.join(PROJECT_ROOT, "bin", "iommu-arbiter");
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});


/** The follower's output, line by line, and a way to wait for a line. */
function follow(base: string, args: string[]): { child: ChildProcess; lines: string[]; stderr: () => string; until: (test: (line: string) => boolean) => Promise<string> } {
  const child = spawn(process.execPath, [CLI, "events", "--follow", ...args], {
    cwd: PROJECT_ROOT, env: { ...process.env, IOMMU_ARBITER_URL: base, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"],
  });
  cleanups.push(() => child.kill("SIGKILL"));
  const lines: string[] = [];
  let partial = "";
  let err = "";
  const waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  child.stdout!.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.splice(0)) (w.test(line) ? w.resolve(line) : waiters.push(w));
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  return {
    child, lines, stderr: () => err,
    until: (test) => new Promise((resolve) => {
      const seen = lines.find(test);
      if (seen !== undefined) resolve(seen);
      else waiters.push({ test, resolve });
    }),
  };
}

/** The seq of the last event in the log now. */
async function lastSeq(client: ArbiterClient): Promise<number> {
  let after = 0;
  for (;;) {
    const page = await client.events.page({ after, limit: 1000 });
    if (page.items.length === 0) return after;
    after = page.items.at(-1)!.seq;
  }
}

it("prints a live event, and after the server restarts goes on from the next one", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-follow-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const env = { PORT: String(await freePort()), DATABASE_FILE: path.join(dir, "follow.db"), LOG_LEVEL: "info" };
  let server: ServerProcess = await startServer(env);
  cleanups.push(() => server.stop());
  const client = new ArbiterClient(server.base);

  // From the current end, named explicitly so that nothing depends on when the follower connects.
  const start = await lastSeq(client);
  const f = follow(server.base, ["--json", "--after", String(start)]);
  await client.groups.attach(1, { domainId: 11 });
  const first = JSON.parse(await f.until((l) => l.includes('"attach-group"'))) as Event;
  expect(first).toMatchObject({ op: "attach-group", groupId: 1, domainId: 11, errno: null });
  expect(first.seq).toBeGreaterThan(start);

  // The server stops (the stream ends) and comes back on the same port and database.
  expect(await server.stop()).toBe(0);
  server = await startServer(env);
  await client.groups.attach(9, { domainId: 11 }).catch(() => undefined); // a soft EINVAL: an event too
  const second = JSON.parse(await f.until((l) => l.includes('"groupId":9'))) as Event;
  expect(second).toMatchObject({ op: "attach-group", groupId: 9, errno: "EINVAL", soft: true, reason: "snoop-control" });
  expect(f.stderr()).toMatch(/reconnecting/);

  // Every event after `start`, each once, in order: what the log holds.
  f.child.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => f.child.once("exit", (c) => resolve(c)));
  expect(code).toBe(0);
  const printed = f.lines.map((l) => (JSON.parse(l) as Event).seq);
  const log = (await client.events.page({ after: start, limit: 1000 })).items.map((e) => e.seq);
  expect(printed).toEqual(log.slice(0, printed.length));
  expect(printed).toContain(second.seq);
});

it("the table form prints one aligned line per event", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-follow-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startServer({ PORT: "0", DATABASE_FILE: path.join(dir, "follow.db"), LOG_LEVEL: "info" });
  cleanups.push(() => server.stop());
  const client = new ArbiterClient(server.base);
  const f = follow(server.base, ["--after", String(await lastSeq(client)), "--group", "2"]);
  await client.groups.attach(2, { domainId: 12 });
  const line = await f.until((l) => l.includes("attach-group"));
  expect(line.split(/\s{2,}/)).toEqual([expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d{4}-\d\d-\d\dT/), "attach-group", "-", "2", "-", "12", "-", "-"]);
});
