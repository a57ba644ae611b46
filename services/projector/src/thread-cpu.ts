import { readFileSync } from "node:fs";

/**
 * CPU time (user + system, ms) the calling thread has used so far, from
 * `/proc/thread-self/stat` (Linux; 10 ms resolution), or null where that is not
 * available. Node 20 has no per-thread CPU clock (`process.threadCpuUsage` is
 * newer); the rebuild uses this to report how busy each of its threads was.
 */
export function threadCpuMs(): number | null {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "utf8");
    // Fields after the command name (which may hold spaces) start with the state; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return null;
  }
}
