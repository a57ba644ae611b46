import { describe, expect, it } from "vitest";
import { mib } from "./format.ts";

describe("format", () => {
  it("says MiB for memory: workers report bytes ÷ 1024² (it said MB)", () => {
    expect(mib(2590.4)).toBe("2590 MiB");
    expect(mib(null)).toBe("–");
    expect(mib(undefined)).toBe("–");
  });
});
