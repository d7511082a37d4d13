// Prisma CLI configuration: the JavaScript schema engine over a driver
// adapter, so the CLI runs offline. DATABASE_URL picks the provider: a
// postgresql:// URL works on prisma/postgresql (its schema, generated from
// prisma/schema.prisma by scripts/postgres-schema.mjs, and its migrations);
// anything else on the embedded SQLite schema.
import { defineConfig } from "prisma/config";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";

const url = process.env.DATABASE_URL ?? "file:./data/iommu-arbiter.db";
const postgres = /^postgres(ql)?:\/\//.test(url);

// allowExitOnIdle: the CLI never closes the adapter's pg pool, whose idle
// connection would otherwise keep every command alive for another 10 s.
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: postgres ? "prisma/postgresql/schema.prisma" : "prisma/schema.prisma",
  migrations: { path: postgres ? "prisma/postgresql/migrations" : "prisma/migrations" },
  adapter: async () => (postgres ? new PrismaPg({ connectionString: url, allowExitOnIdle: true }) : new PrismaBetterSQLite3({ url })),
});
