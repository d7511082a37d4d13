// Load generation with autocannon's programmatic API, run from the bench
// process (the servers are separate child processes). Latencies are taken
// from autocannon's per-response event at full float resolution (its own
// histogram rounds to whole milliseconds) and reduced to exact percentiles.
import autocannon from "autocannon";
import { percentile, Samples } from "./stats.js";

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
  /** Per request kind ("attach", "detach", ...) when the requests are tagged. */
  readonly kinds: Record<string, KindStats>;
  readonly statusCodes: Record<string, number>;
  readonly non2xx: number;
  readonly status409: number;
  readonly status5xx: number;
  readonly errors: number;
  readonly timeouts: number;
  /** 2xx answers that changed nothing (an attach to where the group already was). */
  readonly noops: number;
}

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  readonly method?: string;
  /** A request sequence each connection cycles through; see attachDetachCycle. */
  readonly workload?: Workload;
}

export interface Workload {
  readonly requests: autocannon.Request[];
  /** The kind of the response being recorded (set by the requests' onResponse). */
  currentKind(): string;
  readonly noops: () => number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const all = new Samples();
  const byKind = new Map<string, Samples>();
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds,
    pipelining: 1,
    timeout: 10,
    ...(options.method ? { method: options.method } : {}),
    ...(options.workload ? { requests: options.workload.requests } : {}),
  });
  const workload = options.workload;
  // Emitted synchronously right after the request's own onResponse, so the
  // workload's current kind is this response's.
  instance.on("response", (_client: unknown, _status: number, _bytes: number, ms: number) => {
    all.push(ms);
    if (workload) {
      const kind = workload.currentKind();
      let s = byKind.get(kind);
      if (!s) byKind.set(kind, (s = new Samples()));
      s.push(ms);
    }
  });
  const result = await instance;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) statusCodes[code] = count;
  const count = (pred: (code: number) => boolean) =>
    Object.entries(statusCodes).reduce((n, [code, c]) => (pred(Number(code)) ? n + c : n), 0);
  const kinds: Record<string, KindStats> = {};
  for (const [kind, s] of byKind) kinds[kind] = { count: s.length, p50: percentile(s.values(), 50), p99: percentile(s.values(), 99) };
  return {
    seconds: result.duration,
    responses: all.length,
    rps: all.length / result.duration,
    p50: percentile(all.values(), 50),
    p99: percentile(all.values(), 99),
    kinds,
    statusCodes,
    non2xx: result.non2xx,
    status409: count((c) => c === 409),
    status5xx: count((c) => c >= 500),
    errors: result.errors,
    timeouts: result.timeouts,
    noops: workload ? workload.noops() : 0,
  };
}

/**
 * Attach then detach, over and over, each connection on a random group no
 * other connection holds: a group is taken from a shared free pool when its
 * attach is built and returned only when its detach has been answered, so
 * every request is a legitimate success (no EBUSY from a race between
 * connections). Group g always goes to domain targetDomain[g].
 */
export function attachDetachCycle(groupIds: Int32Array, targetDomain: Int32Array): Workload {
  const pool = Int32Array.from(groupIds);
  let free = pool.length;
  let kind = "attach";
  let noops = 0;
  const take = (): number => {
    if (free === 0) throw new Error("attachDetachCycle: more connections than groups");
    const i = Math.floor(Math.random() * free);
    const g = pool[i]!;
    pool[i] = pool[free - 1]!;
    pool[--free] = g;
    return g;
  };
  const giveBack = (g: number): void => {
    pool[free++] = g;
  };
  const headers = { "content-type": "application/json" };
  const requests: autocannon.Request[] = [
    {
      method: "POST",
      headers,
      setupRequest: (req, ctx) => {
        const g = take();
        ctx.g = g;
        return { ...req, path: `/v1/groups/${g}/attach`, body: `{"domainId":${targetDomain[g]}}` };
      },
      onResponse: (status, body) => {
        kind = "attach";
        if (status < 300 && body.includes('"changed":false')) noops++;
      },
    },
    {
      method: "POST",
      headers,
      setupRequest: (req, ctx) => {
        const g = ctx.g as number;
        return { ...req, path: `/v1/groups/${g}/detach`, body: `{"domainId":${targetDomain[g]}}` };
      },
      onResponse: (status, body, ctx) => {
        kind = "detach";
        if (status < 300 && body.includes('"changed":false')) noops++;
        giveBack(ctx.g as number);
      },
    },
  ];
  return { requests, currentKind: () => kind, noops: () => noops };
}
