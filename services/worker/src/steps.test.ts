import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { MAX_SHOT_PIXELS, shotClip, sleep } from "./steps.ts";

describe("sleep", () => {
  it("leaves no abort listener behind once its time is up", async () => {
    const ac = new AbortController();
    for (let i = 0; i < 20; i++) await sleep(1, ac.signal);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("rejects with the abort reason when aborted while waiting", async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort(new Error("job timed out"));
    await expect(p).rejects.toThrow("job timed out");
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("rejects at once on a signal that is already aborted", async () => {
    const ac = new AbortController();
    ac.abort(new Error("cancelled"));
    await expect(sleep(60_000, ac.signal)).rejects.toThrow("cancelled");
  });
});

describe("shotClip", () => {
  it("takes an area within the limit whole", () => {
    expect(shotClip(1280, 5000)).toEqual({ width: 1280, height: 5000, cut: false });
    expect(shotClip(0, 0)).toEqual({ width: 1, height: 1, cut: false });
  });
  it("cuts a taller area to its top within the pixel limit, counting device pixels", () => {
    expect(shotClip(1280, 100_000)).toEqual({ width: 1280, height: 12_500, cut: true });
    // At 2 device pixels per px, a quarter of the CSS pixels.
    const c = shotClip(1280, 100_000, 2);
    expect(c.cut).toBe(true);
    expect(c.width * c.height * 4).toBeLessThanOrEqual(MAX_SHOT_PIXELS);
  });
  it("cuts a huge viewport at a high pixel ratio (10000×10000 at 10 is allowed) to the limit", () => {
    const c = shotClip(10_000, 10_000, 10);
    expect(c.cut).toBe(true);
    expect(c.width * c.height * 100).toBeLessThanOrEqual(MAX_SHOT_PIXELS);
    expect(c.width).toBeGreaterThan(100);
  });
  it("cuts a very wide area across too", () => {
    expect(shotClip(100_000, 1000)).toEqual({ width: 4000, height: 1000, cut: true });
  });
});
