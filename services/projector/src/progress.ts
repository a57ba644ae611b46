import { startsWithRealDate } from "@troupe/events";
/** The rebuild's progress line: a bar, events/s and ETA. Pure formatting; the caller decides where it goes. */

export interface Progress {
  done: number;
  total: number;
  elapsedMs: number;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function formatProgress(p: Progress, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(frac * width);
  const rate = p.elapsedMs > 0 ? (p.done / p.elapsedMs) * 1000 : 0;
  const eta = rate > 0 ? ((p.total - p.done) / rate) * 1000 : Infinity;
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(frac * 100).toFixed(1).padStart(5)}% ${fmt(p.done)}/${fmt(p.total)} events  ${fmt(rate)} events/s  ETA ${p.done >= p.total ? "0s" : formatDuration(eta)}`;
}

/**
 * Parses `--until`: a stream sequence of TROUPE_EVENTS (digits) or an ISO time.
 */
export type Until = { seq: number } | { timeMs: number };

export function parseUntil(v: string): Until {
  if (/^\d+$/.test(v)) {
    const seq = Number(v);
    if (seq < 1) throw new Error(`--until: a stream sequence starts at 1, got ${v}`);
    if (!Number.isSafeInteger(seq)) throw new Error(`--until: sequence ${v} is beyond any stream's (at most ${Number.MAX_SAFE_INTEGER})`);
    return { seq };
  }
  const ms = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(ms)) throw new Error(`--until: expected an events stream sequence or an ISO time (2026-01-15T10:30:00Z), got ${JSON.stringify(v)}`);
  if (!startsWithRealDate(v)) throw new Error(`--until: ${v.slice(0, 10)} is not a day of the calendar`);
  return { timeMs: ms };
}
