import { describe, expect, it } from "vitest";
import { bench } from "./ui.ts";

describe("bench ui --quick", () => {
  it("runs against the real stack and reports sane figures (no speed assertion)", async () => {
    const r = await bench({ quick: true, log: () => {} });
    const v = (name: string) => r.figures.find((f) => f.name === name)?.value;
    expect(v("workers page first contentful paint")).toBeGreaterThan(0);
    expect(v("jobs page first contentful paint")).toBeGreaterThan(0);
    expect(v("event→DOM p50")).toBeGreaterThanOrEqual(0);
    expect(v("events applied in the page")).toBe(600);
    expect(v("cards not on their last heartbeat (lost updates)")).toBe(0);
  }, 240_000);
});
