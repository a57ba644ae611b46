import { lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { pidAlive, pidNamespaceTag } from "@troupe/events/node";
import { build } from "esbuild";

/**
 * The rebuild's writer thread as one plain JavaScript file, bundled once per
 * process with esbuild (~0.1–0.2 s). Loaded through tsx instead
 * (`build-thread-entry.mjs`), every rebuild paid ~0.5 s of the thread's CPU
 * and ~0.4 s of a loader-hooks thread to transform and link the TypeScript
 * it imports (the contract, the reducers, kysely): 3–4 µs per event of a
 * 300,000-event rebuild, ~1 µs at a million (docs/projector.md). better-sqlite3,
 * a native module, stays outside the bundle and is imported from where this
 * package resolves it.
 */

let bundled: Promise<URL> | null = null;

const DIR_PREFIX = "troupe-build-thread-";

/**
 * Removes the bundle directories of processes that died without their exit handler (kill -9, a
 * crash): each is named with its process's pid namespace tag and pid. Until 2026-11-30 they were
 * not named so, and every killed rebuild left one in the temporary directory for good. Another
 * namespace's (a temporary directory shared with a container) and another user's are left alone:
 * their pids mean nothing here, and removing another user's fails (it was warned of every 10 s).
 * Returns what it removed and what it could not, for the caller to log.
 */
export function removeAbandonedBundles(dir = tmpdir()): { removed: string[]; failed: { dir: string; error: string }[] } {
  const removed: string[] = [];
  const failed: { dir: string; error: string }[] = [];
  const uid = process.getuid?.();
  for (const name of readdirSync(dir)) {
    const m = new RegExp(`^${DIR_PREFIX}([0-9a-f]{8})-(\\d+)-`).exec(name);
    if (!m || m[1] !== pidNamespaceTag()) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || pidAlive(pid)) continue;
    const path = join(dir, name);
    try {
      if (uid !== undefined && lstatSync(path).uid !== uid) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch (e) {
      failed.push({ dir: path, error: (e as Error).message });
    }
  }
  return { removed, failed };
}

export function buildThreadEntry(): Promise<URL> {
  return (bundled ??= bundle());
}

async function bundle(): Promise<URL> {
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${pidNamespaceTag()}-${process.pid}-`));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const sqlite = createRequire(import.meta.url).resolve("better-sqlite3");
  const outfile = join(dir, "build-thread.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("./build-thread.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    alias: { "better-sqlite3": sqlite },
    external: [sqlite],
    logLevel: "silent",
    // Bundled CommonJS code calls require (typebox's and kysely's CJS builds may be picked).
    banner: { js: 'import { createRequire as __troupeRequire } from "node:module"; const require = __troupeRequire(import.meta.url);' },
  });
  return pathToFileURL(outfile);
}

/** The tsx-loaded entry: what a rebuild uses when bundling fails. */
export const tsxEntry = new URL("./build-thread-entry.mjs", import.meta.url);
