import { decodeEvent, describeEvent, startsWithRealDate, type Subjects } from "@troupe/events";
import { terminalSafe, UsageError } from "@troupe/events/node";

/** One readable line per message: time, subject, type, key fields — or why it is invalid. Control characters a worker or page wrote are shown, not sent. */
export function formatLine(subject: string, body: Uint8Array, s: Subjects): string {
  const r = decodeEvent(subject, body, { subjects: s });
  if (!r.ok) {
    return terminalSafe(`${new Date().toISOString().slice(11, 23)}  ${subject}  INVALID ${r.error.code}${r.error.path ? ` at ${r.error.path}` : ""}: ${r.error.message}`);
  }
  const e = r.value;
  return terminalSafe(`${e.time.slice(11, 23)}  ${subject}  ${e.type}  ${describeEvent(e)}`.trimEnd());
}

/**
 * `--json`: the message as it came, on one line, with nothing a terminal acts on. A valid event's JSON has no raw
 * control character (they are escaped in strings), but a worker credential may publish any bytes, and `tail --json`
 * printed them raw (a review): C0, DEL and C1 controls are written as JSON escapes (the same string, where JSON allows
 * them at all), a raw line break or tab as a space (JSON's whitespace; raw inside a string it was invalid anyway).
 */
export function jsonLine(body: Uint8Array): string {
  return new TextDecoder().decode(body).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === "\n" || c === "\r" || c === "\t" ? " " : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export type Since = { seq: number } | { time: string };

/** `--since`: a stream sequence (123), an ISO time, or a duration ago (30s, 5m, 2h, 1d). */
export function parseSince(raw: string, now = Date.now()): Since {
  if (/^\d+$/.test(raw)) {
    const seq = Number(raw);
    if (seq < 1) throw new UsageError(`--since: sequence numbers start at 1, got ${raw}`);
    // A stream sequence is a uint64 the server parses; past 2^53 the number sent would not be the one given.
    if (!Number.isSafeInteger(seq)) throw new UsageError(`--since: sequence ${raw} is beyond any stream's (at most ${Number.MAX_SAFE_INTEGER})`);
    return { seq };
  }
  const dur = /^(\d+)(s|m|h|d)$/.exec(raw);
  if (dur) {
    const ms = Number(dur[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[dur[2] as "s" | "m" | "h" | "d"];
    const t = now - ms;
    if (!(t >= Date.parse("1970-01-01T00:00:00Z"))) throw new UsageError(`--since: ${raw} ago is before 1970`);
    return { time: new Date(t).toISOString() };
  }
  const t = Date.parse(raw);
  if (startsWithRealDate(raw) && !Number.isNaN(t)) return { time: new Date(t).toISOString() };
  if (/^\d{4}-\d{2}-\d{2}/.test(raw) && !Number.isNaN(t)) throw new UsageError(`--since: ${raw.slice(0, 10)} is not a day of the calendar`);
  throw new UsageError(`--since: expected a sequence number, an ISO time or a duration like 5m, got ${JSON.stringify(raw)}`);
}

/** Which stream holds a subject filter, or null when it spans both / neither. */
export function streamFor(subject: string, s: Subjects, names: { events: string; heartbeats: string }): string | null {
  const p = s.prefix;
  if (subject === `${p}.evt.>` || subject.startsWith(`${p}.evt.`)) return names.events;
  if (subject === `${p}.hb.>` || subject.startsWith(`${p}.hb.`)) return names.heartbeats;
  return null;
}
