import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname } from "node:os";
import { join } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { UsageError } from "./options.ts";

/** The lock file of a data dir's NATS store (an SQLite file: its lock is the kernel's), and the holder's note beside it. */
export const storeLockPath = (dataDir: string) => join(dataDir, "nats-store.lock");

/** Loaded when a store is claimed: the services that never run nats-server do not load the native module. */
const load = () => createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;

/**
 * Claims the JetStream store of `dataDir` for this process, which runs nats-server on it (`troupe nats`, `troupe up`),
 * for as long as it lives: a second `troupe up` whose ports were moved but not its data dir started a second
 * nats-server on the same store and a second master on its log (a new user's walkthrough; nats-server 2.9.10 does
 * not lock its store). Taken before anything in the data dir is written, held through nats-server restarts.
 *
 * The lock is an exclusive SQLite transaction on `<data dir>/nats-store.lock` (an fcntl lock underneath, as the
 * projector's writer lock): the kernel drops it when the process dies, kill -9 and power cuts included, so no claim
 * is ever stale, and it holds across containers of one host sharing the volume. Not across hosts on a network file
 * system that does not carry fcntl locks, and not for a nats-server left running by a killed troupe where it cannot
 * die with its parent (no `setpriv`: not Linux). A live holder makes the next claim a usage error naming it.
 * Returns the release.
 */
export function claimNatsStore(dataDir: string): () => void {
  const path = storeLockPath(dataDir);
  const Database = load();
  let db: BetterSqlite3.Database;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (e) {
    throw new Error(`cannot open ${path} to claim the NATS store of ${dataDir}: ${(e as Error).message}`, { cause: e });
  }
  try {
    db.exec("BEGIN EXCLUSIVE");
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code !== "SQLITE_BUSY") throw new Error(`cannot claim the NATS store of ${dataDir} (${path}): ${(e as Error).message}`, { cause: e });
    throw new UsageError(`another troupe process runs nats-server on the store of ${dataDir} (${holderOf(path)}): two servers must not share one store. Stop it (its \`troupe up\` or \`troupe nats\`), or give this one another --data-dir (TROUPE_DATA_DIR)`);
  }
  try {
    writeFileSync(`${path}.holder`, `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`);
  } catch {
    // Only names the holder in another start's error; the lock itself stands.
  }
  // Referenced until released: a connection the garbage collector takes is closed, and its lock with it (a claim
  // whose release nobody kept went within seconds).
  HELD.add(db);
  return () => {
    if (!HELD.delete(db)) return;
    db.exec("ROLLBACK");
    db.close();
  };
}

const HELD = new Set<BetterSqlite3.Database>();

function holderOf(path: string): string {
  try {
    return readFileSync(`${path}.holder`, "utf8").trim();
  } catch {
    return "holder unknown";
  }
}
