import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { pidAlive } from "./pid-alive.ts";

/**
 * Runs `fn` holding `path` as a lock file (created exclusively, holding this pid), so commands that
 * read, change and write the same files (`troupe worker-user`, a starting nats-server) take turns.
 * A lock left by a process that died (its pid gone, the file older than a second) is removed. Two
 * waiters that find the same dead lock at once could both remove it; a lock is held for a reload at
 * most, and only a killed holder leaves one, so that window is accepted.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T> | T, o: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create the lock file ${path}: ${(e as Error).message}`, { cause: e });
    }
    let holder = Number.NaN;
    let ageMs = 0;
    try {
      holder = Number.parseInt(readFileSync(path, "utf8"), 10);
      ageMs = Date.now() - statSync(path).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    if (!pidAlive(holder) && ageMs > 1000) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${o.what ?? path} is locked by pid ${Number.isNaN(holder) ? "?" : holder} (${path}); try again when it is done, or remove the file if that process is gone`);
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}
