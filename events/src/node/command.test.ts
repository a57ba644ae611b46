import { describe, expect, it } from "vitest";
import { shutdownSignal } from "./command.ts";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const listeners = () => SIGNALS.map((s) => process.listenerCount(s));

describe("shutdownSignal", () => {
  it("resolves with the first signal and stops listening, so a second one does what Node does by default", async () => {
    const before = listeners();
    const got = shutdownSignal();
    expect(listeners()).toEqual(before.map((n) => n + 1));
    process.emit("SIGTERM", "SIGTERM");
    expect(await got).toBe("SIGTERM");
    expect(listeners()).toEqual(before);
  });

  it("stops listening when `until` aborts (troupe up stopping after a child refused its settings swallowed the Ctrl-C that would end it)", () => {
    const before = listeners();
    const until = new AbortController();
    void shutdownSignal({ until: until.signal });
    expect(listeners()).toEqual(before.map((n) => n + 1));
    until.abort();
    expect(listeners()).toEqual(before);
    // Already aborted: it never listens.
    void shutdownSignal({ until: until.signal });
    expect(listeners()).toEqual(before);
  });
});
