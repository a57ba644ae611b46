import { describe, expect, it } from "vitest";
import { validateDefault } from "./rebuild.ts";

describe("TROUPE_REBUILD_VALIDATE", () => {
  it("defaults to auto and takes the three names", () => {
    expect(validateDefault({})).toBe("auto");
    expect(validateDefault({ TROUPE_REBUILD_VALIDATE: "" })).toBe("auto");
    for (const v of ["reader", "writer", "auto"] as const) expect(validateDefault({ TROUPE_REBUILD_VALIDATE: v })).toBe(v);
  });

  it("refuses anything else, naming the variable and the choices", () => {
    expect(() => validateDefault({ TROUPE_REBUILD_VALIDATE: "Reader" })).toThrow(/TROUPE_REBUILD_VALIDATE: expected one of reader, writer, auto, got "Reader"/);
  });
});
