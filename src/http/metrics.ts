// GET /metrics: Prometheus text exposition (prom-client). Each app has its
// own registry, so several apps in one process (tests) never share or
// collide. Attempts, allocations and events are counted from what the store
// commits (its observer), never from inside the core; HTTP timings come
// from Fastify's own request timing, labelled by route pattern, never by
// the raw URL (ids would make a series per object).
import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CommitFacts } from "../store/observer.js";
import type { RouteRole } from "./auth.js";

export const METRICS_PATH = "/metrics";

export interface MetricsOptions {
  /** Who may scrape: "reader" (default) or "public" (no token), see --metrics-public. */
  readonly role?: RouteRole;
}

/** The ops that attach something (an attempt of the kernel's attach contract). */
const ATTACH_OPS = new Set(["attach-device", "attach-group", "replace-group", "container-attach", "attach-pasid", "attach-iommufd", "replace-iommufd"]);

const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;

export async function installMetrics(app: FastifyInstance, options: MetricsOptions = {}): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const store = app.store;

  const requestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time from a request's arrival to its answer being sent, by route pattern, method and status class",
    labelNames: ["route", "method", "status_class"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const attempts = new Counter({
    name: "iommu_arbiter_attach_attempts_total",
    help: "Attach attempts committed to the event log, by op, driver, errno (none: succeeded) and soft (an EINVAL another domain may accept)",
    labelNames: ["op", "driver", "errno", "soft"] as const,
    registers: [registry],
  });
  const allocated = new Counter({
    name: "iommu_arbiter_domains_allocated_total",
    help: "Automatic domains a container search allocated and kept, by driver and search (kernel, qemu)",
    labelNames: ["driver", "search"] as const,
    registers: [registry],
  });
  const events = new Counter({
    name: "iommu_arbiter_events_written_total",
    help: "Events committed to the event log, by op",
    labelNames: ["op"] as const,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: "iommu_arbiter_commit_batch_size",
    help: "Operations written per group-commit batch",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  const commitLatency = new Histogram({
    name: "iommu_arbiter_commit_duration_seconds",
    help: "Time from the start of a batch's write until it is durable (committed and, with synchronous full, the WAL synced)",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  new Gauge({
    name: "iommu_arbiter_write_queue_depth",
    help: "Operations waiting to be written or made durable",
    registers: [registry],
    collect() {
      this.set(store.stats().queued);
    },
  });
  new Counter({
    name: "iommu_arbiter_checkpoints_total",
    help: "WAL checkpoints the background checkpointer ran",
    registers: [registry],
    collect() {
      // The checkpointer counts; the counter shows its count.
      this.reset();
      this.inc(store.stats().checkpoints);
    },
  });
  new Gauge({
    name: "iommu_arbiter_objects",
    help: "Objects the service holds, by kind",
    labelNames: ["kind"] as const,
    registers: [registry],
    collect() {
      for (const [kind, count] of Object.entries(store.stats().objects)) this.set({ kind }, count);
    },
  });

  const stopObserving = store.observe({
    batchCommitted(size, seconds) {
      batchSize.observe(size);
      commitLatency.observe(seconds);
    },
    operationCommitted(facts: CommitFacts) {
      for (const { event, driver } of facts.events) {
        events.inc({ op: event.op });
        if (ATTACH_OPS.has(event.op)) {
          attempts.inc({ op: event.op, driver: driver ?? "unknown", errno: event.errno ?? "none", soft: String(event.soft) });
        }
      }
      for (const d of facts.domainsAllocated) allocated.inc({ driver: d.driver, search: d.search });
    },
  });
  app.addHook("onClose", (_instance, done) => {
    stopObserving();
    done();
  });

  app.addHook("onResponse", (request, reply, done) => {
    // Unmatched URLs share one series: their paths are the client's words.
    const route = request.routeOptions.url ?? "unmatched";
    requestDuration.observe({ route, method: request.method, status_class: statusClass(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });

  app.get(METRICS_PATH, {
    config: { role: options.role ?? "reader" },
    schema: {
      response: {
        200: {
          description: "The metrics in Prometheus text exposition format 0.0.4",
          content: { [registry.contentType]: { schema: { type: "string" } } },
        },
      },
    },
  }, async (_request, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}
