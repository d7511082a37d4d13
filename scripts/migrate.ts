// `npm run migrate`: applies the migrations in prisma/migrations to the
// database the service would open (same --db / DATABASE_FILE), through the
// same in-process migrator the service runs at every start
// (src/store/migrate.ts), under the same writer lock: refused while a
// server holds the file. Failures are one line and exit code 2, as at start-up.
import { parseConfig } from "../src/config.js";
import { reportStartupFailure, STARTUP_FAILED } from "../src/startup/fatal.js";
import { checkDatabasePath } from "../src/store/file-check.js";
import { WriterLock } from "../src/store/lock.js";
import { applyMigrations } from "../src/store/migrate.js";

try {
  const config = parseConfig(process.argv.slice(2), process.env);
  checkDatabasePath(config.databaseFile);
  const lock = WriterLock.acquire(config.databaseFile);
  try {
    const { applied, total } = applyMigrations(config.databaseFile, config.migrationsDir);
    for (const name of applied) console.log(`applied ${name}`);
    console.log(`${config.databaseFile}: ${total} migration(s), ${applied.length} applied now, up to date`);
  } finally {
    lock.release();
  }
} catch (error) {
  reportStartupFailure(error, null);
  process.exitCode = STARTUP_FAILED;
}
