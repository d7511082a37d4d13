// GET /metrics: Prometheus text exposition that parses, with counters that
// move after real requests: attach attempts by op, driver, errno and soft,
// automatic domains a container search kept, events, group-commit batches;
// HTTP timings labelled by route pattern, never the raw URL. Role reader by
// default, public with the setting.
import { describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { DRIVERS } from "../../src/drivers/index.js";
import { buildApp } from "../../src/http/app.js";
import { makeTokenEntry, parseTokenTable } from "../../src/http/tokens.js";
import { SqliteStore } from "../../src/store/store.js";
import { makeTestApp, MIGRATIONS, tempDbFile } from "../helpers/app.js";
import { Client, clientForFile } from "../helpers/http.js";

const c = clientForFile();

interface Sample { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number }

/**
 * The text format (version 0.0.4), strictly: every line empty, a HELP, a TYPE or a
 * sample; every sample's family announced by HELP and TYPE first; label
 * values quoted and escaped; a value a Go float (Inf and NaN in any case, as
 * Go's ParseFloat reads them).
 */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.slice(0, -1).split("\n")) {
    // The format ignores empty lines (prom-client puts one between families).
    if (line === "") continue;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$/.exec(line))) {
      helped.add(m[1]!);
      continue;
    }
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      expect(typed.has(m[1]!), `TYPE of ${m[1]} twice`).toBe(false);
      typed.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (-?(?:\d+(?:\.\d*)?(?:e[+-]?\d+)?|[+-]?[Ii]nf|[Nn]a[Nn]))$/.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const name = m![1]!;
    const family = typed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
    expect(typed.has(family) && helped.has(family), `sample ${name} before its HELP and TYPE`).toBe(true);
    const labels: Record<string, string> = {};
    for (const l of (m![2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name, labels, value: goFloat(m![3]!) });
  }
  return samples;
}

