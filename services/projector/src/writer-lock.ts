import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { hostname } from "node:os";
import Database from "better-sqlite3";

/**
 * One live projector per database. Views are cached between batches on the
 * assumption that nobody else writes the file, so a second projector on the
 * same path would fold on stale views and corrupt rows.
 *
 * The lock is an exclusive SQLite transaction held open on `<path>.lock`
 * (an fcntl lock underneath): the operating system releases it when the
 * process dies, even by kill -9, so there is no stale lock to clean up. The
 * holder's pid and host are written beside it, only to name it in the error.
 */

export class WriterLockError extends Error {}

export interface WriterLock {
  readonly path: string;
  release(): void;
}

export function lockPathFor(dbPath: string): string {
  return `${dbPath}.lock`;
}

export function acquireWriterLock(dbPath: string): WriterLock {
  const path = lockPathFor(dbPath);
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: 0 });
  try {
    db.exec("BEGIN EXCLUSIVE");
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code !== "SQLITE_BUSY") throw new WriterLockError(`could not lock ${path}: ${(e as Error).message}`);
    throw new WriterLockError(`another projector writes ${dbPath} (${holderOf(path)}); run one projector per database, or give this one another --db`);
  }
  try {
    writeFileSync(`${path}.holder`, `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`);
  } catch {
    // Only used to name the holder in an error; the lock itself stands.
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      db.exec("ROLLBACK");
      db.close();
    },
  };
}

function holderOf(lockPath: string): string {
  try {
    return readFileSync(`${lockPath}.holder`, "utf8").trim();
  } catch {
    return "holder unknown";
  }
}
