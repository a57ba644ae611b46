import { pino, type Logger } from "pino";

export type { Logger };

/** One JSON logger per service; `TROUPE_LOG_LEVEL` sets the level (default info). */
export function createLogger(name: string, level = process.env.TROUPE_LOG_LEVEL ?? "info"): Logger {
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(level)) throw new Error(`TROUPE_LOG_LEVEL: expected one of ${levels.join(", ")}, got ${JSON.stringify(level)}`);
  return pino({ name, level, base: { svc: name } });
}
