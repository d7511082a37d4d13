// Opens the Prisma client on the better-sqlite3 adapter. The adapter holds a
// single connection: everything that touches it must go through the
// serialized runner (runner.ts), or a query could land inside another
// operation's transaction.
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "./generated/client.js";

export type Prisma = PrismaClient;

export async function openDatabase(dbFile: string): Promise<PrismaClient> {
  const adapter = new PrismaBetterSQLite3({ url: `file:${dbFile}` });
  const prisma = new PrismaClient({ adapter });
  await prisma.$connect();
  // Per-connection settings. NORMAL is durable across process crashes in WAL
  // mode (not across power loss), the usual trade for a WAL database. The
  // single-writer lock is lock.ts; checkpoints are checkpointer.ts's.
  await prisma.$queryRawUnsafe("PRAGMA synchronous = NORMAL");
  await prisma.$queryRawUnsafe("PRAGMA foreign_keys = ON");
  // better-sqlite3 is built with a 16 MB page cache (SQLITE_DEFAULT_CACHE_SIZE
  // -16000). Reads are answered from the in-memory model, so the cache only
  // serves the pages a batch writes: SQLite's own default of 2 MB is plenty,
  // and loading a large database no longer leaves 14 MB more resident.
  await prisma.$queryRawUnsafe("PRAGMA cache_size = -2000");
  // This connection never checkpoints: the background checkpointer does, off
  // the event loop (and the store turns this back on if that one fails).
  await prisma.$queryRawUnsafe("PRAGMA wal_autocheckpoint = 0");
  // SQLite reuses the WAL file from the start once it has been copied back,
  // but never shrinks it: after a burst, cut it back to 64 MB on disk.
  await prisma.$queryRawUnsafe("PRAGMA journal_size_limit = 67108864");
  return prisma;
}
