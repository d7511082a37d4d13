// The results table: one row per figure (median over runs, min-max spread,
// target), printed to the terminal, written as JSON to bench/out/results.json
// and as Markdown to bench/RESULTS.md, with the machine it ran on.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { checkWrk } from "./load.js";
import path from "node:path";
import type { BenchOptions } from "./args.js";
import { PROJECT_ROOT } from "./seed.js";
import { spread, type Spread } from "./stats.js";

export type Unit = "req/s" | "ms" | "MiB" | "x" | "count" | "s" | "items";

export interface Row extends Spread {
  readonly section: string;
  readonly figure: string;
  readonly unit: Unit;
  /** What the issue asks for, e.g. "<= 2x"; informational, never asserted. */
  readonly target?: string;
  readonly meets?: boolean;
}

export function row(section: string, figure: string, unit: Unit, values: readonly number[], target?: { text: string; test: (median: number) => boolean }): Row {
  const s = spread(values);
  return {
    section, figure, unit, ...s,
    ...(target ? { target: target.text, meets: Number.isFinite(s.median) ? target.test(s.median) : false } : {}),
  };
}

export interface Machine {
  readonly date: string;
  readonly nproc: number;
  readonly cpu: string;
  readonly ramGiB: number;
  readonly node: string;
  readonly os: string;
  /** `wrk -v`'s first line. */
  readonly loadGenerator: string;
  readonly loadAverageAtStart: number[];
  readonly loadAverageAtEnd?: number[];
}

export function machine(): Machine {
  let nproc = os.availableParallelism();
  try {
    nproc = Number(execFileSync("nproc", { encoding: "utf8" }).trim()) || nproc;
  } catch {
    // nproc missing: keep Node's count
  }
  let cpu = os.cpus()[0]?.model ?? "unknown";
  let ramGiB = os.totalmem() / 2 ** 30;
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpu;
    const kb = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1];
    if (kb) ramGiB = Number(kb) / 2 ** 20;
  } catch {
    // not Linux: keep os module values
  }
  return {
    date: new Date().toISOString(), nproc, cpu, ramGiB: Math.round(ramGiB * 10) / 10, node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`, loadGenerator: checkWrk(), loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function fmt(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return "n/a";
  switch (unit) {
    case "req/s": return Math.round(value).toLocaleString("en-US");
    case "ms": return value < 10 ? value.toFixed(2) : value.toFixed(1);
    case "MiB": return value.toFixed(1);
    case "x": return `${value.toFixed(2)}x`;
    case "s": return value.toFixed(2);
    case "count":
    case "items": return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }
}

function cells(r: Row, runs: number): string[] {
  const unit = r.unit === "x" || r.unit === "count" ? "" : ` ${r.unit}`;
  const median = `${fmt(r.median, r.unit)}${unit}`;
  const range = runs > 1 ? `${fmt(r.min, r.unit)} – ${fmt(r.max, r.unit)}` : "";
  const target = r.target ? `${r.target} ${r.meets ? "(met)" : "(NOT met)"}` : "";
  return [r.section, r.figure, median, range, target];
}

const HEADER = ["case", "figure", "median", "min – max", "target"];

export function textTable(rows: readonly Row[], runs: number): string {
  const body = rows.map((r) => cells(r, runs));
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === 2 || i === 3 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join("  ").trimEnd();
  const out = [line(HEADER), widths.map((w) => "-".repeat(w)).join("  ")];
  let section = "";
  for (let i = 0; i < rows.length; i++) {
    const c = [...body[i]!];
    if (rows[i]!.section === section) c[0] = "";
    section = rows[i]!.section;
    out.push(line(c));
  }
  return out.join("\n");
}

function markdownTable(rows: readonly Row[], runs: number): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const out = [`| ${HEADER.join(" | ")} |`, "|---|---|--:|--:|---|"];
  let section = "";
  for (const r of rows) {
    const c = cells(r, runs).map(esc);
    if (r.section === section) c[0] = "";
    section = r.section;
    out.push(`| ${c.join(" | ")} |`);
  }
  return out.join("\n");
}

export interface Report {
  readonly machine: Machine;
  readonly options: BenchOptions;
  readonly rows: readonly Row[];
  /** Every run's full measurements. */
  readonly raw: unknown;
  readonly notes: readonly string[];
  readonly elapsedSeconds: number;
}

export const OUT_DIR = path.join(PROJECT_ROOT, "bench", "out");

export function writeReport(report: Report): { json: string; markdown: string } {
  mkdirSync(OUT_DIR, { recursive: true });
  const json = path.join(OUT_DIR, "results.json");
  writeFileSync(json, JSON.stringify(report, null, 2) + "\n");
  const m = report.machine;
  const o = report.options;
  const md = [
    "# iommu-arbiter benchmark results",
    "",
    "Generated by `npm run bench` (bench/run.ts); rewritten on every run. Raw numbers: `bench/out/results.json`.",
    "",
    `- Date: ${m.date}`,
    `- Machine: ${m.nproc} CPUs (nproc), ${m.cpu}, ${m.ramGiB} GiB RAM, ${m.os}`,
    `- Node: ${m.node}`,
    `- Load generator: ${m.loadGenerator}, on the same machine`,
    `- Load average at start / end: ${m.loadAverageAtStart.join(", ")} / ${(m.loadAverageAtEnd ?? []).join(", ")} (shared machine)`,
    `- Options: ${o.runs} run(s) per figure, ${o.duration} s measured + ${o.warmup} s warm-up per load, ` +
      `${o.connections} connections (cases 1-3), ${o.growthConnections} connections (case 5), ` +
      `${o.iterations} iterations per search mode, sizes ${o.sizes.join(", ")}${o.quick ? " (--quick)" : ""}`,
    `- Wall time: ${Math.round(report.elapsedSeconds)} s`,
    "",
    `Each figure is the median over the runs; "min – max" is the spread between runs. Latencies are exact`,
    "percentiles of every response of a run (client-side, request written to last byte). Targets are informational.",
    "",
    markdownTable(report.rows, o.runs),
    "",
    "## Notes",
    "",
    ...report.notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
  const markdown = path.join(PROJECT_ROOT, "bench", "RESULTS.md");
  writeFileSync(markdown, md);
  return { json, markdown };
}
