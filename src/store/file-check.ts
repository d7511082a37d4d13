// What can be wrong with a database path, said in one sentence before SQLite
// gets to say it with a stack trace: a directory that cannot be created or
// written (SQLite creates the -wal, -shm and -lock files beside the
// database), a path that is not a regular file, a file this process may not
// read and write. What the file holds is checked under the writer lock, by
// the migrator (migrate.ts).
import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";

/** The database file or its directory cannot be used; the message names which and why. */
export class DatabaseFileError extends Error {}

const REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a component of the path is not a directory",
  ENOENT: "no such file or directory",
  ENOSPC: "no space left on device",
  ELOOP: "too many symbolic links",
};

export function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code) return REASONS[code] ?? code;
  return error instanceof Error ? error.message : String(error);
}

/**
 * mkdir -p, one level at a time. Not mkdirSync's `recursive`: it loops
 * forever where mkdir answers ENOENT for a parent that exists (under /proc).
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let at = dir; !existsSync(at); at = path.dirname(at)) {
    missing.push(at);
    if (path.dirname(at) === at) break;
  }
  for (const d of missing.reverse()) mkdirSync(d);
}

/** Creates the directory if needed; throws DatabaseFileError naming the problem. */
export function checkDatabasePath(file: string): void {
  const dir = path.dirname(file);
  try {
    makeDirectory(dir);
  } catch (error) {
    throw new DatabaseFileError(`cannot create database directory ${dir}: ${reasonOf(error)}`);
  }
  if (!statSync(dir).isDirectory()) throw new DatabaseFileError(`database directory ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new DatabaseFileError(`database directory ${dir} is not writable (${reasonOf(error)}); SQLite creates its -wal and -shm files there`);
  }
  let isFile: boolean;
  try {
    isFile = statSync(file).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return; // a new database
    throw new DatabaseFileError(`cannot use database file ${file}: ${reasonOf(error)}`);
  }
  if (!isFile) throw new DatabaseFileError(`database file ${file} is not a regular file`);
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    throw new DatabaseFileError(`cannot read database file ${file}: ${reasonOf(error)}`);
  }
  try {
    accessSync(file, constants.W_OK);
  } catch (error) {
    throw new DatabaseFileError(`cannot write database file ${file}: ${reasonOf(error)}`);
  }
}
