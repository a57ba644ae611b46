import { describe, expect, it } from "vitest";
import { safeNext } from "./safe-next.ts";

describe("safeNext (the login's redirect)", () => {
  it("keeps paths on this dashboard", () => {
    expect(safeNext("/jobs/j1?x=1#steps")).toBe("/jobs/j1?x=1#steps");
    expect(safeNext("/")).toBe("/");
  });
  it("sends anything that would leave the dashboard to /", () => {
    for (const bad of ["//evil.com", "/\\evil.com", "/\\/evil.com", "/\t/evil.com", "/\n/evil.com", "https://evil.com", "evil.com", "", null, 42]) {
      expect(safeNext(bad), JSON.stringify(bad)).toBe("/");
    }
  });
});
