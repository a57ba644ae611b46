import { formatOptions, parseOptions, UsageError, type OptionDef, type Parsed } from "./options.ts";

/**
 * One `troupe <name>` subcommand. Services export theirs from `src/cli.ts`;
 * the dispatcher (bin/cli.ts) loads it only when it runs.
 */
export interface CliCommand<S extends Record<string, OptionDef> = Record<string, OptionDef>> {
  name: string;
  summary: string;
  /** e.g. "[subject]" — what follows the flags in the usage line. */
  args?: string;
  /** At most this many positional arguments (default 0). */
  maxPositionals?: number;
  options: S;
  /** Extra help text after the options. */
  details?: string;
  /** Runs the command; resolves to the exit code. Throw UsageError for bad input (exit 2). */
  run(parsed: Parsed<S>, argv: readonly string[]): Promise<number>;
}

export function defineCommand<S extends Record<string, OptionDef>>(c: CliCommand<S>): CliCommand<S> {
  return c;
}

export function commandHelp(c: CliCommand): string {
  const lines = [`troupe ${c.name}${Object.keys(c.options).length ? " [options]" : ""}${c.args ? ` ${c.args}` : ""}`, "", c.summary];
  if (Object.keys(c.options).length) lines.push("", "Options (flag, or the environment variable in brackets):", formatOptions(c.options));
  if (c.details) lines.push("", c.details.trim());
  return lines.join("\n");
}

/** Parses argv for a command and runs it; `--help` prints its help. */
export async function runCommand(c: CliCommand, argv: readonly string[], env = process.env): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(commandHelp(c));
    return 0;
  }
  const parsed = parseOptions(c.options, argv, env, { maxPositionals: c.maxPositionals ?? 0 });
  return c.run(parsed, argv);
}

export { UsageError };

/** Signals that stop a service gracefully. SIGHUP too: a closed terminal or a dropped ssh session sends it, and Node's default is to die on the spot (no drain, no deregistration, a browser profile left behind). */
const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Resolves when SIGINT, SIGTERM or SIGHUP arrives (once), so a service's entry
 * module can `await shutdownSignal()` and then close its connections in order.
 * `until` stops listening (the promise then never resolves): a command that stops for another reason must not
 * swallow the signal that would kill it while it stops (`troupe up` stopping after a child refused its settings).
 */
export function shutdownSignal(o: { until?: AbortSignal } = {}): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const off = () => {
      for (const s of SHUTDOWN_SIGNALS) process.off(s, on);
    };
    const on = (sig: NodeJS.Signals) => {
      off();
      resolve(sig);
    };
    if (o.until?.aborted) return;
    for (const s of SHUTDOWN_SIGNALS) process.on(s, on);
    o.until?.addEventListener("abort", off, { once: true });
  });
}

let stdoutGone: Promise<void> | undefined;

/**
 * Resolves when stdout has gone: its reader closed the pipe (EPIPE: `troupe tail
 * | head`, a `tee` killed by the same Ctrl-C), or the terminal hung up (EIO, just
 * before its SIGHUP). From the first call on, writes to it are dropped instead of
 * crashing the process with an unhandled stream error (which, in `troupe up`,
 * ended it in the middle of stopping its children in order).
 */
export function stdoutClosed(): Promise<void> {
  stdoutGone ??= new Promise((resolve) => {
    // Any error: nothing can be written there any more, and none is worth dying for.
    process.stdout.on("error", () => resolve());
  });
  return stdoutGone;
}

/**
 * Text from events (worker names, URLs, error messages quoting a page's title) made safe for a terminal:
 * control characters, ESC above all, are shown as \xNN instead of being sent, so nothing a worker or a
 * web page wrote can move the cursor, clear the screen or retitle the window.
 */
export function terminalSafe(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
