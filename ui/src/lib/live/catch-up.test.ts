import { describe, expect, it } from "vitest";
import { streamHead } from "@troupe/events";
import { behindBy, dataHolds, readCatchUpAnswer, retryDelayMs } from "./catch-up.ts";

describe("behindBy", () => {
  const heads = { TROUPE_EVENTS: 120, TROUPE_HEARTBEATS: 900 };

  it("is 0 once every checkpoint reached its stream's head, or passed it (a head read before a later batch)", () => {
    expect(behindBy(heads, { TROUPE_EVENTS: 120, TROUPE_HEARTBEATS: 901 })).toBe(0);
  });

  it("adds what each stream's checkpoint lacks", () => {
    expect(behindBy(heads, { TROUPE_EVENTS: 100, TROUPE_HEARTBEATS: 899 })).toBe(21);
  });

  it("counts a stream without a checkpoint (or no projector status at all) from 0; an empty stream is caught up", () => {
    expect(behindBy(heads, { TROUPE_EVENTS: 120 })).toBe(900);
    expect(behindBy(heads, undefined)).toBe(1020);
    expect(behindBy({ TROUPE_EVENTS: 0 }, undefined)).toBe(0);
  });
});

describe("retryDelayMs", () => {
  it("starts at 1 s, doubles, and stays at 30 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 100].map(retryDelayMs)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });
});

describe("readCatchUpAnswer", () => {
  const heads = { TROUPE_EVENTS: 12, TROUPE_HEARTBEATS: 30 };

  it("reads a caught-up answer, with the heads the server read", () => {
    expect(readCatchUpAnswer(200, { success: true, caughtUp: true, behind: 0, heads })).toEqual({ caughtUp: true, heads });
    expect(readCatchUpAnswer(200, { success: true, caughtUp: true, behind: 0 })).toEqual({ caughtUp: true });
  });

  it("says how far behind the read models are, and that it checks again", () => {
    expect(readCatchUpAnswer(200, { success: true, caughtUp: false, behind: 42, heads })).toEqual({ caughtUp: false, reason: "the read models are 42 events behind the event log", retry: true, heads });
    expect(readCatchUpAnswer(200, { success: true, caughtUp: false, behind: 1 })).toEqual({ caughtUp: false, reason: "the read models are 1 event behind the event log", retry: true });
    expect(readCatchUpAnswer(200, { success: true, caughtUp: false, behind: "x" })).toEqual({ caughtUp: false, reason: "the read models are behind the event log", retry: true });
  });

  it("leaves out heads that are not the streams' sequences", () => {
    for (const bad of [[1, 2], { TROUPE_EVENTS: -1 }, { TROUPE_EVENTS: 1.5 }, { TROUPE_EVENTS: "3" }, null, "x"]) {
      expect(readCatchUpAnswer(200, { success: true, caughtUp: true, heads: bad })).toEqual({ caughtUp: true });
    }
  });

  it("takes an answer that waiting may turn (5xx, 408, 429, no answer, a body that is not the answer) as a check to try again, naming why", () => {
    expect(readCatchUpAnswer(503, { success: false, error: { code: "unavailable", message: "NATS down" } })).toEqual({ caughtUp: false, reason: "could not check the read models: NATS down", retry: true });
    for (const status of [500, 502, 504, 408, 429]) expect(readCatchUpAnswer(status, undefined)).toEqual({ caughtUp: false, reason: `could not check the read models: HTTP ${status}`, retry: true });
    expect(readCatchUpAnswer(0, { error: { message: "Failed to fetch" } })).toEqual({ caughtUp: false, reason: "could not check the read models: Failed to fetch", retry: true });
    expect(readCatchUpAnswer(200, undefined)).toEqual({ caughtUp: false, reason: "could not check the read models: HTTP 200", retry: true });
    expect(readCatchUpAnswer(200, { success: true })).toEqual({ caughtUp: false, reason: "could not check the read models: HTTP 200", retry: true });
  });

  it("stops on a 401 (sign in again) and on another 4xx (reload the page): no wait mends them", () => {
    const unauthorized = { success: false, error: { code: "unauthorized", message: "send the UI token as `Authorization: Bearer <token>`" } };
    expect(readCatchUpAnswer(401, unauthorized)).toEqual({ caughtUp: false, reason: "the dashboard no longer takes this page's sign-in (its token changed, or the login expired)", retry: false, stop: "sign-in", status: 401 });
    expect(readCatchUpAnswer(401, null)).toMatchObject({ retry: false, stop: "sign-in" });
    expect(readCatchUpAnswer(403, { success: false, error: { code: "forbidden", message: "host refused" } })).toEqual({ caughtUp: false, reason: "the dashboard refused the check (403: host refused)", retry: false, stop: "reload", status: 403 });
    for (const status of [400, 404, 405, 410]) expect(readCatchUpAnswer(status, undefined)).toEqual({ caughtUp: false, reason: `the dashboard refused the check (${status}: HTTP ${status})`, retry: false, stop: "reload", status });
  });
});

describe("dataHolds", () => {
  const heads = { TROUPE_EVENTS: 120, TROUPE_HEARTBEATS: 900 };

  it("holds when the page's data was read at checkpoints at or past every head", () => {
    expect(dataHolds({ TROUPE_EVENTS: 120, TROUPE_HEARTBEATS: 900 }, heads)).toBe(true);
    expect(dataHolds({ TROUPE_EVENTS: 125, TROUPE_HEARTBEATS: 901 }, heads)).toBe(true);
  });

  it("does not when one stream stored more since, or a stream has no checkpoint", () => {
    expect(dataHolds({ TROUPE_EVENTS: 120, TROUPE_HEARTBEATS: 899 }, heads)).toBe(false);
    expect(dataHolds({ TROUPE_EVENTS: 120 }, heads)).toBe(false);
  });

  it("never for data that does not say where it was read (an error page, a page without read models, no projector yet)", () => {
    for (const readAt of [undefined, null, "x", [120, 900], { TROUPE_EVENTS: "120" }]) expect(dataHolds(readAt, heads)).toBe(false);
  });

  it("holds for empty streams whatever the checkpoints (none before the projector's first batch)", () => {
    expect(dataHolds({}, { TROUPE_EVENTS: 0, TROUPE_HEARTBEATS: 0 })).toBe(true);
  });
});

describe("behindBy with an emptied stream", () => {
  it("counts nothing for a stream that holds no message (its head is 0: streamHead)", () => {
    expect(behindBy({ TROUPE_HEARTBEATS: streamHead({ messages: 0, last_seq: 900 }) }, { TROUPE_HEARTBEATS: 0 })).toBe(0);
  });
});
