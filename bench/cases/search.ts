// Case 4: the container search. A container holds 16 automatic domains the
// probe group cannot use (each finalised on another SMMUv3 instance: EINVAL
// "different-instance") before the one it can (#17, on its own SMMU, kept
// alive by the group that allocated it). One connection, sequential:
//   single  POST /v1/groups/{g}/attach {domainId: #17}              1 round trip
//   server  POST /v1/containers/{c}/attach {groupId: g}             1 round trip, 17 attempts inside
//   client  GET /v1/domains?containerId=c, then POST /v1/groups/{g}/attach
//           to each domain in order until one succeeds              18 round trips
// each followed by the matching (untimed) detach. The three are interleaved
// so that noise on a shared machine hits them alike.
import path from "node:path";
import { removeTempDir, tempDir } from "../tmp.js";
import { JsonClient } from "../http.js";
import { startService, withServer, type Memory } from "../procs.js";
import { percentile, Samples } from "../stats.js";

export const INCOMPATIBLE = 16;

export interface SearchOptions {
  readonly iterations: number;
  readonly warmupIterations: number;
}

export interface Latency {
  readonly p50: number;
  readonly p99: number;
}

export interface SearchRun {
  readonly single: Latency;
  readonly server: Latency;
  readonly client: Latency;
  /** Round trips the client-side search made per attach. */
  readonly clientRoundTrips: number;
  readonly memory: Memory;
  readonly startupMs: number;
}

interface Built {
  readonly containerId: number;
  readonly domainIds: number[];
  readonly probeGroupId: number;
}

interface Moved { changed: boolean; group: { domainId: number } }
interface SearchAnswer { domain: { id: number }; allocated: boolean; attempts: { domainId: number; errno: string | null }[] }
interface Problem { errno: string; soft: boolean; reason: string }

async function build(client: JsonClient): Promise<Built> {
  const container = await client.must<{ id: number }>("/v1/containers", { name: "bench-search" });
  const domainIds: number[] = [];
  let lastUnitId = 0;
  for (let k = 1; k <= INCOMPATIBLE + 1; k++) {
    const unit = await client.must<{ id: number }>("/v1/units", { name: `bench-smmu${k}`, driver: "arm-smmu-v3" });
    const group = await client.must<{ id: number }>("/v1/groups", { name: `bench-smmu${k}-group`, unitId: unit.id });
    await client.must("/v1/devices", { name: `bench-smmu${k}-dev`, groupId: group.id });
    const r = await client.must<SearchAnswer>(`/v1/containers/${container.id}/attach`, { groupId: group.id });
    if (!r.allocated) throw new Error(`search set-up: group ${group.id} reused domain ${r.domain.id} instead of allocating`);
    domainIds.push(r.domain.id);
    lastUnitId = unit.id;
  }
  const probe = await client.must<{ id: number }>("/v1/groups", { name: "bench-probe-group", unitId: lastUnitId });
  await client.must("/v1/devices", { name: "bench-probe-dev", groupId: probe.id });
  const listed = await client.get<{ items: { id: number }[] }>(`/v1/domains?containerId=${container.id}`);
  const order = listed.body.items.map((d) => d.id);
  if (order.join() !== domainIds.join()) throw new Error(`search set-up: container lists ${order.join()}, expected ${domainIds.join()}`);
  return { containerId: container.id, domainIds, probeGroupId: probe.id };
}

const fail = (what: string, r: { status: number; body: unknown }): never => {
  throw new Error(`search ${what} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 400)}`);
};

export async function searchRun(options: SearchOptions): Promise<SearchRun> {
  const dir = tempDir("search");
  try {
    return await withServer(() => startService(path.join(dir, "bench.db")), async (server) => {
      const client = new JsonClient(server.url);
      try {
        const b = await build(client);
        const g = b.probeGroupId;
        const target = b.domainIds[b.domainIds.length - 1]!;
        let roundTrips = 0;

        const single = async (): Promise<number> => {
          const r = await client.post<Moved>(`/v1/groups/${g}/attach`, { domainId: target });
          if (r.status !== 200 || !r.body.changed) fail("single attach", r);
          const d = await client.post(`/v1/groups/${g}/detach`, { domainId: target });
          if (d.status !== 200) fail("single detach", d);
          return r.ms;
        };
        const serverSide = async (): Promise<number> => {
          const r = await client.post<SearchAnswer>(`/v1/containers/${b.containerId}/attach`, { groupId: g });
          if (r.status !== 200 || r.body.domain.id !== target || r.body.allocated || r.body.attempts.length !== INCOMPATIBLE + 1) {
            fail("server-side attach", r);
          }
          const d = await client.post<{ freedDomainId: number | null }>(`/v1/containers/${b.containerId}/detach`, { groupId: g });
          if (d.status !== 200 || d.body.freedDomainId !== null) fail("server-side detach", d);
          return r.ms;
        };
        const clientSide = async (): Promise<number> => {
          let ms = 0;
          let trips = 1;
          const list = await client.get<{ items: { id: number }[] }>(`/v1/domains?containerId=${b.containerId}`);
          if (list.status !== 200) fail("domain list", list);
          ms += list.ms;
          let found: number | null = null;
          for (const domain of list.body.items) {
            const r = await client.post<Moved | Problem>(`/v1/groups/${g}/attach`, { domainId: domain.id });
            ms += r.ms;
            trips++;
            if (r.status === 200) {
              found = domain.id;
              break;
            }
            if (r.status !== 409 || (r.body as Problem).errno !== "EINVAL") fail("client-side attach", r);
          }
          if (found !== target) throw new Error(`client-side search ended on ${found}, expected ${target}`);
          const d = await client.post(`/v1/groups/${g}/detach`, { domainId: target });
          if (d.status !== 200) fail("client-side detach", d);
          roundTrips = trips;
          return ms;
        };

        const modes = [single, serverSide, clientSide] as const;
        const samples = [new Samples(), new Samples(), new Samples()] as const;
        for (let i = 0; i < options.warmupIterations + options.iterations; i++) {
          for (let j = 0; j < modes.length; j++) {
            const m = (i + j) % modes.length; // rotate which mode goes first
            const ms = await modes[m]!();
            if (i >= options.warmupIterations) samples[m]!.push(ms);
          }
        }
        const lat = (s: Samples): Latency => ({ p50: percentile(s.values(), 50), p99: percentile(s.values(), 99) });
        return {
          single: lat(samples[0]), server: lat(samples[1]), client: lat(samples[2]),
          clientRoundTrips: roundTrips,
          memory: server.memory(),
          startupMs: server.startupMs,
        };
      } finally {
        client.close();
      }
    });
  } finally {
    removeTempDir(dir);
  }
}