function goFloat(text: string): number {
  if (/^[+-]?inf$/i.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  return /^nan$/i.test(text) ? NaN : Number(text);
}

async function scrape(client: Client = c): Promise<Sample[]> {
  const res = await client.app.inject({ method: "GET", url: "/metrics" });
  expect(res.statusCode).toBe(200);
  expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(res.body);
}

/** The sum of the samples named `name` whose labels include `labels` (0 when none). */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe("GET /metrics", () => {
  it("parses, with the default process metrics and the service's own families", async () => {
    const samples = await scrape();
    const names = new Set(samples.map((s) => s.name));
    for (const name of ["process_cpu_user_seconds_total", "nodejs_eventloop_lag_seconds", "iommu_arbiter_write_queue_depth",
      "iommu_arbiter_checkpoints_total", "iommu_arbiter_commit_batch_size_count", "iommu_arbiter_commit_duration_seconds_count"]) {
      expect(names, name).toContain(name);
    }
  });

  it("counts a soft EINVAL as soft and a hard errno as hard, by op and by the driver that decided", async () => {
    const before = await scrape();
    const attempt = { name: "iommu_arbiter_attach_attempts_total" };
    const soft = { op: "attach-group", driver: "intel-vtd", errno: "EINVAL", soft: "true" };
    const hard = { op: "attach-group", driver: "intel-vtd", errno: "EBUSY", soft: "false" };
    const succeeded = { op: "attach-group", driver: "intel-vtd", errno: "none", soft: "false" };

    // Soft: a coherent domain on a unit without snoop control.
    const narrow = await c.unit({ driver: "intel-vtd", capabilities: { snoopControl: false } });
    const { group: g1 } = await c.groupWith(narrow.id);
    const coherent = await c.domain({ unitId: narrow.id, config: { enforceCacheCoherency: true } });
    expect((await c.post(`/v1/groups/${g1.id}/attach`, { domainId: coherent.id })).status).toBe(409);
    // Hard: attaching a group already on another paging domain.
    const unit = await c.unit({ driver: "intel-vtd" });
    const { group: g2 } = await c.groupWith(unit.id);
    const a = await c.domain({ unitId: unit.id });
    const b = await c.domain({ unitId: unit.id });
    await c.ok("POST", `/v1/groups/${g2.id}/attach`, { domainId: a.id });
    expect((await c.post(`/v1/groups/${g2.id}/attach`, { domainId: b.id })).status).toBe(409);

    const after = await scrape();
    const moved = (labels: Record<string, string>) => total(after, attempt.name, labels) - total(before, attempt.name, labels);
    expect(moved(soft)).toBe(1);
    expect(moved(hard)).toBe(1);
    expect(moved(succeeded)).toBe(1);
    expect(moved({ driver: "amd-iommu" })).toBe(0);
    expect(total(after, "iommu_arbiter_events_written_total", { op: "attach-group" })
      - total(before, "iommu_arbiter_events_written_total", { op: "attach-group" })).toBe(3);
    // Batches were written and timed.
    expect(total(after, "iommu_arbiter_commit_batch_size_count")).toBeGreaterThan(total(before, "iommu_arbiter_commit_batch_size_count"));
    expect(total(after, "iommu_arbiter_commit_duration_seconds_count")).toBe(total(after, "iommu_arbiter_commit_batch_size_count"));
    expect(total(after, "iommu_arbiter_commit_batch_size_sum")).toBeGreaterThanOrEqual(total(after, "iommu_arbiter_commit_batch_size_count"));
  });

  it("counts the automatic domains a container search allocates, by driver and search; a reused one is not counted", async () => {
    const name = "iommu_arbiter_domains_allocated_total";
    const labels = { driver: "arm-smmu-v3", search: "kernel" };
    const before = total(await scrape(), name, labels);
    const ct = await c.container();
    const u = await c.unit({ driver: "arm-smmu-v3" });
    const first = await c.groupWith(u.id);
    const second = await c.groupWith(u.id);
    await c.ok("POST", `/v1/containers/${ct.id}/attach`, { groupId: first.group.id });
    await c.ok("POST", `/v1/containers/${ct.id}/attach`, { groupId: second.group.id });
    const after = await scrape();
    expect(total(after, name, labels) - before).toBe(1);
    expect(total(after, "iommu_arbiter_attach_attempts_total", { op: "container-attach", driver: "arm-smmu-v3", errno: "none" })).toBeGreaterThanOrEqual(2);
  });

  it("times requests by route pattern, method and status class, never by the raw URL", async () => {
    const unit = await c.unit({ driver: "mock" });
    await c.read(`/v1/units/${unit.id}`);
    expect((await c.get("/v1/units/999999")).status).toBe(404);
    expect((await c.get("/no/such/path/123")).status).toBe(404);
    const samples = (await scrape()).filter((s) => s.name === "http_request_duration_seconds_count");
    expect(total(samples, "http_request_duration_seconds_count", { route: "/v1/units/:id", method: "GET", status_class: "2xx" })).toBeGreaterThanOrEqual(1);
    expect(total(samples, "http_request_duration_seconds_count", { route: "/v1/units/:id", method: "GET", status_class: "4xx" })).toBeGreaterThanOrEqual(1);
    expect(total(samples, "http_request_duration_seconds_count", { route: "unmatched", status_class: "4xx" })).toBeGreaterThanOrEqual(1);
    for (const s of samples) expect(s.labels.route, JSON.stringify(s.labels)).not.toMatch(/\d{3,}|\/no\/such/);
  });

  it("each app has its own registry: two apps in one process count apart", async () => {
    const other = await makeTestApp();
    try {
      const o = new Client(other.app);
      const before = total(await scrape(o), "iommu_arbiter_events_written_total");
      await c.unit({ driver: "mock" });
      const u = await c.unit({ driver: "intel-vtd" });
      const { group } = await c.groupWith(u.id);
      await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: (await c.domain({ unitId: u.id })).id });
      expect(total(await scrape(o), "iommu_arbiter_events_written_total")).toBe(before);
    } finally {
      await other.close();
    }
  });

  it("the write queue depth and checkpoint count are read from the store", async () => {
    await c.unit({ driver: "mock" });
    await c.app.store.read(() => null);
    const samples = await scrape();
    expect(total(samples, "iommu_arbiter_write_queue_depth")).toBe(c.app.store.stats().queued);
    expect(total(samples, "iommu_arbiter_checkpoints_total")).toBe(c.app.store.stats().checkpoints);
  });
});

describe("GET /metrics and roles", () => {
  /** An app with a token table (one reader, one client), and metricsPublic as given. */
  async function withTokens(metricsPublic: boolean) {
    const reader = makeTokenEntry("dashboard", "reader");
    const { dir, file } = tempDbFile();
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
    const app = await buildApp({ store, logger: false, metricsPublic, tokens: parseTokenTable(JSON.stringify({ tokens: [reader.entry] }), "test tokens") });
    app.addHook("onClose", () => store.close());
    return {
      scrape: async (token?: string) => (await app.inject({ method: "GET", url: "/metrics", headers: token ? { authorization: `Bearer ${token}` } : {} })).statusCode,
      token: reader.token,
      async close() {
        await app.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  it("needs a reader token by default", async () => {
    const t = await withTokens(false);
    try {
      expect(await t.scrape()).toBe(401);
      expect(await t.scrape(t.token)).toBe(200);
    } finally {
      await t.close();
    }
  });

  it("answers without a token with metricsPublic", async () => {
    const t = await withTokens(true);
    try {
      expect(await t.scrape()).toBe(200);
    } finally {
      await t.close();
    }
  });
});
