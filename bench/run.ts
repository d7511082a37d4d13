// `npm run bench`: runs every case, `runs` times each, and reports the median
// and spread of every figure (terminal table, bench/out/results.json,
// bench/RESULTS.md). Servers are child processes (bench/procs.ts); the load
// is generated here.
import { performance } from "node:perf_hooks";
import { parseBenchArgs, type BenchOptions } from "./args.js";
import { baselineRun, serviceRun, THROUGHPUT_TOPOLOGY, type BaselineRun, type ServiceRun } from "./cases/throughput.js";
import { INCOMPATIBLE, searchRun, type SearchRun } from "./cases/search.js";
import { dropTemplate, growthRun, seedTemplate, type GrowthRun, type GrowthTemplate } from "./cases/growth.js";
import { READERS, readerFloodRun, WRITERS, type ReaderFloodRun } from "./cases/readers.js";
import { FOLLOWERS, followersRun, WRITERS as FOLLOWED_WRITERS, type FollowersRun } from "./cases/followers.js";
import { postgresRun, REPLICAS, type PostgresRun } from "./cases/postgres.js";
import { BenchSetupError } from "./load.js";
import { machine, row, textTable, writeReport, type Row } from "./report.js";
import os from "node:os";

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const ms = (v: number) => `${v.toFixed(2)} ms`;

interface Runs {
  /** The baseline with the service's default durability (synchronous=full). */
  baseline: BaselineRun[];
  /** The baseline with synchronous=normal, to compare with serviceNormal. */
  baselineNormal: BaselineRun[];
  service: ServiceRun[];
  /** The service with synchronous=normal: what durability across power loss costs. */
  serviceNormal: ServiceRun[];
  search: SearchRun[];
  growth: Map<number, GrowthRun[]>;
  seedMs: Map<number, number>;
  readers: ReaderFloodRun[];
  followers: FollowersRun[];
  postgres: PostgresRun[];
}

