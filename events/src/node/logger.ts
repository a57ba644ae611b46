import { pino, type Logger } from "pino";

export type { Logger };

/** One JSON logger per service; `TROUPE_LOG_LEVEL` sets the level (default info). */
export function createLogger(name: string, level = process.env.TROUPE_LOG_LEVEL ?? "info"): Logger {
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(level)) throw new Error(`TROUPE_LOG_LEVEL: expected one of ${levels.join(", ")}, got ${JSON.stringify(level)}`);
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
