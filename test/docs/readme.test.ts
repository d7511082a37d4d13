// The README's errno tables are generated (npm run docs:errors) from the
// catalogue and the status table; this fails when they are stale, and reads
// them back to check each row against the code that answers.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ATTACH_DEV_ERRNOS, errnoCode, isErrnoName } from "../../src/core/errno.js";
import { isSoftAnswer, REASONS, type Reason } from "../../src/core/reasons.js";
import { statusOf } from "../../src/http/status.js";
import { BEGIN, END, README, withErrnoTables } from "../../scripts/errno-table.js";

const readme = readFileSync(README, "utf8");

interface Row { errno: string; code: string; status: string; soft: string; reasons: string[] }

function rowsOf(markdown: string): Row[] {
  const block = markdown.slice(markdown.indexOf(BEGIN) + BEGIN.length, markdown.indexOf(END));
  return block.split("\n").filter((line) => /^\| E[A-Z0-9]+ \|/.test(line)).map((line) => {
    const [errno, code, status, soft, reasons] = line.split("|").slice(1, -1).map((c) => c.trim());
    return { errno: errno!, code: code!, status: status!, soft: soft!, reasons: [...reasons!.matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1]!) };
  });
}

const rows = rowsOf(readme);

describe("README errno tables", () => {
  it("are what npm run docs:errors writes from the catalogue", () => {
    expect(readme.indexOf(BEGIN), "README.md has no errno-table markers").toBeGreaterThanOrEqual(0);
    expect(readme, "README.md errno tables are stale: run npm run docs:errors").toBe(withErrnoTables(readme));
  });

  it("list every reason of the catalogue, each once per errno it can answer", () => {
    const listed = rows.flatMap((r) => r.reasons);
    const expected = (Object.keys(REASONS) as Reason[]).flatMap((r) => (REASONS[r].errno === null ? ATTACH_DEV_ERRNOS.map(() => r) : [r]));
    expect([...listed].sort()).toEqual([...expected].sort());
  });

  it.each(rows)("$errno $status soft=$soft: $reasons", (row) => {
    if (!isErrnoName(row.errno)) throw new Error(`${row.errno} is not an errno name`);
    const errno = row.errno;
    expect(Number(row.code)).toBe(errnoCode(errno));
    for (const reason of row.reasons as Reason[]) {
      const catalogued = REASONS[reason].errno;
      if (catalogued === null) expect(ATTACH_DEV_ERRNOS, reason).toContain(errno);
      else expect(errno, reason).toBe(catalogued);
      expect(statusOf({ errno, reason, detail: "" }), reason).toBe(Number(row.status));
      expect(isSoftAnswer(errno, reason), reason).toBe(row.soft === "**yes**");
    }
  });
});
