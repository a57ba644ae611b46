import { existsSync } from "node:fs";

/**
 * Children that live in their own process group (so a terminal's Ctrl-C
 * reaches only their parent, which then stops them in order) are not killed
 * with the group when the parent dies abruptly (SIGKILL, OOM). On Linux,
 * util-linux's `setpriv --pdeathsig` sets the kernel's parent-death signal
 * and then execs the command, so the child keeps its pid and gets SIGTERM —
 * a normal graceful stop — the moment its parent dies. Where setpriv is
 * missing the command runs unchanged (and may outlive a killed parent).
 */

const SETPRIV_PATHS = ["/usr/bin/setpriv", "/bin/setpriv"];

export function setprivPath(): string | undefined {
  if (process.platform !== "linux") return undefined;
  return SETPRIV_PATHS.find((p) => existsSync(p));
}

/** `[command, args]` that run `cmd args` with SIGTERM as its parent-death signal where the platform allows. */
export function dieWithParent(cmd: string, args: readonly string[]): [string, string[]] {
  const setpriv = setprivPath();
  return setpriv ? [setpriv, ["--pdeathsig", "SIGTERM", "--", cmd, ...args]] : [cmd, [...args]];
}
