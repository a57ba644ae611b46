import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { hostname } from "node:os";

/** Whether a process with this pid exists (EPERM: it does, but is not ours to signal). A zombie counts as alive. */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

let namespaceTag: string | undefined;

/**
 * A short tag of this process's pid namespace (its host name and, on Linux, the pid namespace's inode): a pid written
 * into a file's name means something to `pidAlive` only when the tag in the name is this one. A projector in one
 * container (pid 1) took a `troupe replay` running in another container on the same volume (pid 1 too, or a pid its
 * namespace does not have) for a dead process, and deleted the file that replay was building (a review).
 */
export function pidNamespaceTag(): string {
  if (namespaceTag !== undefined) return namespaceTag;
  let ns = "";
  try {
    ns = String(statSync("/proc/self/ns/pid").ino);
  } catch {
    // Not Linux (or no /proc): the host name alone.
  }
  namespaceTag = createHash("sha256").update(`${hostname()}\0${ns}`).digest("hex").slice(0, 8);
  return namespaceTag;
}
