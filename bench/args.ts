// Command-line options of `npm run bench -- [options]`.
import { parseArgs } from "node:util";

export const CASES = ["throughput", "search", "growth", "readers", "followers", "postgres"] as const;
export type CaseName = (typeof CASES)[number];

export interface BenchOptions {
  readonly quick: boolean;
  /** Runs per figure; each figure is the median over them. */
  readonly runs: number;
  /** Measured seconds of each load run. */
  readonly duration: number;
  /** Seconds of the discarded warm-up load before each measured run. */
  readonly warmup: number;
  /** Connections of the throughput cases (1-3). */
  readonly connections: number;
  /** Connections of the growth case (5). */
  readonly growthConnections: number;
  /** Timed iterations of each mode of the search case (4). */
  readonly iterations: number;
  readonly warmupIterations: number;
  /** Database sizes of the growth case. */
  readonly sizes: number[];
  readonly cases: CaseName[];
}

export const USAGE = `Usage: npm run bench -- [options]
  --quick               smoke run: 1 run, 1 s loads, 30 search iterations
  --runs N              runs per figure, median reported (default 3)
  --duration S          measured seconds per load run (default 5)
  --warmup S            warm-up seconds before each load run (default 2; 1 with --quick)
  --connections N       connections for ceiling / baseline / service (default 32)
  --growth-connections N  connections for the growth case (default 8)
  --iterations N        timed iterations per search mode (default 300)
  --sizes A,B,C         growth case database sizes (default 100,10000,100000)
  --cases LIST          subset of ${CASES.join(",")} (default all)`;

function positive(name: string, text: string | undefined, fallback: number, integer = true): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be a positive ${integer ? "integer" : "number"}, got "${text}"\n${USAGE}`);
  return n;
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" }, runs: { type: "string" }, duration: { type: "string" }, warmup: { type: "string" },
      connections: { type: "string" }, "growth-connections": { type: "string" }, iterations: { type: "string" },
      sizes: { type: "string" }, cases: { type: "string" }, help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const sizes = values.sizes === undefined
    ? [100, 10_000, 100_000]
    : [...new Set(values.sizes.split(",").map((s) => positive("sizes", s.trim().replace(/_/g, ""), 0)))];
  const cases = values.cases === undefined ? [...CASES] : values.cases.split(",").map((c) => c.trim());
  for (const c of cases) if (!(CASES as readonly string[]).includes(c)) throw new Error(`unknown case "${c}"\n${USAGE}`);
  const iterations = positive("iterations", values.iterations, quick ? 30 : 300);
  return {
    quick,
    runs: positive("runs", values.runs, quick ? 1 : 3),
    duration: positive("duration", values.duration, quick ? 1 : 5, false),
    warmup: positive("warmup", values.warmup, quick ? 1 : 2, false),
    connections: positive("connections", values.connections, 32),
    growthConnections: positive("growth-connections", values["growth-connections"], 8),
    iterations,
    warmupIterations: Math.max(5, Math.round(iterations / 10)),
    sizes,
    cases: cases as CaseName[],
  };
}
