import { describe, expect, it } from "vitest";
import { isLoopback } from "./ui.ts";

describe("isLoopback (the UI refuses other addresses without a token)", () => {
  it("accepts only this machine's addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) expect(isLoopback(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com"]) expect(isLoopback(h), h).toBe(false);
  });
});
