import { defineConfig } from "vitest/config";

/**
 * Run twice where the store matters: every test on the embedded SQLite
 * default, and the HTTP, race and client tests again on PostgreSQL (each
 * test file on a fresh database of the server TEST_POSTGRES_URL names,
 * test/helpers/postgres.ts). Tests made for one store only say so in their
 * own file and run once.
 */
/** Tests of the PostgreSQL store itself, its migrator, its replicas and their proxy: run once, in the postgresql project. */
const POSTGRES_ONLY = [
  "test/store/postgres-*.test.ts", "test/server/replicas-*.test.ts", "test/server/compose-replicas.test.ts",
  "test/helpers/private-postgres.test.ts", "test/prisma/postgres-schema.test.ts",
];

export default defineConfig({
  test: {
    // Each test file builds its own app on its own temporary database.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "sqlite", include: ["test/**/*.test.ts"], exclude: POSTGRES_ONLY } },
      {
        extends: true,
        test: {
          name: "postgresql",
          include: ["test/http/**/*.test.ts", "test/server/race.test.ts", "test/client/**/*.test.ts", ...POSTGRES_ONLY],
          // Browser tests and the OpenAPI file check do not depend on the store.
          exclude: ["test/http/docs-browser.test.ts", "test/http/openapi.test.ts"],
          env: { TEST_STORE: "postgresql" },
        },
      },
    ],
  },
});
