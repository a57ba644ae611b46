import type { Logger } from "@troupe/events/node";
import Database from "better-sqlite3";
import { currentTarget, fileIdentity, newGenerationPath, removeStaleGenerations, swapIn } from "./db-file.ts";
import { createSchema, schemaVersion, SCHEMA_VERSION } from "./schema.ts";

/** Creates an empty database (as a generation behind the symlink) when there is none. Returns whether it must be rebuilt. */
export function prepareFile(path: string, log: Logger): boolean {
  removeStaleGenerations(path, 60_000).forEach((f) => log.info({ file: f }, "removed an old read-model generation"));
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

