// A fresh PostgreSQL database per test (or per test file), on the server
// TEST_POSTGRES_URL names (default: the local PostgreSQL 15 the project's
// machines run, trust auth). Every database made here is named after this
// run, so parallel runs on one server never collide, and is dropped again
// (its connections terminated first) by `drop()`.
import { randomBytes } from "node:crypto";
import pg from "pg";

export const POSTGRES_SERVER_URL = process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** The URL of database `name` on the test server. */
export function databaseUrl(name: string): string {
  const url = new URL(POSTGRES_SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_SERVER_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Terminates its connections and drops it. */
  drop(): Promise<void>;
}

export async function createTestDatabase(label = "t"): Promise<TestDatabase> {
  const name = `arbiter_${label.replace(/[^a-z0-9_]/g, "_").slice(0, 20)}_${process.pid}_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: databaseUrl(name),
    drop: () => admin(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }),
  };
}

/** Whether the test server answers (the PostgreSQL tests fail, not skip, when it does not: CI must start it). */
export async function postgresAnswers(): Promise<boolean> {
  try {
    await admin((c) => c.query("SELECT 1"));
    return true;
  } catch {
    return false;
  }
}
