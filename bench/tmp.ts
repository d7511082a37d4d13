// Temporary directories for database files, under os.tmpdir(). Each is
// removed by its case when done, and any left over when the bench exits
// early (an exception, Ctrl-C) is removed on the way out.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const dirs = new Set<string>();

export function tempDir(tag: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `iommu-bench-${tag}-`));
  dirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

process.on("exit", () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
