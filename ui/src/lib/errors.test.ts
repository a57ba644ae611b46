import { describe, expect, it } from "vitest";
import { cut, errorLine, groupErrors, KEY_CHARS, normaliseError, type FailedAttemptRow } from "./errors.ts";
import { recentFrom, windowFrom } from "./recent.ts";

describe("normaliseError", () => {
  it("puts one cause's variants in one group: numbers, generated ids and selectors", () => {
    const a = normaliseError("timeout after 30000 ms waiting for #btn-4f2a");
    expect(a).toBe("timeout after <n> ms waiting for #btn-<id>");
    expect(normaliseError("timeout after 5000 ms waiting for #btn-77c1")).toBe(a);
    expect(normaliseError("job jmabc0001xyzxyzxyzxyz not running on wn-local-02")).toBe("job <id> not running on wn-local-<n>");
    expect(normaliseError("step 3: assert 1.5 s")).toBe("step <n>: assert <n> s");
    expect(normaliseError("request 123e4567-e89b-12d3-a456-426614174000 failed")).toBe("request <id> failed");
    // Words without a digit are the message: kept as they are, case and all.
    expect(normaliseError("net::ERR_CONNECTION_REFUSED")).toBe("net::ERR_CONNECTION_REFUSED");
    // Names with digits stay apart: HTTP/2 failures are not one error (a review).
    expect(normaliseError("net::ERR_HTTP2_PING_FAILED")).toBe("net::ERR_HTTP2_PING_FAILED");
    expect(normaliseError("net::ERR_HTTP2_PROTOCOL_ERROR")).not.toBe(normaliseError("net::ERR_HTTP2_PING_FAILED"));
  });

  it("keeps a URL's scheme and host, normalises its path and drops its query and fragment", () => {
    expect(normaliseError("navigation to https://shop.example/product/12?session=abc&x=1#top failed: net::ERR_ABORTED"))
      .toBe("navigation to https://shop.example/product/<n> failed: net::ERR_ABORTED");
    expect(normaliseError("navigation to https://shop.example/product/99?session=zzz failed: net::ERR_ABORTED"))
      .toBe(normaliseError("navigation to https://shop.example/product/12 failed: net::ERR_ABORTED"));
    // Another host is another group (a target that is down); the port and a full stop after the URL stay.
    expect(normaliseError("could not reach http://127.0.0.1:3005/slow?ms=200.")).toBe("could not reach http://127.0.0.1:3005/slow.");
    expect(normaliseError("could not reach http://other.example/slow")).not.toBe(normaliseError("could not reach http://127.0.0.1:3005/slow"));
  });

  it("collapses whitespace and newlines, and cuts a long message", () => {
    expect(normaliseError("  the page threw:\n\tTypeError:   x is undefined\n  at foo  ")).toBe("the page threw: TypeError: x is undefined at foo");
    const long = normaliseError("x".repeat(1000));
    expect(long).toHaveLength(KEY_CHARS + 1);
    expect(long.endsWith("…")).toBe(true);
    expect(normaliseError("")).toBe("");
  });

  it("is a function of the text alone (the same message, the same key)", () => {
    const m = "waitForElement #checkout did not appear within 1500 ms (https://a.example/p/7?q=1)";
    expect(normaliseError(m)).toBe(normaliseError(m));
    expect(normaliseError(normaliseError(m))).toBe(normaliseError(m));
  });

  it("never cuts between the halves of a surrogate pair", () => {
    const s = cut(`${"a".repeat(9)}😀b`, 10);
    expect(s).toBe(`${"a".repeat(9)}…`);
  });
});

const row = (jobId: string, workerId: string, endedAt: string, errorCode: string | null, errorMessage: string | null, attempt = 1): FailedAttemptRow => ({ jobId, attempt, workerId, endedAt, errorCode, errorMessage });

