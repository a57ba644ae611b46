import { FormatRegistry } from "@sinclair/typebox";

/** TypeBox fails unknown formats; register the ones the contract uses. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Days in a month of the proleptic Gregorian calendar (month 1-12). */
function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * The full check: the shape, a day that exists in its month, then whatever Date.parse makes of it
 * (it rejects month 13 and hour 25, but V8 takes any day up to 31: 2026-02-30 would be 2 March;
 * RFC 3339, and so the JSON Schema files other languages validate with, refuses it).
 */
export function isDateTimeSlow(v: string): boolean {
  if (!DATE_TIME.test(v) || Number.isNaN(Date.parse(v))) return false;
  const month = Number(v.slice(5, 7));
  return Number(v.slice(8, 10)) <= daysIn(Number(v.slice(0, 4)), month);
}

/** Whether a text starting `YYYY-MM-DD` names a day that exists (V8's Date.parse reads 2026-02-30 as 2 March). */
export function startsWithRealDate(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
  if (!m) return false;
  const month = Number(m[2]);
  return month >= 1 && month <= 12 && Number(m[3]) >= 1 && Number(m[3]) <= daysIn(Number(m[1]), month);
}

const d = (v: string, i: number) => v.charCodeAt(i) - 48;
const isDigit = (v: string, i: number) => {
  const c = v.charCodeAt(i);
  return c >= 48 && c <= 57;
};

/**
 * True only for the shape every producer writes (Date#toISOString, with or without milliseconds):
 * `YYYY-MM-DDTHH:mm:ss.sssZ` / `YYYY-MM-DDTHH:mm:ssZ`, month 01-12, a day the month has, hour 00-23, minute
 * and second 00-59. Every such string passes isDateTimeSlow (formats.test.ts walks every field's
 * range); false means "not sure", never "invalid". Costs a few ns where Date.parse costs ~200.
 */
export function isCanonicalUtcDateTime(v: string): boolean {
  const n = v.length;
  if (n !== 24 && n !== 20) return false;
  if (v.charCodeAt(n - 1) !== 90 /* Z */) return false;
  if (n === 24 && (v.charCodeAt(19) !== 46 /* . */ || !isDigit(v, 20) || !isDigit(v, 21) || !isDigit(v, 22))) return false;
  if (v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(10) !== 84 /* T */ || v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58) return false;
  if (!isDigit(v, 0) || !isDigit(v, 1) || !isDigit(v, 2) || !isDigit(v, 3)) return false;
  if (!isDigit(v, 5) || !isDigit(v, 6) || !isDigit(v, 8) || !isDigit(v, 9)) return false;
  if (!isDigit(v, 11) || !isDigit(v, 12) || !isDigit(v, 14) || !isDigit(v, 15) || !isDigit(v, 17) || !isDigit(v, 18)) return false;
  const year = d(v, 0) * 1000 + d(v, 1) * 100 + d(v, 2) * 10 + d(v, 3);
  const month = d(v, 5) * 10 + d(v, 6);
  const day = d(v, 8) * 10 + d(v, 9);
  const hour = d(v, 11) * 10 + d(v, 12);
  const minute = d(v, 14) * 10 + d(v, 15);
  const second = d(v, 17) * 10 + d(v, 18);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month) && hour <= 23 && minute <= 59 && second <= 59;
}

/** Same verdict as isDateTimeSlow: the common shape is accepted without Date.parse, anything else gets the full check. */
export function isDateTime(v: string): boolean {
  return isCanonicalUtcDateTime(v) || isDateTimeSlow(v);
}

if (!FormatRegistry.Has("date-time")) {
  FormatRegistry.Set("date-time", isDateTime);
}
