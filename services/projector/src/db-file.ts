import { closeSync, existsSync, fsyncSync, lstatSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { pidAlive, pidNamespaceTag } from "@troupe/events/node";

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

/**
 * Generations this process is writing and has not swapped in or removed yet: the only ones of
 * its own pid that a sweep must leave (a restarted container's projector often gets the pid its
 * dead predecessor had, so "the pid is alive" alone would keep that one's leftovers forever).
 */
const inProgress = new Set<string>();

/** A fresh generation path next to `path`, named with this process's pid and pid namespace (`removeStaleGenerations` reads them). */
export function newGenerationPath(path: string): string {
  const id = `${Date.now().toString(36)}-${pidNamespaceTag()}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const file = `${path}.g-${id}`;
  inProgress.add(resolve(file));
  return file;
}

/** The link `swapIn` renames over the path: named like a generation, for the sweep. */
const swapLinkPath = (path: string) => `${path}.swap-${pidNamespaceTag()}-${process.pid}`;

/** The pid namespace tag and pid in a generation's (or a swap link's) name; null for a name troupe did not make, or made before 2026-11-30 (no tag). */
function creatorOf(name: string): { tag: string; pid: number } | null {
  const m = /\.(?:g-[0-9a-z]+-([0-9a-f]{8})-(\d+)-[0-9a-z]+|swap-([0-9a-f]{8})-(\d+))$/.exec(name);
  return m ? { tag: (m[1] ?? m[3]) as string, pid: Number(m[2] ?? m[4]) } : null;
}

/**
 * Whether the process that made `file` can no longer be writing it: it is dead, or it is this one and has finished
 * with it. null (judge by age) when the name says nothing of its maker, or its maker ran in another pid namespace
 * (another container or host on the same volume), whose pids this process cannot look up.
 */
function abandoned(file: string): boolean | null {
  const c = creatorOf(basename(file));
  if (c === null || c.tag !== pidNamespaceTag()) return null;
  if (c.pid === process.pid) return !inProgress.has(resolve(file));
  return !pidAlive(c.pid);
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
  inProgress.delete(resolve(file));
}

/** Flushes a file's (or a directory's) data to the disk; Linux takes fsync on a read-only descriptor. */
export function syncToDisk(file: string): void {
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** What `swapIn` flushes, in order (tests pass a recorder; the default writes to the disk). */
export interface SwapSync {
  /** The generation's files, before the link points at them. */
  file(path: string): void;
  /** The directory, after the rename: the new link itself. */
  dir(path: string): void;
}

/** Errors of a directory's fsync that say the file system does not do it (some FUSE, CIFS, NFS mounts): nothing to flush. */
const DIR_SYNC_UNSUPPORTED = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EBADF", "EISDIR"]);

/** Whether a directory fsync's error only says the file system does not flush directories (then there is nothing to do). */
export function dirSyncUnsupported(e: unknown): boolean {
  return DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException | undefined)?.code ?? "");
}

const diskSync: SwapSync = {
  file: syncToDisk,
  dir(path) {
    try {
      syncToDisk(path);
    } catch (e) {
      if (!dirSyncUnsupported(e)) throw e;
    }
  },
};

/**
 * Points `path` at `generation` atomically (symlink + rename). Returns the
 * previous target so the caller can delete it once readers had time to move.
 * A rebuild writes its generation without a journal or a single fsync (it is
 * thrown away if it does not finish), so its pages may sit in the page cache:
 * they are flushed before the link points at them, and the directory after, or
 * a power cut soon after a swap could leave the link pointing at a torn file
 * (until 2026-11-30).
 */
export function swapIn(path: string, generation: string, sync: SwapSync = diskSync): string | null {
  const previous = currentTarget(path);
  for (const s of ["", "-wal"]) if (existsSync(`${generation}${s}`)) sync.file(`${generation}${s}`);
  const tmp = swapLinkPath(path);
  rmSync(tmp, { force: true });
  symlinkSync(basename(generation), tmp);
  renameSync(tmp, path);
  try {
    sync.dir(dirname(path));
  } catch (e) {
    throw new Error(`${path} now points at ${basename(generation)}, but its directory could not be flushed to the disk (a power cut may undo the swap): ${(e as Error).message}`, { cause: e });
  }
  inProgress.delete(resolve(generation));
  // A plain file that was replaced leaves its side files under the old name.
  if (previous === path) {
    for (const s of SIDE_FILES.slice(1)) rmSync(`${path}${s}`, { force: true });
    return null;
  }
  return previous;
}

/**
 * Deletes what rebuilds that ended without finishing left beside `path`: generations it no longer
 * points at whose maker is gone (its pid, in the name, is dead; or it is this process, done with
 * it), and swap links of dead processes. A generation of a live process may be a rebuild in
 * progress (`troupe replay` beside the projector) and is kept, whatever its age: deleting it would
 * make that rebuild swap in a file that no longer exists. The pid means something only in the pid
 * namespace the name was made in (its tag, `pidNamespaceTag`): a name made in another one (another
 * container or host on the same volume), or with no tag, is judged by age: removed when nobody
 * wrote it for `minAgeMs`.
 * Until 2026-11-30 every generation was judged by age and only `troupe projector` swept: a killed
 * `troupe replay` left a copy of the read models (and the one it was about to delete after its
 * swap) until the projector's next start more than a minute later.
 */
export function removeStaleGenerations(path: string, minAgeMs: number, nowMs = Date.now()): string[] {
  const dir = dirname(path);
  const generations = `${basename(path)}.g-`;
  const swaps = `${basename(path)}.swap-`;
  const current = currentTarget(path);
  const removed: string[] = [];
  if (!existsSync(dir)) return removed;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (name.startsWith(swaps)) {
      const gone = abandoned(file);
      if (gone === false || (gone === null && nowMs - lstatMs(file) < minAgeMs)) continue;
      rmSync(file, { force: true });
      removed.push(file);
      continue;
    }
    if (!name.startsWith(generations) || /-(wal|shm|journal)$/.test(name)) continue;
    if (file === current) continue;
    const gone = abandoned(file);
    if (gone === false) continue;
    if (gone === null && nowMs - Math.max(...SIDE_FILES.map((s) => lstatMs(`${file}${s}`))) < minAgeMs) continue;
    removeDatabaseFiles(file);
    removed.push(file);
  }
  // Side files whose database is gone (a kill between two of removeDatabaseFiles' deletions).
  for (const name of readdirSync(dir)) {
    const m = /^(.*)-(wal|shm|journal)$/.exec(name);
    if (!m || !(m[1] as string).startsWith(generations) || existsSync(join(dir, m[1] as string))) continue;
    const gone = abandoned(join(dir, m[1] as string));
    if (gone === false || (gone === null && nowMs - lstatMs(join(dir, name)) < minAgeMs)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  return removed;
}

/** When `file` (not what a link points at) was last written; 0 when it is gone. */
function lstatMs(file: string): number {
  try {
    return lstatSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
