// Several service processes (replicas) on one PostgreSQL database, as the
// replica tests start them: each is bin/iommu-arbiter-server with
// DATABASE_URL set, on a port the OS gives it. Plus what those tests read
// back from every replica: its readiness and the state it serves.
import pg from "pg";
import { expect } from "vitest";
import type { Snapshot } from "./invariants.js";
import { STORE_TYPES } from "../../src/store/postgres-sql.js";
import { Client, type ContainerView, type DeviceView, type DomainView, type GroupView, type Method, type PageView, type Res, type UnitView } from "./http.js";
import { SocketClient, startServer, type Answer, type ServerProcess } from "./server.js";

/**
 * The settings of one replica: the database, port 0, no preset unless asked
 * for, and no rate limits (all test clients share one address: the limits
 * would measure themselves, not the arbitration).
 */
export function replicaEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOST: "127.0.0.1", PORT: "0", DATABASE_URL: databaseUrl, TOPOLOGY_FILE: "none", LOG_LEVEL: "info",
    RATE_LIMIT_READS: "0", RATE_LIMIT_WRITES: "0", ...extra,
  };
}

/** Starts `n` replicas at the same moment; resolves once each says where it listens. */
export async function startReplicas(n: number, env: Record<string, string>): Promise<ServerProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, () => startServer(env, 60_000)));
  const failed = started.filter((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed.length > 0) {
    await Promise.all(started.map((s) => (s.status === "fulfilled" ? s.value.kill9() : undefined)));
    throw new Error(`${failed.length} of ${n} replicas did not start:\n${failed.map((f) => String(f.reason)).join("\n")}`);
  }
  return started.map((s) => (s as PromiseFulfilledResult<ServerProcess>).value);
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** GET /readyz once: its status, or 0 when no answer came. */
export async function readiness(base: string): Promise<number> {
  const c = new SocketClient(base, 5_000);
  try {
    return (await c.send("GET", "/readyz")).status;
  } catch {
    return 0;
  } finally {
    c.close();
  }
}

/** Polls /readyz until it answers 200; fails after `capMs` with what it answered last. */
export async function untilReady(base: string, capMs = 60_000): Promise<void> {
  const end = Date.now() + capMs;
  let last = 0;
  while (Date.now() < end) {
    last = await readiness(base);
    if (last === 200) return;
    await sleep(100);
  }
  throw new Error(`${base}/readyz still answers ${last} after ${capMs} ms`);
}

/**
 * The test helpers' Client (builders, reads) over real HTTP, each request to
 * the next replica in turn: what one replica creates, the next one reads back.
 */
export class ReplicaClient extends Client {
  private turn = 0;
  constructor(private readonly bases: readonly string[]) {
    super(() => {
      throw new Error("ReplicaClient talks HTTP, it has no app");
    });
  }

  override async send<T = unknown>(method: Method, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res<T>> {
    const base = this.bases[this.turn++ % this.bases.length]!;
    const res = await fetch(`${base}${url}`, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: Object.fromEntries(res.headers), text, body: (text.length > 0 ? JSON.parse(text) : null) as T };
  }
}

/** Everything a replica serves about the topology, every page of it. */
export interface ServedState {
  units: UnitView[];
  containers: ContainerView[];
  domains: DomainView[];
  groups: GroupView[];
  devices: DeviceView[];
}

async function allPages<T>(c: SocketClient, route: string): Promise<T[]> {
  const out: T[] = [];
  let after: number | null = 0;
  while (after !== null) {
    const sep = route.includes("?") ? "&" : "?";
    const answer: Answer<PageView<T>> = await c.send<PageView<T>>("GET", `${route}${sep}limit=1000${after > 0 ? `&after=${after}` : ""}`);
    if (answer.status !== 200) throw new Error(`GET ${route}: ${answer.status} ${answer.text}`);
    out.push(...answer.body.items);
    after = answer.body.next;
  }
  return out;
}

export async function servedState(base: string): Promise<ServedState> {
  const c = new SocketClient(base);
  try {
    return {
      units: await allPages<UnitView>(c, "/v1/units"),
      containers: await allPages<ContainerView>(c, "/v1/containers"),
      domains: await allPages<DomainView>(c, "/v1/domains"),
      groups: await allPages<GroupView>(c, "/v1/groups"),
      devices: await allPages<DeviceView>(c, "/v1/devices"),
    };
  } finally {
    c.close();
  }
}

/** Rows of one query on `url` (for the start-up checks: what _prisma_migrations holds, ...). */
export async function queryRows<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, types: STORE_TYPES });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Every replica serves the database's state (reads catch up before they
 * answer): each one's groups (placement and owner) and domains are the
 * snapshot's, and all of them serve the same objects.
 */
export async function expectReplicasServe(bases: readonly string[], snapshot: Snapshot): Promise<void> {
  const placement = (g: { id: number; domainId: number; owner: string | null; blockingDomainId: number | null }) =>
    ({ id: g.id, domainId: g.domainId, owner: g.owner, blockingDomainId: g.blockingDomainId });
  const views = await Promise.all(bases.map((b) => servedState(b)));
  for (const [i, view] of views.entries()) {
    expect(view.groups.map(placement), `groups served by replica ${i}`).toEqual(snapshot.groups.map(placement));
    expect(view.domains.map((d) => d.id), `domains served by replica ${i}`).toEqual(snapshot.domains.map((d) => d.id));
    expect(view, `replica ${i}'s view against replica 0's`).toEqual(views[0]);
  }
}
