// docker-compose.replicas.yml and deploy/haproxy.cfg, checked without Docker
// (it cannot run here): the compose file wires three replicas to one
// PostgreSQL service and one proxy; the proxy's configuration names exactly
// those replicas and checks their /readyz. Then the committed HAProxy
// configuration itself runs (Debian's haproxy binary, when installed; CI
// installs it), its servers pointed at three real replicas on one real
// PostgreSQL database: requests go round all three, a replica that stops is
// taken out while the others keep answering, and a live event stream passes
// through unbuffered.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { POSTGRES_MIGRATIONS, TEST_LIMITS } from "../helpers/app.js";
import { openEventStream } from "../helpers/event-stream.js";
import { freePort } from "../helpers/listening.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

interface Service {
  image?: string;
  build?: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
  volumes?: string[];
  ports?: string[];
}

const compose = parse(readFileSync(path.join(PROJECT_ROOT, "docker-compose.replicas.yml"), "utf8")) as { services: Record<string, Service> };
const HAPROXY_CFG = path.join(PROJECT_ROOT, "deploy", "haproxy.cfg");
const haproxyCfg = readFileSync(HAPROXY_CFG, "utf8");
const REPLICAS = ["arbiter-1", "arbiter-2", "arbiter-3"];

/** The `server NAME HOST:PORT` lines of the replicas backend. */
function backendServers(cfg: string): { name: string; host: string; port: string }[] {
  const backend = cfg.slice(cfg.indexOf("backend replicas"));
  return [...backend.matchAll(/^\s*server\s+(\S+)\s+([^:\s]+):(\d+)/gm)].map((m) => ({ name: m[1]!, host: m[2]!, port: m[3]! }));
}

describe("docker-compose.replicas.yml", () => {
  it("runs three replicas of the image on one PostgreSQL service, each waiting for it to be healthy", () => {
    const replicas = Object.entries(compose.services).filter(([, s]) => s.environment?.DATABASE_URL !== undefined);
    expect(replicas.map(([name]) => name).sort()).toEqual(REPLICAS);
    const urls = new Set(replicas.map(([, s]) => s.environment!.DATABASE_URL));
    expect(urls.size).toBe(1);
    const url = new URL([...urls][0]!);
    expect(url.protocol).toBe("postgresql:");
    const postgres = compose.services[url.hostname];
    expect(postgres?.image).toMatch(/^postgres:\d+/);
    expect(postgres?.healthcheck?.test.join(" ")).toMatch(/pg_isready/);
    const pgEnv = postgres!.environment!;
    expect([url.username, decodeURIComponent(url.password), url.pathname.slice(1)]).toEqual([pgEnv.POSTGRES_USER, pgEnv.POSTGRES_PASSWORD, pgEnv.POSTGRES_DB]);
    for (const [, s] of replicas) {
      expect(s.build).toBe(".");
      expect(s.depends_on).toMatchObject({ [url.hostname]: { condition: "service_healthy" } });
      expect(s.environment).toMatchObject({ HOST: "0.0.0.0", PORT: "3000" });
      // Off loopback the service refuses to start without a token table.
      expect(s.environment!.TOKENS_FILE ?? s.environment!.TOKENS).toBeDefined();
    }
  });

  it("puts one HAProxy in front, whose configuration is the committed one and names exactly those replicas, checked on /readyz", () => {
    const proxy = compose.services.proxy!;
    expect(proxy.image).toMatch(/^haproxy:/);
    expect(proxy.volumes).toContain("./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro");
    expect(proxy.ports).toEqual(["127.0.0.1:3000:3000"]);
    expect(backendServers(haproxyCfg)).toEqual(REPLICAS.map((name) => ({ name, host: name, port: "3000" })));
    expect(haproxyCfg).toMatch(/^\s*bind :3000$/m);
    expect(haproxyCfg).toMatch(/^\s*option httpchk GET \/readyz$/m);
    expect(haproxyCfg).toMatch(/^\s*http-check expect status 200$/m);
  });
});

const haproxy = spawnSync("haproxy", ["-v"]).status === 0;

/**
 * The committed file run by Debian's haproxy in `dir`, with the container
 * names pointed at `upstreams` (ports on 127.0.0.1, in the order of
 * REPLICAS) and the proxy on a free port.
 */
async function startProxy(dir: string, upstreams: readonly number[]): Promise<{ base: string; child: ChildProcess }> {
  const port = await freePort();
  let cfg = haproxyCfg.replace(/^(\s*bind) :3000$/m, `$1 127.0.0.1:${port}`)
    .replace(/ resolvers docker/, "").replace(/^resolvers docker[\s\S]*$/m, "")
    .replace(/^(\s*log stdout.*)$/m, "");
  for (const [i, name] of REPLICAS.entries()) {
    cfg = cfg.replace(`server ${name} ${name}:3000`, `server ${name} 127.0.0.1:${upstreams[i]}`);
  }
  writeFileSync(path.join(dir, "haproxy.cfg"), cfg);
  const child = spawn("haproxy", ["-db", "-f", path.join(dir, "haproxy.cfg")], { stdio: "ignore" });
  return { base: `http://127.0.0.1:${port}`, child };
}

