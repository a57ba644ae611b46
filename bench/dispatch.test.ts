import { describe, expect, it } from "vitest";
import { bench } from "./dispatch.ts";

describe("bench dispatch --quick", () => {
  it("still runs: jobs/s, assignments/s and submit→assigned percentiles from a real master", async () => {
    const r = await bench({ quick: true, log: () => {} });
    const fig = (re: RegExp) => r.figures.find((f) => re.test(f.name))?.value ?? NaN;
    expect(r.params).toMatchObject({ jobs: 500, workers: 10, concurrency: 10 });
    expect(fig(/^jobs\/s/)).toBeGreaterThan(0);
    expect(fig(/^assignments\/s/)).toBeGreaterThan(0);
    expect(fig(/p99/)).toBeGreaterThanOrEqual(fig(/p50/));
    expect(fig(/RSS/)).toBeGreaterThan(0);
  }, 120_000);
});