async function collect(options: BenchOptions): Promise<Runs> {
  const runs: Runs = { baseline: [], baselineNormal: [], service: [], serviceNormal: [], search: [], growth: new Map(), seedMs: new Map(), readers: [], followers: [], postgres: [] };
  const templates: GrowthTemplate[] = [];
  try {
    if (options.cases.includes("growth")) {
      for (const size of options.sizes) {
        const t = seedTemplate(size);
        templates.push(t);
        runs.seedMs.set(size, t.seedMs);
        runs.growth.set(size, []);
        log(`seeded growth database: ${t.seeded.rows.groups} groups, ${t.seeded.rows.domains} domains, ${t.seeded.rows.devices} devices in ${(t.seedMs / 1000).toFixed(1)} s`);
      }
    }
    const throughput = { connections: options.connections, seconds: options.duration, warmupSeconds: options.warmup };
    for (let r = 1; r <= options.runs; r++) {
      const tag = `run ${r}/${options.runs}`;
      if (options.cases.includes("throughput")) {
        const b = await baselineRun(throughput);
        runs.baseline.push(b);
        log(`${tag} baseline: ${Math.round(b.attach.rps)} req/s, p50 ${ms(b.attach.p50)}, p99 ${ms(b.attach.p99)}, non-2xx ${b.attach.non2xx}`);
        const s = await serviceRun(throughput);
        runs.service.push(s);
        log(`${tag} ceiling: ${Math.round(s.ceiling.rps)} req/s; service: ${Math.round(s.attach.rps)} req/s, p50 ${ms(s.attach.p50)}, ` +
          `p99 ${ms(s.attach.p99)}, non-2xx ${s.attach.non2xx}, ops/batch ${(s.batches.items / Math.max(1, s.batches.batches)).toFixed(1)}`);
        const n = await serviceRun(throughput, ["--synchronous", "normal"]);
        runs.serviceNormal.push(n);
        log(`${tag} service with synchronous=normal: ${Math.round(n.attach.rps)} req/s, p50 ${ms(n.attach.p50)}, p99 ${ms(n.attach.p99)}`);
        const bn = await baselineRun(throughput, ["--synchronous", "normal"]);
        runs.baselineNormal.push(bn);
        log(`${tag} baseline with synchronous=normal: ${Math.round(bn.attach.rps)} req/s, p50 ${ms(bn.attach.p50)}, p99 ${ms(bn.attach.p99)}`);
      }
      if (options.cases.includes("search")) {
        const s = await searchRun({ iterations: options.iterations, warmupIterations: options.warmupIterations });
        runs.search.push(s);
        log(`${tag} search p50: single ${ms(s.single.p50)}, server-side ${ms(s.server.p50)}, client-side ${ms(s.client.p50)}`);
      }
      if (options.cases.includes("readers")) {
        const f = await readerFloodRun({ seconds: options.duration, warmupSeconds: options.warmup });
        runs.readers.push(f);
        log(`${tag} reader flood: writer p99 alone ${ms(f.alone.p99)}, with ${READERS} readers ${ms(f.flooded.p99)} ` +
          `(${(f.flooded.p99 / f.alone.p99).toFixed(2)}x); readers ${Math.round(f.readers.rps)} pages/s of ${f.eventsAtFlood} events`);
      }
      if (options.cases.includes("followers")) {
        const f = await followersRun({ seconds: options.duration, warmupSeconds: options.warmup });
        runs.followers.push(f);
        log(`${tag} followers: writer p99 alone ${ms(f.alone.p99)}, with ${FOLLOWERS} event streams ${ms(f.followed.p99)} ` +
          `(${(f.followed.p99 / f.alone.p99).toFixed(2)}x); each follower got ${f.receivedMin}-${f.receivedMax} of ${f.committed} events, lag p99 ${ms(f.lagP99)}`);
      }
      if (options.cases.includes("postgres")) {
        const p = await postgresRun(throughput);
        runs.postgres.push(p);
        log(`${tag} postgres: raw pg ${Math.round(p.baseline.rps)} req/s (p99 ${ms(p.baseline.p99)}); 1 replica ${Math.round(p.one.rps)} req/s ` +
          `(p99 ${ms(p.one.p99)}, ${(p.oneBatches.items / Math.max(1, p.oneBatches.batches)).toFixed(1)} ops/batch); ` +
          `${REPLICAS} replicas ${Math.round(p.three.rps)} req/s (p99 ${ms(p.three.p99)}); 5xx ${p.one.status5xx + p.three.status5xx}`);
      }
      for (const t of templates) {
        const g = await growthRun(t, { connections: options.growthConnections, seconds: options.duration, warmupSeconds: options.warmup });
        runs.growth.get(t.size)!.push(g);
        log(`${tag} growth ${t.size}: start-up ${(g.startupMs / 1000).toFixed(2)} s, attach p50 ${ms(g.load.kinds.attach?.p50 ?? NaN)}, ` +
          `peak RSS ${g.memory.peakMiB.toFixed(0)} MiB`);
      }
    }
  } finally {
    for (const t of templates) dropTemplate(t);
  }
  return runs;
}

const ratios = (a: readonly number[], b: readonly number[]) => a.map((v, i) => v / b[i]!);

