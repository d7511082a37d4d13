// Opens the Prisma client on the better-sqlite3 adapter. The store reads the
// durable image through it at start-up and after a failed write; it never
// writes through it (the store's writer connection does, see sqlite.ts).
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "./generated/client.js";

export type Prisma = PrismaClient;

export async function openDatabase(dbFile: string): Promise<PrismaClient> {
  const adapter = new PrismaBetterSQLite3({ url: `file:${dbFile}` });
  const prisma = new PrismaClient({ adapter });
  await prisma.$connect();
  // A reading connection must never checkpoint inline either: the
  // background checkpointer does (checkpointer.ts).
  await prisma.$queryRaw`PRAGMA wal_autocheckpoint = 0`;
  return prisma;
}
