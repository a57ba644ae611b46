import { existsSync, lstatSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/**
 * The read-model file layout. `<path>` (default `<data dir>/readmodels.sqlite`)
 * is a symlink to one generation file `<path>.g-<id>`; a rebuild writes a new
 * generation and swaps the symlink with one rename. Each generation keeps its
 * own -wal/-shm beside it (SQLite resolves the symlink), so a swap never pairs a
 * database with another file's WAL — renaming a WAL-mode file over a live one
 * would.
 */

export const DEFAULT_DB_FILE = "readmodels.sqlite";

export function dbPathFor(dataDir: string, db?: string): string {
  return resolve(db ?? join(dataDir, DEFAULT_DB_FILE));
}

/** A fresh generation path next to `path`. */
export function newGenerationPath(path: string): string {
  const id = `${Date.now().toString(36)}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  return `${path}.g-${id}`;
}

/** The file `path` points at now (itself when it is a plain file), or null when missing. */
export function currentTarget(path: string): string | null {
  try {
    const st = lstatSync(path);
    if (!st.isSymbolicLink()) return path;
    return resolve(dirname(path), readlinkSync(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Inode of the database `path` resolves to, or null when there is none: readers reopen when it changes. */
export function fileIdentity(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

const SIDE_FILES = ["", "-wal", "-shm", "-journal"];

export function removeDatabaseFiles(file: string): void {
  for (const s of SIDE_FILES) rmSync(`${file}${s}`, { force: true });
}

/**
 * Points `path` at `generation` atomically (symlink + rename). Returns the
 * previous target so the caller can delete it once readers had time to move.
 */
export function swapIn(path: string, generation: string): string | null {
  const previous = currentTarget(path);
  const tmp = `${path}.swap-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(basename(generation), tmp);
  renameSync(tmp, path);
  // A plain file that was replaced leaves its side files under the old name.
  if (previous === path) {
    for (const s of SIDE_FILES.slice(1)) rmSync(`${path}${s}`, { force: true });
    return null;
  }
  return previous;
}

/**
 * Deletes generations that `path` no longer points at and that nobody wrote for
 * `minAgeMs` (a rebuild in progress elsewhere keeps touching its file).
 */
export function removeStaleGenerations(path: string, minAgeMs: number, nowMs = Date.now()): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.g-`;
  const current = currentTarget(path);
  const removed: string[] = [];
  if (!existsSync(dir)) return removed;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || /-(wal|shm|journal)$/.test(name)) continue;
    const file = join(dir, name);
    if (file === current) continue;
    const newest = Math.max(...SIDE_FILES.map((s) => { try { return statSync(`${file}${s}`).mtimeMs; } catch { return 0; } }));
    if (nowMs - newest < minAgeMs) continue;
    removeDatabaseFiles(file);
    removed.push(file);
  }
  return removed;
}
