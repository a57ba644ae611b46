import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { sleep } from "./steps.ts";

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
