import { pino, type Logger } from "pino";
import { UsageError } from "./options.ts";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** A usage error (exit 2) naming TROUPE_LOG_LEVEL when `level` is none of pino's. */
export function checkLogLevel(level: string | undefined): void {
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`TROUPE_LOG_LEVEL: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
}

/** One JSON logger per service; `TROUPE_LOG_LEVEL` sets the level (default info). */
export function createLogger(name: string, level = process.env.TROUPE_LOG_LEVEL ?? "info"): Logger {
  checkLogLevel(level);
  const logger = pino({ name, level, base: { svc: name } });
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
