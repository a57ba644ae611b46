/** Display helpers shared by the pages (pure). */

/** "12 s ago", "3 min ago", "2 h ago"; "never" without a time. */
export function ago(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** 850 ms, 12.3 s, 4 min 5 s. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export const pct = (n: number | null | undefined) => (n === null || n === undefined ? "–" : `${Math.round(n)} %`);
/** Memory as workers report it: mebibytes (2^20 bytes, systeminformation's bytes ÷ 1024²), so said "MiB" (it read "MB", an audit). */
export const mib = (n: number | null | undefined) => (n === null || n === undefined ? "–" : `${Math.round(n)} MiB`);

/** A moment in UTC, said so (an operator in another zone read it as local time, an audit); `zone: false` where a heading says it. */
export function time(iso: string | null | undefined, zone = true): string {
  return iso ? `${new Date(iso).toISOString().replace("T", " ").slice(0, 19)}${zone ? " UTC" : ""}` : "–";
}

/** The UTC hours and minutes of a moment (epoch ms), "09:05": chart axes, which say "UTC" once. */
export const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
