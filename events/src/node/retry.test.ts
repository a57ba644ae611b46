import { describe, expect, it } from "vitest";
import { isNatsOutage, retryWithBackoff } from "./retry.ts";

describe("retryWithBackoff", () => {
  it("tries again with doubling waits (capped) until it works, reporting each wait", async () => {
    let n = 0;
    const waits: number[] = [];
    const v = await retryWithBackoff(async () => {
      if (++n < 5) throw new Error("timeout");
      return "ok";
    }, { firstWaitMs: 1, maxWaitMs: 4, onRetry: (_e, w) => waits.push(w) });
    expect(v).toBe("ok");
    expect(waits).toEqual([1, 2, 4, 4]);
  });
  it("throws at once what retryIf does not accept, and the last error once the next wait would pass giveUpAfterMs", async () => {
    await expect(retryWithBackoff(async () => { throw new Error("stream not found"); }, { maxWaitMs: 1, retryIf: isNatsOutage })).rejects.toThrow("stream not found");
    let n = 0;
    await expect(retryWithBackoff(async () => { throw new Error(`timeout ${++n}`); }, { firstWaitMs: 5, maxWaitMs: 5, giveUpAfterMs: 12 })).rejects.toThrow(/timeout [23]/);
  });
  it("ends with undefined once stopped", async () => {
    let stop = false;
    const v = await retryWithBackoff(async () => { stop = true; throw new Error("timeout"); }, { firstWaitMs: 1, maxWaitMs: 1, stopped: () => stop });
    expect(v).toBeUndefined();
  });
});

describe("isNatsOutage", () => {
  it("tells an outage from an answer", () => {
    for (const m of ["no responders: '$JS.API'", "TIMEOUT", "JetStream not enabled", "JetStream system temporarily unavailable", "connection closed", "disconnect", "insufficient resources", "write /var/lib/nats/jetstream/x.blk: no space left on device"]) expect(isNatsOutage(new Error(m)), m).toBe(true);
    for (const m of ["stream not found", "wrong last sequence: 4", "permissions violation"]) expect(isNatsOutage(new Error(m)), m).toBe(false);
  });
});
