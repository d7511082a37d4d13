// The private PostgreSQL instance the database-restart tests use: it starts
// on its own port, keeps committed data through a fast stop and through an
// immediate one (a crash), refuses connections while stopped, and leaves
// nothing behind; the shared server on 5432 is not touched.
import { existsSync } from "node:fs";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { postgresAnswers } from "./postgres.js";
import { startPrivatePostgres, type PrivatePostgres } from "./private-postgres.js";

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe("a private PostgreSQL instance", () => {
  let db: PrivatePostgres | null = null;
  afterAll(async () => {
    await db?.destroy();
  });

  it("starts on its own port, keeps committed rows through stop/start and kill/start, and is removed by destroy", async () => {
    db = await startPrivatePostgres();
    expect(db.port).not.toBe(5432);
    expect(db.url("x")).toBe(`postgresql://postgres@127.0.0.1:${db.port}/x`);
    const [settings] = await query<{ fsync: string; port: string }>(db.url(), "SELECT current_setting('fsync') AS fsync, current_setting('port') AS port");
    expect(settings).toEqual({ fsync: "on", port: String(db.port) });

    const url = await db.createDatabase("probe");
    await query(url, "CREATE TABLE t (v int)");
    await query(url, "INSERT INTO t VALUES (1)");

    await db.stop();
    await expect(query(url, "SELECT 1")).rejects.toThrow();
    await db.start();
    expect(await query(url, "SELECT v FROM t")).toEqual([{ v: 1 }]);

    await query(url, "INSERT INTO t VALUES (2)");
    await db.kill();
    await expect(query(url, "SELECT 1")).rejects.toThrow();
    await db.start();
    expect(await query(url, "SELECT v FROM t ORDER BY v")).toEqual([{ v: 1 }, { v: 2 }]);

    // The shared server was never involved.
    expect(await postgresAnswers()).toBe(true);

    const dir = db.dir;
    await db.destroy();
    db = null;
    expect(existsSync(dir)).toBe(false);
  });
});
