import { describe, expect, it } from "vitest";
import { bench } from "./scale.ts";

describe("bench scale --quick", () => {
  it("still runs: the master folds every offered heartbeat and reports lag, RSS and the highest rate kept up", async () => {
    const r = await bench({ quick: true, log: () => {} });
    const fig = (re: RegExp) => r.figures.find((f) => re.test(f.name))?.value ?? NaN;
    expect(r.params).toMatchObject({ workers: 500 });
    expect(fig(/heartbeats folded/)).toBe(1000);
    expect(fig(/lag max/)).toBeGreaterThanOrEqual(0);
    expect(fig(/RSS/)).toBeGreaterThan(0);
    expect(fig(/highest rate/)).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
