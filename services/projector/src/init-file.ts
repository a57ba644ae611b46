import { closeSync, lstatSync, openSync, readlinkSync, readSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Logger } from "@troupe/events/node";
import Database from "better-sqlite3";
import { currentTarget, fileIdentity, newGenerationPath, swapIn } from "./db-file.ts";
import { createSchema, schemaVersion, SCHEMA_VERSION } from "./schema.ts";

/**
 * Throws unless `path` may be used as the read-model database: nothing there yet, the symlink
 * troupe keeps to one of its generation files beside it, or a read-model database troupe wrote.
 * A rebuild replaces `path` and deletes what it pointed at, so anything else (a typo'd --db
 * naming another file, another program's SQLite database) must be refused, not destroyed.
 */
export function assertReadModelPath(path: string): void {
  const refuse = (why: string) => {
    throw new Error(`refusing to use ${path} as the read-model database: ${why}. Give --db [TROUPE_PROJECTOR_DB] a new path (troupe creates it) or one troupe wrote`);
  };
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (st.isSymbolicLink()) {
    const target = resolve(dirname(path), readlinkSync(path));
    if (dirname(target) !== dirname(resolve(path)) || !basename(target).startsWith(`${basename(path)}.g-`)) {
      refuse(`it is a symlink to ${target}, not to one of troupe's generation files (${basename(path)}.g-…) beside it`);
    }
    return;
  }
  if (!st.isFile()) refuse("it is not a regular file");
  const head = Buffer.alloc(16);
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString("latin1") !== "SQLite format 3\0") refuse("it is not an SQLite database");
  let version: number | null;
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      version = schemaVersion(db);
    } finally {
      db.close();
    }
  } catch (e) {
    return refuse(`it cannot be read as an SQLite database (${(e as Error).message})`);
  }
  if (version === null) refuse("it is an SQLite database of something else (no troupe schema version in it)");
}

/** Creates an empty database (as a generation behind the symlink) when there is none. Returns whether it must be rebuilt. */
export function prepareFile(path: string, log: Logger): boolean {
  assertReadModelPath(path);
  // A dangling symlink (its generation deleted by hand) counts as no database.
  if (currentTarget(path) && fileIdentity(path) !== null) {
    const db = new Database(path, { readonly: true });
    const v = schemaVersion(db);
    db.close();
    if (v === SCHEMA_VERSION) return false;
    log.warn({ path, found: v, expected: SCHEMA_VERSION }, "read-model schema differs from this build: rebuilding");
    return true;
  }
  const file = newGenerationPath(path);
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  createSchema(db);
  db.close();
  swapIn(path, file);
  log.info({ path }, "created an empty read-model database");
  return false;
}

