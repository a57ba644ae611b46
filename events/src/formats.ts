import { FormatRegistry } from "@sinclair/typebox";

/** TypeBox fails unknown formats; register the ones the contract uses. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The full check: the shape, then whatever Date.parse makes of it (V8 accepts 2026-02-30, rejects month 13). */
export function isDateTimeSlow(v: string): boolean {
  return DATE_TIME.test(v) && !Number.isNaN(Date.parse(v));
}

const d = (v: string, i: number) => v.charCodeAt(i) - 48;
const isDigit = (v: string, i: number) => {
  const c = v.charCodeAt(i);
  return c >= 48 && c <= 57;
};

/**
 * True only for the shape every producer writes (Date#toISOString, with or without milliseconds):
 * `YYYY-MM-DDTHH:mm:ss.sssZ` / `YYYY-MM-DDTHH:mm:ssZ`, month 01-12, day 01-31, hour 00-23, minute
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
  const month = d(v, 5) * 10 + d(v, 6);
  const day = d(v, 8) * 10 + d(v, 9);
  const hour = d(v, 11) * 10 + d(v, 12);
  const minute = d(v, 14) * 10 + d(v, 15);
  const second = d(v, 17) * 10 + d(v, 18);
  return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 59;
}

/** Same verdict as isDateTimeSlow: the common shape is accepted without Date.parse, anything else gets the full check. */
export function isDateTime(v: string): boolean {
  return isCanonicalUtcDateTime(v) || isDateTimeSlow(v);
}

if (!FormatRegistry.Has("date-time")) {
  FormatRegistry.Set("date-time", isDateTime);
}
