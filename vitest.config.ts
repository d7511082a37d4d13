import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each test file builds its own app on its own temporary database.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
