import { pino, type DestinationStream, type Logger } from "pino";
import { formatLogLine } from "./log-format.ts";
import { UsageError } from "./options.ts";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** A usage error (exit 2) naming TROUPE_LOG_LEVEL when `level` is none of pino's. */
export function checkLogLevel(level: string | undefined): void {
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`TROUPE_LOG_LEVEL: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
}

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A usage error (exit 2) naming TROUPE_LOG_FORMAT when `format` is none of LOG_FORMATS. */
export function checkLogFormat(format: string | undefined): void {
  if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) throw new UsageError(`TROUPE_LOG_FORMAT: expected one of ${LOG_FORMATS.join(", ")}, got ${JSON.stringify(format)}`);
}

/** JSON unless asked for lines, or `auto` on a terminal (a person reading, not a collector or `troupe up`, whose children write to pipes). */
export function prettyLogs(format: string | undefined, isTTY: boolean): boolean {
  checkLogFormat(format);
  return format === "pretty" || ((format ?? "auto") === "auto" && isTTY);
}

let prettyOutGone = false;
let prettyOutWatched = false;

/**
 * Readable lines on stdout (synchronous on a terminal, as pino's own destination is: a crash's last lines must not
 * be lost). One error listener for all loggers: once the terminal has gone (EIO after a hang-up), lines are dropped.
 */
function prettyDestination(out: NodeJS.WriteStream): DestinationStream {
  if (!prettyOutWatched) {
    prettyOutWatched = true;
    out.on("error", () => (prettyOutGone = true));
  }
  return {
    write: (line: string) => {
      if (prettyOutGone || out.destroyed) return;
      for (const l of line.split("\n")) if (l) out.write(`${formatLogLine(l, { time: true, stack: true })}\n`);
    },
  };
}

/**
 * One logger per service: JSON lines (pino), or readable lines on a terminal (`TROUPE_LOG_FORMAT`, default
 * `auto`); `TROUPE_LOG_LEVEL` sets the level (default info).
 */
export function createLogger(name: string, level = process.env.TROUPE_LOG_LEVEL ?? "info", format = process.env.TROUPE_LOG_FORMAT): Logger {
  checkLogLevel(level);
  const opts = { name, level, base: { svc: name } };
  const logger = prettyLogs(format, process.stdout.isTTY === true) ? pino(opts, prettyDestination(process.stdout)) : pino(opts);
  // Output that has gone (EIO once the terminal hung up, EBADF, …; pino itself only forgives EPIPE) must not
  // crash a service that is stopping on that very SIGHUP: further log lines are dropped.
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as { on?: (ev: "error", f: (e: Error) => void) => void; write: unknown; flushSync?: unknown; end?: unknown } | undefined;
  stream?.on?.("error", () => {
    stream.write = () => true;
    stream.flushSync = () => {};
    stream.end = () => {};
  });
  return logger;
}