/** The status of GET `url` through the proxy; 0 when the connection fails. */
async function status(base: string, url: string): Promise<number> {
  try {
    const res = await fetch(`${base}${url}`);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Until `n` requests in a row answer 200 (the proxy's checks take a second or two to settle). */
async function settle(base: string, n: number, url = "/v1/units"): Promise<void> {
  for (let ok = 0; ok < n;) ok = (await status(base, url)) === 200 ? ok + 1 : 0;
}

describe.skipIf(!haproxy)("deploy/haproxy.cfg in front of three replicas on one PostgreSQL database", () => {
  let db: TestDatabase | null = null;
  const apps: FastifyInstance[] = [];
  let proxy: ChildProcess | null = null;
  let dir: string | null = null;
  afterAll(async () => {
    proxy?.kill("SIGKILL");
    for (const app of apps) await app.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the committed file is a valid HAProxy configuration", () => {
    const r = spawnSync("haproxy", ["-c", "-f", HAPROXY_CFG], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  });

  it("spreads requests over the replicas, takes a stopped one out, and streams events unbuffered", async () => {
    db = await createTestDatabase("proxy");
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const store = await PostgresStore.open({ drivers: DRIVERS, url: db.url, migrationsDir: POSTGRES_MIGRATIONS });
      const app = await buildApp({ store, logger: false, limits: { ...TEST_LIMITS, rateLimitReads: 0, rateLimitWrites: 0 } });
      app.addHook("onClose", () => store.close());
      counts.push(0);
      app.addHook("onRequest", async (request) => {
        if (request.url !== "/readyz") counts[i]!++;
      });
      await app.listen({ host: "127.0.0.1", port: 0 });
      apps.push(app);
    }
    dir = mkdtempSync(path.join(os.tmpdir(), "haproxy-"));
    const { base, child } = await startProxy(dir, apps.map((app) => (app.server.address() as AddressInfo).port));
    proxy = child;
    const get = (url: string) => status(base, url);
    const settled = (n: number) => settle(base, n);
    await settled(9);

    const before = [...counts];
    for (let i = 0; i < 30; i++) expect(await get("/v1/units")).toBe(200);
    expect(counts.map((c, i) => c - before[i]!).every((n) => n >= 5)).toBe(true);

    // A live stream through the proxy, fed by writes the proxy sends to any replica.
    const stream = await openEventStream(base);
    try {
      expect(stream.status).toBe(200);
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${base}/v1/units`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: `proxied-${i}`, driver: "mock" }) });
        expect(res.status).toBe(201);
      }
      await stream.waitFor(3);
      expect(stream.events<{ kind: string }>().map((e) => e.kind)).toEqual(["unit", "unit", "unit"]);
    } finally {
      stream.close();
    }

    // One replica stops; once its checks fail, every request goes to the other two.
    await apps[1]!.close();
    await settled(20);
    const after = [...counts];
    for (let i = 0; i < 20; i++) expect(await get("/v1/units")).toBe(200);
    expect(counts[1]).toBe(after[1]);
  });
});

describe.skipIf(!haproxy)("deploy/haproxy.cfg and a replica that listens but is not ready", () => {
  const servers: http.Server[] = [];
  let proxy: ChildProcess | null = null;
  let dir: string | null = null;
  afterAll(async () => {
    proxy?.kill("SIGKILL");
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // A replica still accepts connections while its /readyz answers 503 (starting,
  // draining for a shutdown, cut off from the database): only the health
  // check, not a refused connection, can take it out. Plain HTTP servers stand
  // in for the replicas so that readiness can be switched at will.
  it("sends nothing but health checks to a replica while its /readyz is 503, and puts it back once it is 200", async () => {
    const ready = [true, false, true];
    const served = [0, 0, 0];
    for (let i = 0; i < 3; i++) {
      const server = http.createServer((req, res) => {
        if (req.url === "/readyz") {
          res.writeHead(ready[i] ? 200 : 503).end();
          return;
        }
        served[i]!++;
        res.writeHead(200, { "content-type": "application/json" }).end("[]");
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      servers.push(server);
    }
    dir = mkdtempSync(path.join(os.tmpdir(), "haproxy-"));
    const { base, child } = await startProxy(dir, servers.map((s) => (s.address() as AddressInfo).port));
    proxy = child;
    // HAProxy counts a server up when it starts and takes it out after two
    // failed checks (fall 2, every second): until then the unready one is served.
    for (let quiet = 0; quiet < 9;) {
      const was = served[1];
      quiet = (await status(base, "/v1/units")) === 200 && served[1] === was ? quiet + 1 : 0;
    }

    const before = [...served];
    for (let i = 0; i < 30; i++) expect(await status(base, "/v1/units")).toBe(200);
    const delta = served.map((n, i) => n - before[i]!);
    expect(delta[1]).toBe(0);
    expect(delta[0]! + delta[2]!).toBe(30);

    // Ready again: after its checks pass (rise 2, every second), it takes its share.
    ready[1] = true;
    while (served[1] === before[1]) await status(base, "/v1/units");
    const back = [...served];
    for (let i = 0; i < 30; i++) expect(await status(base, "/v1/units")).toBe(200);
    expect(served.map((n, i) => n - back[i]!).every((n) => n >= 5)).toBe(true);
  });
});
