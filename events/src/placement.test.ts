import { describe, expect, it } from "vitest";
import { canTake, unmetNeeds } from "./placement.ts";

const chromeEu = { browsers: ["chromium"], labels: ["region=eu", "residential"] };
const chromeUs = { browsers: ["Chromium"], labels: ["region=us"] };

describe("placement", () => {
  it("takes a job whose browser (any case) and every label a worker has", () => {
    expect(canTake(chromeEu, { labels: [] })).toBe(true);
    expect(canTake(chromeEu, { browser: "CHROMIUM", labels: ["region=eu"] })).toBe(true);
    expect(canTake(chromeEu, { browser: "firefox", labels: [] })).toBe(false);
    expect(canTake(chromeEu, { labels: ["region=eu", "gpu"] })).toBe(false);
  });

  it("names what no live worker has, most jobs first, and leaves out what some worker can take", () => {
    const needs = [
      { labels: ["region=eu"], count: 40 },
      { browser: "firefox", labels: [], count: 3 },
      { labels: ["gpu", "region=us"], count: 7 },
      { labels: ["region=eu", "region=us"], count: 2 },
      { browser: "webkit", labels: ["gpu"], count: 1 },
    ];
    expect(unmetNeeds(needs, [chromeEu, chromeUs])).toEqual([
      { labels: ["gpu", "region=us"], count: 7, reason: "label gpu" },
      { browser: "firefox", labels: [], count: 3, reason: 'browser "firefox"' },
      { labels: ["region=eu", "region=us"], count: 2, reason: "labels region=eu, region=us together" },
      { browser: "webkit", labels: ["gpu"], count: 1, reason: 'browser "webkit"' },
    ]);
  });

  it("with no live worker at all, every need is unmet", () => {
    expect(unmetNeeds([{ labels: [], count: 5 }], [])).toEqual([{ labels: [], count: 5, reason: "a live worker" }]);
  });
});
