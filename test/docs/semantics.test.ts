// docs/semantics.md is the contract users read: its errno table must list
// every reason the service answers with, with the errno, soft flag and HTTP
// status the code actually gives. A reason added, renamed or re-mapped in
// the code without the document fails here.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isErrnoName } from "../../src/core/errno.js";
import { REASONS, type Reason } from "../../src/core/reasons.js";
import { isSoft } from "../../src/core/result.js";
import { statusOf } from "../../src/http/status.js";

interface Row {
  readonly reason: string;
  readonly errno: string;
  readonly soft: string;
  readonly status: string;
}

/** The rows of the table under "### 1.2 The errno table". */
function errnoTable(markdown: string): Row[] {
  const start = markdown.indexOf("### 1.2 The errno table");
  const end = markdown.indexOf("\n## ", start);
  if (start < 0 || end < 0) throw new Error("docs/semantics.md has no errno table section");
  return markdown.slice(start, end).split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => {
      const cells = line.split("|").slice(1, -1).map((c) => c.trim());
      return { reason: cells[0]!.replace(/`/g, ""), errno: cells[1]!, soft: cells[2]!, status: cells[3]! };
    });
}

const rows = errnoTable(readFileSync(new URL("../../docs/semantics.md", import.meta.url), "utf8"));

describe("docs/semantics.md errno table", () => {
  it("lists every reason of the catalogue exactly once, and nothing else", () => {
    const listed = rows.map((r) => r.reason);
    expect([...listed].sort()).toEqual(Object.keys(REASONS).sort());
    expect(new Set(listed).size).toBe(listed.length);
  });

  it("every row but injected-fault names an errno and says yes or no for soft", () => {
    for (const row of rows.filter((r) => r.reason !== "injected-fault")) {
      expect(isErrnoName(row.errno), `${row.reason}: errno ${row.errno}`).toBe(true);
      expect(["yes", "no"], `${row.reason}: soft ${row.soft}`).toContain(row.soft);
    }
  });

  it.each(rows.filter((r) => r.soft === "yes" || r.soft === "no"))("$reason: soft is $soft, as the code decides", (row) => {
    const reason = row.reason as Reason;
    expect(REASONS[reason].soft).toBe(row.soft === "yes");
    if (isErrnoName(row.errno)) expect(isSoft({ errno: row.errno, reason, detail: "" })).toBe(row.soft === "yes");
  });

  it.each(rows.filter((r) => isErrnoName(r.errno)))("$reason: $errno, HTTP $status", (row) => {
    const reason = row.reason as Reason;
    // The catalogue carries the errno of each reason once it has one.
    const catalogued = (REASONS[reason] as { errno?: string | null }).errno;
    if (catalogued) expect(row.errno).toBe(catalogued);
    if (!isErrnoName(row.errno)) throw new Error(`${row.errno} is not an errno name`);
    expect(statusOf({ errno: row.errno, reason, detail: "" })).toBe(Number(row.status));
  });
});
