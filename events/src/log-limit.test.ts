import { describe, expect, it } from "vitest";
import { leftOut, LogLimit } from "./log-limit.ts";

describe("LogLimit", () => {
  it("lets `burst` lines through per window, counts the rest, and hands the count to the next line let through", () => {
    let now = 1000;
    const l = new LogLimit(3, 60_000, () => now);
    expect([l.take(), l.take(), l.take()]).toEqual([0, 0, 0]);
    expect([l.take(), l.take()]).toEqual([undefined, undefined]);
    now += 59_999;
    expect(l.take()).toBeUndefined();
    now += 1;
    expect([l.take(), l.take()]).toEqual([3, 0]);
  });

  it("adds a leftOut field only when lines were left out", () => {
    expect([leftOut(0), leftOut(4)]).toEqual([{}, { leftOut: 4 }]);
  });
});
