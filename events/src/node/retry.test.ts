import { describe, expect, it, vi } from "vitest";
import { isNatsOutage, JETSTREAM_NOT_ENABLED_WAIT_MS, retryWithBackoff, startOutage } from "./retry.ts";

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
  it("ends a wait between tries at once when its signal aborts", async () => {
    const abort = new AbortController();
    const started = performance.now();
    const v = retryWithBackoff(async () => { throw new Error("timeout"); }, { firstWaitMs: 60_000, maxWaitMs: 60_000, signal: abort.signal, onRetry: () => abort.abort() });
    expect(await v).toBeUndefined();
    // The abort came with the first wait's start: the 60 s wait did not run.
    expect(performance.now() - started).toBeLessThan(30_000);
  });
  it("with abandon, lets a try under way go at the abort and hands what it resolves to later to abandon", async () => {
    const abort = new AbortController();
    let settle!: (v: string) => void;
    const abandoned: string[] = [];
    const v = retryWithBackoff(() => new Promise<string>((r) => (settle = r)), { maxWaitMs: 1, signal: abort.signal, abandon: (late) => abandoned.push(late) });
    abort.abort();
    // Ended by the abort alone: the try has not settled.
    expect(await v).toBeUndefined();
    expect(abandoned).toEqual([]);
    settle("a connection");
    await vi.waitFor(() => expect(abandoned).toEqual(["a connection"]));
  });
  it("with abandon, lets a try go that fails after the abort, its error reported nowhere", async () => {
    const abort = new AbortController();
    let fail!: (e: Error) => void;
    const retried: Error[] = [];
    const v = retryWithBackoff(() => new Promise<string>((_r, j) => (fail = j)), { maxWaitMs: 1, signal: abort.signal, abandon: () => undefined, onRetry: (e) => retried.push(e) });
    abort.abort();
    expect(await v).toBeUndefined();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      fail(new Error("timeout"));
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
      expect(retried).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
  it("with abandon, gives a try that answers before the abort its value", async () => {
    const abort = new AbortController();
    const abandoned: string[] = [];
    expect(await retryWithBackoff(async () => "ok", { maxWaitMs: 1, signal: abort.signal, abandon: (late) => abandoned.push(late) })).toBe("ok");
    abort.abort();
    expect(abandoned).toEqual([]);
  });
  it("without abandon, waits for a try under way to end (its value is not lost)", async () => {
    const abort = new AbortController();
    let settle!: (v: string) => void;
    const v = retryWithBackoff(() => new Promise<string>((r) => (settle = r)), { maxWaitMs: 1, signal: abort.signal });
    abort.abort();
    let ended = false;
    void v.then(() => (ended = true));
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(false);
    settle("kept");
    expect(await v).toBe("kept");
  });
});

describe("isNatsOutage", () => {
  it("tells an outage from an answer", () => {
    for (const m of ["no responders: '$JS.API'", "TIMEOUT", "JetStream not enabled", "JetStream system temporarily unavailable", "connection closed", "disconnect", "insufficient resources", "write /var/lib/nats/jetstream/x.blk: no space left on device"]) expect(isNatsOutage(new Error(m)), m).toBe(true);
    for (const m of ["stream not found", "wrong last sequence: 4", "permissions violation"]) expect(isNatsOutage(new Error(m)), m).toBe(false);
  });
});

describe("startOutage (what a service's start waits out)", () => {
  const open = { isClosed: () => false };

  it("waits out timeouts and no responders however long, and nothing that is not an outage", () => {
    const waitable = startOutage(open);
    expect(waitable(new Error("timeout"))).toBe(true);
    expect(waitable(new Error("503 no responders"))).toBe(true);
    expect(waitable(new Error("stream not found"))).toBe(false);
    expect(waitable(new Error("permissions violation for publish"))).toBe(false);
  });

  it("waits out 'JetStream not enabled' for a minute from the first, then no more (a server or account without JetStream)", () => {
    vi.useFakeTimers();
    try {
      const waitable = startOutage(open);
      const notEnabled = new Error("jetstream is not enabled");
      expect(waitable(notEnabled)).toBe(true);
      vi.advanceTimersByTime(JETSTREAM_NOT_ENABLED_WAIT_MS - 1000);
      expect(waitable(new Error("timeout"))).toBe(true);
      expect(waitable(notEnabled)).toBe(true);
      vi.advanceTimersByTime(1000);
      expect(waitable(notEnabled)).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it("waits out nothing once the connection is closed for good", () => {
    expect(startOutage({ isClosed: () => true })(new Error("timeout"))).toBe(false);
  });
});
