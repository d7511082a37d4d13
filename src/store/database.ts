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
  // mode (not across power loss), the usual trade for a WAL database.
  // EXCLUSIVE locking makes the single-writer assumption explicit: no other
  // process can write this file while we hold it, so the in-memory model is
  // provably the only copy that changes.
  await prisma.$queryRawUnsafe("PRAGMA synchronous = NORMAL");
  await prisma.$queryRawUnsafe("PRAGMA foreign_keys = ON");
  await prisma.$queryRawUnsafe("PRAGMA locking_mode = EXCLUSIVE");
  // Take the lock now (a write transaction), rather than at the first write.
  await prisma.$executeRawUnsafe("BEGIN IMMEDIATE");
  await prisma.$executeRawUnsafe("COMMIT");
  return prisma;
}
