import { terminalSafe } from "./command.ts";

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

export interface LogLineFormat {
  /** Lead with the line's time (HH:MM:SS.mmm UTC): a standalone service's terminal has no other clock. */
  time?: boolean;
  /** An error's stack on the lines after (a terminal), instead of inside `err=` (one line per entry: `troupe up`'s prefixes). */
  stack?: boolean;
}

/**
 * Turns one pino JSON line into "LEVEL message  key=value …"; anything else passes through. Control characters
 * are escaped: messages carry text from pages and workers, which must not drive the terminal.
 */
export function formatLogLine(line: string, f: LogLineFormat = {}): string {
  if (!line.startsWith("{")) return terminalSafe(line);
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return terminalSafe(line);
  }
  const { level, msg, time, pid: _p, hostname: _h, svc: _s, name: _n, ...rest } = o;
  let stack: string | undefined;
  if (f.stack && isErr(rest.err)) {
    stack = rest.err.stack;
    rest.err = rest.err.message ?? rest.err.type;
  }
  const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  const when = f.time && typeof time === "number" && Number.isFinite(time) ? `${new Date(time).toISOString().slice(11, 23)} ` : "";
  const head = terminalSafe(`${when}${LEVELS[level as number] ?? String(level)} ${String(msg ?? "")}${extra ? `  ${extra}` : ""}`);
  return stack ? `${head}\n${stack.split("\n").map((l) => `    ${terminalSafe(l.trim())}`).join("\n")}` : head;
}

function isErr(v: unknown): v is { stack: string; message?: string; type?: string } {
  return typeof v === "object" && v !== null && typeof (v as { stack?: unknown }).stack === "string";
}