describe("groupErrors", () => {
  // Newest first, as the read models give them.
  const rows = [
    row("j9", "w-a", "2026-12-01T10:09:00.000Z", "timeout", "timeout after 1500 ms waiting for #btn-9f"),
    row("j8", "w-b", "2026-12-01T10:08:00.000Z", "step-failed", "assert: no #checkout"),
    row("j7", "w-b", "2026-12-01T10:07:00.000Z", "timeout", "timeout after 3000 ms waiting for #btn-1a"),
    row("j6", "w-c", "2026-12-01T10:06:00.000Z", "timeout", "timeout after 3000 ms waiting for #btn-2b"),
    row("j5", "w-a", "2026-12-01T10:05:00.000Z", "step-failed", "assert: no #checkout"),
    // The same text with another code is another error.
    row("j4", "w-a", "2026-12-01T10:04:00.000Z", "navigation", "assert: no #checkout"),
    row("j3", "w-a", "2026-12-01T10:03:00.000Z", null, "worker error: boom 42"),
  ];

  it("groups by code and normalised message: count, distinct workers, newest time and example", () => {
    const g = groupErrors(rows);
    expect(g).toEqual([
      { code: "timeout", message: "timeout after <n> ms waiting for #btn-<id>", count: 3, workers: 3, lastAt: "2026-12-01T10:09:00.000Z", example: { jobId: "j9", attempt: 1, message: "timeout after 1500 ms waiting for #btn-9f" } },
      { code: "step-failed", message: "assert: no #checkout", count: 2, workers: 2, lastAt: "2026-12-01T10:08:00.000Z", example: { jobId: "j8", attempt: 1, message: "assert: no #checkout" } },
      { code: "navigation", message: "assert: no #checkout", count: 1, workers: 1, lastAt: "2026-12-01T10:04:00.000Z", example: { jobId: "j4", attempt: 1, message: "assert: no #checkout" } },
      { code: null, message: "worker error: boom <n>", count: 1, workers: 1, lastAt: "2026-12-01T10:03:00.000Z", example: { jobId: "j3", attempt: 1, message: "worker error: boom 42" } },
    ]);
  });

  it("keeps the `limit` largest, ties broken by the newest and then the label, whatever the rows' order", () => {
    expect(groupErrors(rows, 2).map((g) => g.code)).toEqual(["timeout", "step-failed"]);
    const shuffled = [rows[3]!, rows[6]!, rows[0]!, rows[5]!, rows[2]!, rows[1]!, rows[4]!];
    expect(groupErrors(shuffled)).toEqual(groupErrors(rows));
    const tie = [row("a", "w", "2026-12-01T10:00:00.000Z", "x", "b"), row("b", "w", "2026-12-01T10:00:00.000Z", "x", "a")];
    expect(groupErrors(tie).map((g) => g.message)).toEqual(["a", "b"]);
    expect(groupErrors([])).toEqual([]);
  });

  it("a message the worker left out groups as empty", () => {
    expect(groupErrors([row("j", "w", "2026-12-01T10:00:00.000Z", "timeout", null)])).toMatchObject([{ code: "timeout", message: "", example: { message: "" } }]);
  });
});

describe("errorLine and windowFrom", () => {
  it("says a group in one line, its long message cut", () => {
    expect(errorLine({ code: "timeout", message: "timeout after <n> ms", count: 45 })).toBe("timeout: “timeout after <n> ms” (45 attempts)");
    expect(errorLine({ code: null, message: "m".repeat(200), count: 1 }, 10)).toBe(`“${"m".repeat(10)}…” (1 attempt)`);
  });

  it("60 minutes is the worker rates' window (the minute in progress and the 59 before it)", () => {
    const t = Date.parse("2026-12-01T10:30:20.000Z");
    expect(windowFrom(t, 60)).toBe(recentFrom(t));
    expect(new Date(windowFrom(t, 1)).toISOString()).toBe("2026-12-01T10:30:00.000Z");
  });
});