function rows(runs: Runs, options: BenchOptions): Row[] {
  const out: Row[] = [];
  const c = options.connections;
  if (runs.service.length > 0) {
    const s = runs.service;
    const b = runs.baseline;
    const ceiling = `1 ceiling (GET /healthz, ${c} conns)`;
    out.push(row(ceiling, "requests/s", "req/s", s.map((x) => x.ceiling.rps)));
    out.push(row(ceiling, "p50", "ms", s.map((x) => x.ceiling.p50)));
    out.push(row(ceiling, "p99", "ms", s.map((x) => x.ceiling.p99)));
    out.push(row(ceiling, "non-2xx / errors", "count", s.map((x) => x.ceiling.non2xx + x.ceiling.errors)));
    // Little's law: with every connection always waiting, mean latency = connections / throughput.
    const saturated = `mean latency if saturated (${c} / req/s)`;
    out.push(row(ceiling, saturated, "ms", s.map((x) => (1000 * c) / x.ceiling.rps)));

    const base = `2 baseline (raw better-sqlite3, synchronous=full like the service, ${c} conns)`;
    out.push(row(base, "attach+detach requests/s", "req/s", b.map((x) => x.attach.rps)));
    out.push(row(base, "p50", "ms", b.map((x) => x.attach.p50)));
    out.push(row(base, "p99", "ms", b.map((x) => x.attach.p99)));
    out.push(row(base, "non-2xx", "count", b.map((x) => x.attach.non2xx)));
    out.push(row(base, "errors + timeouts", "count", b.map((x) => x.attach.errors + x.attach.timeouts)));
    out.push(row(base, saturated, "ms", b.map((x) => (1000 * c) / x.attach.rps)));

    const svc = `3 service attach/detach (${c} conns)`;
    out.push(row(svc, "requests/s", "req/s", s.map((x) => x.attach.rps)));
    out.push(row(svc, "p50", "ms", s.map((x) => x.attach.p50)));
    out.push(row(svc, "p99", "ms", s.map((x) => x.attach.p99), { text: "< 10 ms", test: (v) => v < 10 }));
    out.push(row(svc, "attach p50", "ms", s.map((x) => x.attach.kinds.attach?.p50 ?? NaN)));
    out.push(row(svc, "attach p99", "ms", s.map((x) => x.attach.kinds.attach?.p99 ?? NaN)));
    out.push(row(svc, "non-2xx", "count", s.map((x) => x.attach.non2xx)));
    out.push(row(svc, "  of which 409", "count", s.map((x) => x.attach.status409)));
    out.push(row(svc, "  of which 5xx", "count", s.map((x) => x.attach.status5xx), { text: "0", test: (v) => v === 0 }));
    out.push(row(svc, "errors + timeouts", "count", s.map((x) => x.attach.errors + x.attach.timeouts)));
    out.push(row(svc, "no-op 2xx (changed:false)", "count", s.map((x) => x.attach.noops)));
    out.push(row(svc, saturated, "ms", s.map((x) => (1000 * c) / x.attach.rps)));
    if (b.length === s.length) {
      out.push(row(svc, "service / baseline (req/s)", "x", ratios(s.map((x) => x.attach.rps), b.map((x) => x.attach.rps)), { text: ">= 0.5x", test: (v) => v >= 0.5 }));
      out.push(row(svc, "service / baseline (p99)", "x", ratios(s.map((x) => x.attach.p99), b.map((x) => x.attach.p99)), { text: "<= 1x", test: (v) => v <= 1 }));
    }
    out.push(row(svc, "service / ceiling (req/s)", "x", ratios(s.map((x) => x.attach.rps), s.map((x) => x.ceiling.rps))));
    out.push(row(svc, "ops per group-commit batch", "items", s.map((x) => x.batches.items / Math.max(1, x.batches.batches))));
    out.push(row(svc, "largest batch", "items", s.map((x) => x.batches.largestBatch)));

    const n = runs.serviceNormal;
    if (n.length === s.length) {
      const sync = `3b durability: service with synchronous=normal (${c} conns)`;
      out.push(row(sync, "requests/s", "req/s", n.map((x) => x.attach.rps)));
      out.push(row(sync, "p50", "ms", n.map((x) => x.attach.p50)));
      out.push(row(sync, "p99", "ms", n.map((x) => x.attach.p99)));
      out.push(row(sync, "non-2xx + errors", "count", n.map((x) => x.attach.non2xx + x.attach.errors + x.attach.timeouts)));
      out.push(row(sync, "full (default) / normal (req/s)", "x", ratios(s.map((x) => x.attach.rps), n.map((x) => x.attach.rps))));
      out.push(row(sync, "full (default) / normal (p99)", "x", ratios(s.map((x) => x.attach.p99), n.map((x) => x.attach.p99))));
    }
    const bn = runs.baselineNormal;
    if (bn.length === s.length) {
      const normal = `3c both with synchronous=normal: baseline (raw better-sqlite3, ${c} conns)`;
      out.push(row(normal, "requests/s", "req/s", bn.map((x) => x.attach.rps)));
      out.push(row(normal, "p50", "ms", bn.map((x) => x.attach.p50)));
      out.push(row(normal, "p99", "ms", bn.map((x) => x.attach.p99)));
      out.push(row(normal, "non-2xx + errors", "count", bn.map((x) => x.attach.non2xx + x.attach.errors + x.attach.timeouts)));
      if (n.length === s.length) {
        out.push(row(normal, "service normal / baseline normal (req/s)", "x", ratios(n.map((x) => x.attach.rps), bn.map((x) => x.attach.rps))));
        out.push(row(normal, "service normal / baseline normal (p99)", "x", ratios(n.map((x) => x.attach.p99), bn.map((x) => x.attach.p99))));
      }
      out.push(row(normal, "service full (default) / baseline normal (req/s)", "x", ratios(s.map((x) => x.attach.rps), bn.map((x) => x.attach.rps))));
      out.push(row(normal, "service full (default) / baseline normal (p99)", "x", ratios(s.map((x) => x.attach.p99), bn.map((x) => x.attach.p99))));
    }
  }
  if (runs.search.length > 0) {
    const s = runs.search;
    const sec = `4 search (${INCOMPATIBLE} EINVAL then match, 1 conn)`;
    out.push(row(sec, "single attach p50", "ms", s.map((x) => x.single.p50)));
    out.push(row(sec, "single attach p99", "ms", s.map((x) => x.single.p99)));
    out.push(row(sec, "server-side search attach p50", "ms", s.map((x) => x.server.p50)));
    out.push(row(sec, "server-side search attach p99", "ms", s.map((x) => x.server.p99)));
    out.push(row(sec, `client-side search p50 (${s[0]!.clientRoundTrips} round trips)`, "ms", s.map((x) => x.client.p50)));
    out.push(row(sec, "client-side search p99", "ms", s.map((x) => x.client.p99)));
    out.push(row(sec, "server-side / single (p50)", "x", s.map((x) => x.server.p50 / x.single.p50), { text: "<= 2x", test: (v) => v <= 2 }));
    out.push(row(sec, "client-side / server-side (p50)", "x", s.map((x) => x.client.p50 / x.server.p50)));
  }
  const sizes = [...runs.growth.keys()].sort((a, b) => a - b);
  if (sizes.length > 0) {
    for (const size of sizes) {
      const g = runs.growth.get(size)!;
      const sec = `5 growth ${size.toLocaleString("en-US")} domains + groups (${options.growthConnections} conns)`;
      out.push(row(sec, "attach p50", "ms", g.map((x) => x.load.kinds.attach?.p50 ?? NaN)));
      out.push(row(sec, "attach p99", "ms", g.map((x) => x.load.kinds.attach?.p99 ?? NaN)));
      out.push(row(sec, "detach p50", "ms", g.map((x) => x.load.kinds.detach?.p50 ?? NaN)));
      out.push(row(sec, "detach p99", "ms", g.map((x) => x.load.kinds.detach?.p99 ?? NaN)));
      out.push(row(sec, "requests/s", "req/s", g.map((x) => x.load.rps)));
      out.push(row(sec, "non-2xx + errors", "count", g.map((x) => x.load.non2xx + x.load.errors + x.load.timeouts)));
      out.push(row(sec, "start-up until /healthz", "s", g.map((x) => x.startupMs / 1000)));
    }
    const small = sizes[0]!;
    const large = sizes[sizes.length - 1]!;
    if (large !== small) {
      const p50 = (size: number) => runs.growth.get(size)!.map((x) => x.load.kinds.attach?.p50 ?? NaN);
      out.push(row("5 growth", `attach p50 at ${large.toLocaleString("en-US")} / at ${small.toLocaleString("en-US")}`, "x",
        ratios(p50(large), p50(small)), { text: "<= 1.5x", test: (v) => v <= 1.5 }));
    }
  }
  if (runs.readers.length > 0) {
    const f = runs.readers;
    const sec = `7 reader flood (${WRITERS} writer conns; ${READERS} reader conns on GET /v1/events?limit=1000)`;
    out.push(row(sec, "writer p99 alone", "ms", f.map((x) => x.alone.p99)));
    out.push(row(sec, "writer p99 with readers", "ms", f.map((x) => x.flooded.p99)));
    out.push(row(sec, "writer p99 with readers / alone", "x", f.map((x) => x.flooded.p99 / x.alone.p99)));
    out.push(row(sec, "writer p50 alone", "ms", f.map((x) => x.alone.p50)));
    out.push(row(sec, "writer p50 with readers", "ms", f.map((x) => x.flooded.p50)));
    out.push(row(sec, "writer requests/s alone", "req/s", f.map((x) => x.alone.rps)));
    out.push(row(sec, "writer requests/s with readers", "req/s", f.map((x) => x.flooded.rps)));
    out.push(row(sec, "reader pages/s", "req/s", f.map((x) => x.readers.rps)));
    out.push(row(sec, "reader p99", "ms", f.map((x) => x.readers.p99)));
    out.push(row(sec, "events per page", "count", f.map((x) => Math.min(1000, x.eventsAtFlood))));
    out.push(row(sec, "non-2xx + errors (writers and readers)", "count",
      f.map((x) => [x.alone, x.flooded, x.readers].reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0))));
  }
  if (runs.followers.length > 0) {
    const f = runs.followers;
    const sec = `8 live followers (${FOLLOWED_WRITERS} writer conns; ${FOLLOWERS} text/event-stream conns on GET /v1/events)`;
    out.push(row(sec, "writer p99 alone", "ms", f.map((x) => x.alone.p99)));
    out.push(row(sec, "writer p99 with followers", "ms", f.map((x) => x.followed.p99)));
    out.push(row(sec, "writer p99 with followers / alone", "x", f.map((x) => x.followed.p99 / x.alone.p99)));
    out.push(row(sec, "writer requests/s alone", "req/s", f.map((x) => x.alone.rps)));
    out.push(row(sec, "writer requests/s with followers", "req/s", f.map((x) => x.followed.rps)));
    out.push(row(sec, "events committed while followed", "count", f.map((x) => x.committed)));
    out.push(row(sec, "events a follower missed (committed - fewest received)", "count", f.map((x) => x.committed - x.receivedMin),
      { text: "0", test: (v) => v === 0 }));
    out.push(row(sec, "delivery lag p50 (receipt - commit time)", "ms", f.map((x) => x.lagP50)));
    out.push(row(sec, "delivery lag p99", "ms", f.map((x) => x.lagP99)));
    out.push(row(sec, "non-2xx + errors (writers)", "count",
      f.map((x) => [x.alone, x.followed].reduce((n, l) => n + l.non2xx + l.errors + l.timeouts, 0))));
  }
  if (runs.postgres.length > 0) {
    const p = runs.postgres;
    const sec = (what: string) => `9 PostgreSQL attach/detach, ${c} conns: ${what}`;
    const base = sec("raw pg baseline (one transaction per request under the replicas' lock)");
    const one = sec("1 replica");
    const three = sec(`${REPLICAS} replicas on one database, load spread over them`);
    for (const [name, pick] of [[base, (x: PostgresRun) => x.baseline], [one, (x: PostgresRun) => x.one], [three, (x: PostgresRun) => x.three]] as const) {
      out.push(row(name, "requests/s", "req/s", p.map((x) => pick(x).rps)));
      out.push(row(name, "p50", "ms", p.map((x) => pick(x).p50)));
      out.push(row(name, "p99", "ms", p.map((x) => pick(x).p99)));
      out.push(row(name, "non-2xx + errors", "count", p.map((x) => pick(x).non2xx + pick(x).errors + pick(x).timeouts),
        { text: "0", test: (v) => v === 0 }));
    }
    out.push(row(one, "ops per write batch", "items", p.map((x) => x.oneBatches.items / Math.max(1, x.oneBatches.batches))));
    out.push(row(one, "1 replica / raw baseline (req/s)", "x", ratios(p.map((x) => x.one.rps), p.map((x) => x.baseline.rps)),
      { text: ">= 0.5x", test: (v) => v >= 0.5 }));
    out.push(row(one, "1 replica / raw baseline (p99)", "x", ratios(p.map((x) => x.one.p99), p.map((x) => x.baseline.p99))));
    out.push(row(three, `${REPLICAS} replicas / 1 replica (req/s)`, "x", ratios(p.map((x) => x.three.rps), p.map((x) => x.one.rps)),
      { text: ">= 1x", test: (v) => v >= 1 }));
    out.push(row(three, `${REPLICAS} replicas / 1 replica (p99)`, "x", ratios(p.map((x) => x.three.p99), p.map((x) => x.one.p99))));
  }
  const mem = "6 server memory (VmHWM peak / VmRSS at end)";
  if (runs.service.length > 0) {
    out.push(row(mem, "service, cases 1+3: peak", "MiB", runs.service.map((x) => x.memory.peakMiB)));
    out.push(row(mem, "baseline, case 2: peak", "MiB", runs.baseline.map((x) => x.memory.peakMiB)));
    if (runs.baselineNormal.length > 0) out.push(row(mem, "baseline, case 3c: peak", "MiB", runs.baselineNormal.map((x) => x.memory.peakMiB)));
  }
  if (runs.search.length > 0) out.push(row(mem, "service, case 4: peak", "MiB", runs.search.map((x) => x.memory.peakMiB)));
  if (runs.followers.length > 0) out.push(row(mem, "service, case 8: peak", "MiB", runs.followers.map((x) => x.memory.peakMiB)));
  if (runs.readers.length > 0) out.push(row(mem, "service, case 7: peak", "MiB", runs.readers.map((x) => x.memory.peakMiB)));
  for (const size of sizes) {
    const g = runs.growth.get(size)!;
    const largest = size === sizes[sizes.length - 1] && size >= 100_000;
    out.push(row(mem, `service, ${size.toLocaleString("en-US")} domains + groups: peak`, "MiB", g.map((x) => x.memory.peakMiB),
      largest ? { text: "< 150 MiB", test: (v) => v < 150 } : undefined));
    out.push(row(mem, `service, ${size.toLocaleString("en-US")} domains + groups: RSS at end`, "MiB", g.map((x) => x.memory.rssMiB)));
  }
  return out;
}

