import { spawn, type ChildProcess } from "node:child_process";
import { dieWithParent, formatLogLine } from "@troupe/events/node";

/** Colours for the prefixes, cycled. */
const COLOURS = [36, 33, 35, 32, 34, 31, 96, 93, 95, 92];

export interface Managed {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** Writes lines with a coloured `[name]` prefix (plain when not a terminal). */
export function prefixer(name: string, index: number, width: number, out: NodeJS.WriteStream = process.stdout): (line: string) => void {
  const tag = `[${name}]`.padEnd(width + 2);
  const colour = out.isTTY ? COLOURS[index % COLOURS.length] : undefined;
  const shown = colour ? `\x1b[${colour}m${tag}\x1b[0m` : tag;
  return (line) => {
    if (!out.destroyed) out.write(`${shown} ${formatLogLine(line)}\n`);
  };
}

/**
 * Children still running when `troupe up` itself exits (abnormally: it stops them first otherwise) get SIGTERM,
 * their own graceful stop, as their parent-death signal would give them (they live in their own process groups).
 * SIGKILL here once cut workers off mid-drain when `up` died on an output error.
 */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of running) c.kill("SIGTERM");
});

/** Spawns a child with its output split into prefixed lines. */
export function startProcess(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, log: (line: string) => void): Managed {
  // Its own process group: a terminal's Ctrl-C reaches only `troupe up`, which then stops the
  // children in order (workers drain while NATS is still up), instead of all at once.
  // Outside our group it would outlive a SIGKILL of `troupe up`; the parent-death signal stops it then.
  const [command, argv] = dieWithParent(cmd, args);
  const child = spawn(command, argv, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream.on("data", (b: Buffer) => {
      buf += b.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        log(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    stream.on("end", () => buf && log(buf));
  }
  running.add(child);
  const exited = new Promise<number | null>((res) => child.once("exit", (code, sig) => {
    running.delete(child);
    res(code ?? (sig ? 128 : null));
  }));
  child.once("error", (e) => log(`cannot start: ${e.message}`));
  return {
    name,
    child,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => {
        log(`did not stop within ${graceMs} ms; killing`);
        child.kill("SIGKILL");
      }, graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