function notes(runs: Runs, options: BenchOptions): string[] {
  const t = THROUGHPUT_TOPOLOGY;
  const n = [
    `Cases 1-3: ${t.groups} groups (one device each) on ${t.units} intel-vtd units, one shared paging domain per unit, seeded ` +
      "directly into the database file (bench/seed.ts) for both servers. Each connection owns its share of the groups and repeatedly " +
      "attaches a random one of them to its unit's paging domain, then detaches it, so every request should succeed. " +
      "64 groups serve the warm-up run, the other 256 the measured run.",
    "Load: wrk (bench/wrk/load.lua), one connection per wrk thread, on the same machine as the server; latencies are every " +
      "response's, measured in the script from writing the request to the parsed response, and the percentiles are exact.",
    "Every connection sends its next request as soon as the last is answered, so a server that uses all its CPU answers in " +
      "about connections / throughput on average (Little's law): the 'mean latency if saturated' rows. A p99 under 10 ms at 32 " +
      "connections needs well over 3,200 requests/s of that kind on the cores left after the load generator.",
    "Case 2 baseline (bench/baseline-server.ts): Fastify + better-sqlite3 (WAL, synchronous=FULL like the service's default, " +
      "foreign_keys=ON, SQLite's own inline checkpoints), one transaction per request reading Group, Domain and Unit, checking, updating " +
      "Group.domainId and inserting an Event row; it answers with the group row only, while the service also returns the domain it is on " +
      "and the versions of both. The baseline runs through `node --import tsx`. Case 3c runs it with synchronous=NORMAL (no sync at " +
      "commit), the like-for-like partner of case 3b.",
    "The service's writer commits at SQLite's NORMAL and, with --synchronous full, syncs the WAL itself off the event loop before " +
      "answering (src/store/wal-sync.ts): the same guarantee as FULL, whose commit does the same sync on the event loop. The baseline at " +
      "FULL syncs inside every request's commit, on its event loop.",
    `Case 4: ${INCOMPATIBLE + 1} arm-smmu-v3 units; each unit's first group allocated an automatic domain through the container (kept attached); ` +
      `the probe group sits on the last unit, so the search meets ${INCOMPATIBLE} EINVAL (different-instance) before the match. ` +
      `The three modes are interleaved per iteration; ${options.warmupIterations} warm-up iterations are discarded. Detaches are not timed.`,
    "Case 5: size N = N domains and groups: N/2 groups with one device and their default dma domain each, on 4 intel-vtd units with one " +
      "shared paging domain each, seeded by bench/seed.ts (the service's migrator, the core's create operations, the store's row encoding); the service is started with " +
      "--topology none. Start-up is spawn to first 200 from /healthz: migrations check and loading every row into memory.",
    `Case 7 reader flood: ${WRITERS} connections attach/detach (as in case 3) for the measured time alone, then again while ` +
      `${READERS} more connections fetch GET /v1/events?limit=1000 back to back; both phases on the same server in the same run, ` +
      "each on its own pool of groups; the warm-up's writes fill the event log the readers fetch.",
    `Case 8 live followers: ${FOLLOWED_WRITERS} connections attach/detach for the measured time alone, then again while ${FOLLOWERS} ` +
      "connections hold GET /v1/events as text/event-stream from the end of the log; afterwards each follower's count is compared with " +
      "the events the log gained meanwhile (paged), and the lag is each event's receipt time minus its commit time `at` (ms resolution).",
    `Case 9 PostgreSQL: the topology of cases 2-3 seeded into a fresh database per configuration (on BENCH_POSTGRES_URL, else ` +
      `TEST_POSTGRES_URL, else the local server); the raw baseline (bench/pg-baseline-server.ts, Fastify and pg) runs each request as ` +
      `one transaction under the advisory lock a replica's batch takes; with ${REPLICAS} replicas, one wrk per replica runs at once, ` +
      "the connections and groups dealt out between them, and the figures are over every response of all of them. " +
      "PostgreSQL, the servers and wrk share the machine's CPUs.",
    "The service runs with its per-client rate limits off (--rate-limit-reads 0 --rate-limit-writes 0): all the load comes from one address.",
    "The service runs exactly as `npm start` runs it after building: bin/iommu-arbiter-server, which sets the malloc and V8 heap " +
      "settings and execs node dist/server.js, one process, so /proc/<pid>/status is the server's own.",
  ];
  const bad = runs.service.reduce((k, s) => k + s.attach.non2xx + s.attach.errors + s.attach.timeouts, 0)
    + [...runs.baseline, ...runs.baselineNormal].reduce((k, s) => k + s.attach.non2xx + s.attach.errors + s.attach.timeouts, 0);
  if (bad > 0) n.push(`WARNING: ${bad} attach/detach requests in cases 2-3 were not 2xx or failed; see results.json statusCodes.`);
  const noops = runs.service.reduce((k, s) => k + s.attach.noops, 0);
  if (noops > 0) n.push(`WARNING: ${noops} service answers were no-ops (changed:false): the load was not all real moves.`);
  return n;
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  const started = performance.now();
  const m = machine();
  log(`${m.nproc} CPUs, ${m.cpu}, ${m.ramGiB} GiB, Node ${m.node}, ${m.loadGenerator}, load ${m.loadAverageAtStart.join(" ")}`);
  const runs = await collect(options);
  const table = rows(runs, options);
  const report = {
    machine: { ...m, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    options, rows: table,
    raw: {
      baseline: runs.baseline, baselineNormal: runs.baselineNormal, service: runs.service, serviceNormal: runs.serviceNormal, search: runs.search,
      growth: Object.fromEntries(runs.growth), seedMs: Object.fromEntries(runs.seedMs), readers: runs.readers, followers: runs.followers, postgres: runs.postgres,
    },
    notes: notes(runs, options),
    elapsedSeconds: (performance.now() - started) / 1000,
  };
  const files = writeReport(report);
  console.log(textTable(table, options.runs));
  console.log(`\n${options.runs} run(s) per figure; wrote ${files.json} and ${files.markdown} in ${Math.round(report.elapsedSeconds)} s`);
}

main().catch((error: unknown) => {
  if (error instanceof BenchSetupError) {
    console.error(error.message);
    process.exitCode = 2;
    return;
  }
  console.error(error instanceof Error ? error.stack ?? error.message : error);
  process.exitCode = 1;
});
